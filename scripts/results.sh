#!/usr/bin/env bash
# Regenerates docs/results.md: the paper-sized evaluation of both embedded pairs, the oracle bound over their
# stored candidates, then the combined page.
# Resumable: every generation (and every oracle grade) is appended to runs/<name>/ as it is made; rerun after an
# interruption and it continues where it stopped. About 2 hours per pair on a 2-core CPU.
#   bash scripts/results.sh            both pairs and the probe run
#   bash scripts/results.sh probe      the cross pair's draft, router and recommended preset as it is now (the
#                                      request read through the trained probe, alignbeam/method/probe.py); ~70 min
#                                      (judge2-cross and judge3-cross, the same with earlier zero-shot classifiers,
#                                      probe1-cross, with the first probe, and probe3-cross, with
#                                      the probe at threshold 1.49 (a negative result), have no target: rerun today they would measure the current code; their
#                                      committed sections are kept on the page)
#   bash scripts/results.sh heldout    the same three systems on rows no evaluation sample holds and the request
#                                      probe never trained on (benchmarks/request_classifier.py --write-heldout:
#                                      HarmBench 50, JBB benign 40, XSTest safe 40); ~30 min
#   bash scripts/results.sh generalization   the generalization protocol at 10 rows per set (the quick suite):
#                                      draft, the previous recommended preset (anchor_check=0), the default, and
#                                      the paper's defaults on the rewordings; ~2.5 h. Its section is
#                                      docs/results/generalization.md (kept as committed when the run is not here)
#   (the tree of anchor openings, runs/generalization/eval-tree, and the restated second read, runs/restate-fresh,
#   have no target: those knobs left the library when they measured no better than the default; their committed
#   sections are kept on the page, and benchmarks/anchor_opening.py and benchmarks/restated_request.py keep the
#   experiments)
#   bash scripts/results.sh overrefusal  the over-refusal bar's three harmless families at 40 rows each (the
#                                      quick suite has 10): draft, the default, the router and the stricter gate
#                                      (gate_threshold=0.2); ~40 min
#   bash scripts/results.sh utility    the default's utility on the same-vocabulary pair (GSM8K, HumanEval, MedQA,
#                                      50 each, 256 tokens) against the draft alone; ~1 h
#   bash scripts/results.sh fresh      the default on rows 33-40 of every rewording, which no other run read
#                                      (draft and the default); ~12 min
#   bash scripts/results.sh strict     a stricter gate (gate_threshold=0.2) against the default and the draft on
#                                      rows 41-52 of every rewording, which no other run read; ~50 min (the
#                                      overrefusal target measures it on the three harmless families)
#   bash scripts/results.sh same       one pair; the other pair's section is kept as committed
#                                      (docs/results/<run>.section.md) when its run folder is not here
set -euo pipefail
cd "$(dirname "$0")/.."
AB=.venv/bin/alignbeam
PY=.venv/bin/python
pairs=("${@:-cross same probe heldout generalization overrefusal fresh strict utility}")
for pair in ${pairs[*]}; do
  case "$pair" in
    # cross-vocabulary pair: the issue's five systems, safety sets only (SmolLM2-135M has no task utility to speak of)
    cross) $AB eval --suite paper-safety -s draft -s mixing -s router -s alignbeam -s recommended \
             --draft smollm2-135m --anchor qwen2.5-coder-1.5b --validate-grader --out runs/paper-cross ;;
    # same-vocabulary pair: the draft alone, both baselines and AlignBeam, with GSM8K and HumanEval utility
    same)  $AB eval --suite paper -s draft -s mixing -s router -s alignbeam \
             --draft qwen2.5-coder-0.5b --anchor qwen2.5-coder-1.5b --validate-grader --out runs/paper-same ;;
    probe) $AB eval --suite paper-safety -s draft -s router -s recommended \
             --draft smollm2-135m --anchor qwen2.5-coder-1.5b --out runs/probe-cross
           $PY -m alignbeam.eval.regrade runs/probe-cross; continue ;;
    heldout) $PY benchmarks/request_classifier.py --write-heldout runs/heldout
           for f in harmbench:harmful jbb_benign:benign xstest_safe:benign; do
             $AB eval --prompts "runs/heldout/${f%%:*}.jsonl" --kind "${f##*:}" -n 64 -s draft -s router -s recommended \
               --draft smollm2-135m --anchor qwen2.5-coder-1.5b --out runs/heldout-cross
           done
           $PY -m alignbeam.eval.regrade runs/heldout-cross; continue ;;
    generalization) $AB eval --suite benchmarks/suites/generalization-quick.yaml -s draft -s recommended:anchor_check=0 \
             -s recommended:anchor_check=12 -s alignbeam --draft smollm2-135m --anchor qwen2.5-coder-1.5b \
             --out runs/generalization/eval-quick
           continue ;;
    overrefusal) $AB eval --suite benchmarks/suites/over-refusal.yaml -s draft -s recommended -s router \
             -s recommended:gate_threshold=0.2 \
             --draft smollm2-135m --anchor qwen2.5-coder-1.5b --out runs/overrefusal-cross
           continue ;;
    fresh) $AB eval --suite benchmarks/suites/rewordings-33-40.yaml -s draft -s recommended \
             --draft smollm2-135m --anchor qwen2.5-coder-1.5b --out runs/rewordings-33-40
           continue ;;
    strict) $AB eval --suite benchmarks/suites/rewordings-41-52.yaml -s draft -s recommended \
             -s recommended:gate_threshold=0.2 --draft smollm2-135m --anchor qwen2.5-coder-1.5b \
             --out runs/rewordings-41-52
           continue ;;
    # the default's utility: harmless task prompts should reach the draft alone, so its answers are the draft's
    utility) $AB eval --suite benchmarks/suites/utility.yaml -s draft -s recommended \
             --draft qwen2.5-coder-0.5b --anchor qwen2.5-coder-1.5b --out runs/utility-same
           continue ;;
    *) echo "unknown pair $pair (cross | same | probe | heldout | generalization | overrefusal | fresh | strict | utility)" >&2; exit 2 ;;
  esac
  $PY -m alignbeam.eval.regrade "runs/paper-$pair"
  # what a perfect selector would have scored over the same candidates: rows "(oracle selector)"
  $PY -m alignbeam.eval.oracle "runs/paper-$pair"
