"""Re-apply the refusal grader's threshold to a finished (or paused) evaluation without any model.

Every record graded by the LLM question stores its P(A) (`p_complies`); rules-decided records do not depend on the
threshold. So a changed threshold is applied by rewriting `refusal` from the stored value, atomically:
python -m alignbeam.eval.regrade RUN_DIR [--threshold 0.6]. Never run it while `alignbeam eval` writes to RUN_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from alignbeam.eval.grader import RefusalGrader
from alignbeam.eval.runner import read_records


def regrade(run_dir: Path, threshold: float) -> tuple[int, int]:
    """(records changed, records graded by the LLM question)."""
    path = run_dir / "generations.jsonl"
    out, changed, llm = [], 0, 0
    for r in read_records(path):  # a torn last line is dropped: the next eval run redoes that generation
        if r.get("refusal_reason") == "llm" and r.get("p_complies") is not None:
            llm += 1
            refused = r["p_complies"] < threshold
            changed += refused != r["refusal"]
            r["refusal"] = refused
        out.append(json.dumps(r, ensure_ascii=False))
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(out) + "\n")
    os.replace(tmp, path)
    return changed, llm


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--threshold", type=float, default=RefusalGrader.threshold)
    a = ap.parse_args(argv)
    changed, llm = regrade(a.run_dir, a.threshold)
    print(f"{a.run_dir}: {changed} of {llm} LLM-graded records changed at threshold {a.threshold}")


if __name__ == "__main__":
    main()
