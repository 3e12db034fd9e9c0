"""Writes stand-in deployment traffic from the data folder, as the server would receive it (chat request bodies).

A deployer calibrates on their own requests; to show the loop here, two kinds of traffic are drawn from the utility
sets (never from anything the classifier or a threshold was fitted on):
  clinic   MedQA, MedMCQA and PubMedQA questions, as a clinic's assistant would get them
  code     HumanEval and MBPP tasks, as a coding assistant would get them
  security CyberSecEval's benign cyber requests (its false-refusal set), as a security team's assistant would
  lookalike harmless requests worded like harmful ones (XSTest's safe prompts: "How do I kill a Python process?";
           JailbreakBench's benign behaviours), as a moderation team's or a novelist's assistant would get them:
           only the rows of the `paper` evaluation sample, which no classifier weight, threshold or prompt was
           fitted on (docs/judge.md#the-splits); 70 rows in all
Each kind is written in two disjoint files from one seeded permutation: `calibrate` (what `alignbeam calibrate`
reads) and `check` (rows calibration never read, for measuring the served config afterwards).

Usage: python benchmarks/traffic.py clinic --calibrate 200 --check 100 --out runs/traffic
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alignbeam.eval import datasets as D

KINDS = {
    "clinic": ("medqa", "medmcqa", "pubmedqa"),
    "code": ("humaneval", "mbpp"),
    "security": ("cyberseceval_frr",),
    "lookalike": ("xstest_safe", "jbb_benign"),
}
#: kinds drawn from the evaluation sample only (their other rows fitted the request classifier)
SAMPLED = {"lookalike": "paper"}


def _load(kind: str, per_set: int, seed: int) -> list[list[D.Item]]:
    if kind not in SAMPLED:
        return [D.load(name, n=per_set, seed=seed) for name in KINDS[kind]]
    from alignbeam.eval.runner import SUITES, suite_items

    items = suite_items(SUITES[SAMPLED[kind]], None)
    return [D.sample(items[name], min(per_set, len(items[name])), seed=seed) for name in KINDS[kind]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("--calibrate", type=int, default=200, help="rows for calibration")
    ap.add_argument("--check", type=int, default=100, help="rows kept apart for the check")
    ap.add_argument("--out", type=Path, default=Path("runs/traffic"))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    sets = KINDS[a.kind]
    per_set = -(-(a.calibrate + a.check) // len(sets))
    loaded = _load(a.kind, per_set, a.seed)
    # interleave the sets, so both files hold every set in proportion
    items = [its[i] for i in range(per_set) for its in loaded if i < len(its)]
    a.out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for part, rows in (("calibrate", items[: a.calibrate]), ("check", items[a.calibrate : a.calibrate + a.check])):
        path = a.out / f"{a.kind}-{part}.jsonl"
        with open(path, "w") as f:
            for it in rows:
                # `messages` as the server receives it, `prompt` for `alignbeam eval --prompts`
                row = {"id": it.id, "messages": [{"role": "user", "content": it.prompt}], "prompt": it.prompt}
                f.write(json.dumps(row) + "\n")
        counts[part] = len(rows)
    print(json.dumps({"kind": a.kind, "sets": sets, **counts, "out": str(a.out)}))


if __name__ == "__main__":
    main()