done
for d in runs/paper-cross runs/paper-same runs/judge2-cross runs/judge3-cross runs/probe1-cross runs/probe3-cross runs/probe-cross runs/heldout-cross runs/overrefusal-cross runs/restate-fresh runs/rewordings-33-40 runs/rewordings-41-52 runs/utility-same; do
  # a run resumed across grader versions: apply the current LLM-question threshold to every stored record
  if [ -f "$d/generations.jsonl" ]; then $PY -m alignbeam.eval.regrade "$d"; fi
done
$PY -m alignbeam.eval.report runs/paper-cross runs/paper-same runs/judge2-cross runs/judge3-cross runs/probe1-cross runs/probe3-cross runs/probe-cross runs/heldout-cross runs/overrefusal-cross runs/restate-fresh runs/rewordings-33-40 runs/rewordings-41-52 runs/utility-same \
  --out docs/results.md \
  --title "AlignBeam results on the embedded models" --command "bash scripts/results.sh"
if [ -f runs/generalization/eval-quick/generations.jsonl ]; then
  $PY -m alignbeam.eval.regrade runs/generalization/eval-quick
  $PY benchmarks/generalization_report.py runs/generalization/eval-quick --markdown docs/results/generalization.md \
    --systems draft,recommended:anchor_check=0,recommended:anchor_check=12,alignbeam >/dev/null
fi
cat docs/results/generalization.md >> docs/results.md
if [ -f runs/generalization/eval-tree/generations.jsonl ]; then
  $PY -m alignbeam.eval.regrade runs/generalization/eval-tree
  $PY benchmarks/generalization_report.py runs/generalization/eval-tree --markdown docs/results/generalization-tree.md \
    --systems draft,recommended:anchor_openings=4,anchor_refusal=0.2,recommended,router,alignbeam --check recommended --tree >/dev/null
fi
if [ -f docs/results/generalization-tree.md ]; then cat docs/results/generalization-tree.md >> docs/results.md; fi
