#!/usr/bin/env bash
# Regenerates docs/results.md: the paper-sized evaluation of both embedded pairs, then the combined page.
# Resumable: every generation is appended to runs/<name>/generations.jsonl as it is made; rerun after an
# interruption and it continues where it stopped. About 2 hours per pair on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
AB=.venv/bin/alignbeam
SYSTEMS=(-s draft -s mixing -s router -s alignbeam -s recommended)
pairs=("${@:-cross same}")
for pair in ${pairs[*]}; do
  case "$pair" in
    cross) $AB eval --suite paper-safety "${SYSTEMS[@]}" --draft smollm2-135m --anchor qwen2.5-coder-1.5b \
             --validate-grader --out runs/paper-cross ;;
    same)  $AB eval --suite paper "${SYSTEMS[@]}" --draft qwen2.5-coder-0.5b --anchor qwen2.5-coder-1.5b \
             --validate-grader --out runs/paper-same ;;
    *) echo "unknown pair $pair (cross | same)" >&2; exit 2 ;;
  esac
done
dirs=()
for d in runs/paper-cross runs/paper-same; do
  if [ -f "$d/generations.jsonl" ]; then
    # a run resumed across grader versions: apply the current LLM-question threshold to every stored record
    .venv/bin/python -m alignbeam.eval.regrade "$d"
    dirs+=("$d")
  fi
done
.venv/bin/python -m alignbeam.eval.report "${dirs[@]}" --out docs/results.md \
  --title "AlignBeam results on the embedded models" --command "bash scripts/results.sh"
