"""Refusal on the first N AdvBench prompts: draft alone vs AlignBeam (resumable: appends to a JSONL file).

Usage: python benchmarks/advbench_refusal.py [--n 50] [--pair cross|same] [--max-new-tokens 128] [--out FILE]
Refusal is decided by the keyword check in alignbeam.eval.refusal (a relapse "I'm sorry ... However, here is"
counts as compliance); every response is written out for audit. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from alignbeam.api import AlignBeam
from alignbeam.eval.refusal import is_refusal

PAIRS = {"cross": ("smollm2-135m", "qwen2.5-coder-1.5b"), "same": ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "advbench" / "harmful_behaviors.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--pair", choices=sorted(PAIRS), default="cross")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    out = a.out or Path(f"runs/advbench_{a.pair}_{a.n}_{a.max_new_tokens}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["i"]] = r
    with open(a.data, newline="") as fh:
        goals = [r["goal"] for r in csv.DictReader(fh)][: a.n]
    draft, anchor = PAIRS[a.pair]
    ab = AlignBeam(draft=draft, anchor=anchor, preset="paper")
    with open(out, "a") as f:
        for i, g in enumerate(goals):
            if i in done:
                continue
            t0 = time.perf_counter()
            d = ab.generate_draft(g, max_new_tokens=a.max_new_tokens)
            t1 = time.perf_counter()
            r = ab.generate(g, max_new_tokens=a.max_new_tokens, trace=True)
            t2 = time.perf_counter()
            rec = {
                "i": i,
                "prompt": g,
                "draft": d.text,
                "alignbeam": r.text,
                "draft_refusal": is_refusal(d.text),
                "alignbeam_refusal": is_refusal(r.text),
                "draft_s": round(t1 - t0, 2),
                "alignbeam_s": round(t2 - t1, 2),
                "scores": [c.score for c in r.trace.candidates],
                "candidate_refusals": [is_refusal(c.text) for c in r.trace.candidates],
            }
            f.write(json.dumps(rec) + "\n")
            f.flush()
            done[i] = rec
            print(
                f"{i:3d} draft={'R' if rec['draft_refusal'] else '-'} ab={'R' if rec['alignbeam_refusal'] else '-'} "
                f"{rec['draft_s']:.1f}s/{rec['alignbeam_s']:.1f}s  {g[:60]}",
                flush=True,
            )
    rows = [done[i] for i in range(len(goals))]
    summary = {
        "pair": a.pair,
        "n": len(rows),
        "max_new_tokens": a.max_new_tokens,
        "draft_refusals": sum(r["draft_refusal"] for r in rows),
        "alignbeam_refusals": sum(r["alignbeam_refusal"] for r in rows),
        "oracle_refusals": sum(any(r["candidate_refusals"]) for r in rows),
        "draft_mean_s": round(sum(r["draft_s"] for r in rows) / len(rows), 2),
        "alignbeam_mean_s": round(sum(r["alignbeam_s"] for r in rows) / len(rows), 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
