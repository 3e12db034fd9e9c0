"""Re-apply the refusal grader to a finished (or paused) evaluation, after its threshold or its rules changed.

Every record graded by the LLM question stores its P(A) (`p_complies`); rules-decided records do not depend on the
threshold. So a changed threshold is applied by rewriting `refusal` from the stored value, without any model:
python -m alignbeam.eval.regrade RUN_DIR [--threshold 0.6]. When the keyword or off-topic rules changed, `--rules`
grades every rules-decided record again: one the rules no longer decide is asked the LLM question on the run's
judge model (loaded only when such a record exists). The file is rewritten atomically; never run this while
`alignbeam eval` writes to RUN_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from alignbeam.engines import load_model
from alignbeam.eval.grader import RULE_REASONS, RefusalGrader, rule_grade
from alignbeam.eval.runner import read_records


def regrade(run_dir: Path, threshold: float, grader: Callable[[], RefusalGrader] | None = None) -> tuple[int, int]:
    """(records changed, records graded by the LLM question). With `grader` (a factory, called at most once), the
    rules are applied again to every rules-decided record."""
    path = run_dir / "generations.jsonl"
    out, changed, llm = [], 0, 0
    loaded: RefusalGrader | None = None
    for r in read_records(path):  # a torn last line is dropped: the next eval run redoes that generation
        if grader is not None and r.get("refusal_reason") in RULE_REASONS:
            rules = rule_grade(r["prompt"], r["response"])
            if rules is None:
                loaded = loaded or grader()
                rules = loaded.grade(r["prompt"], r["response"])
            changed += rules.refused != r["refusal"]
            r["refusal"], r["refusal_reason"], r["p_complies"] = rules.refused, rules.reason, rules.p_complies
            if rules.reason != "llm":
                out.append(json.dumps(r, ensure_ascii=False))
                continue
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
    ap.add_argument("--rules", action="store_true", help="grade the rules-decided records again (rules changed)")
    a = ap.parse_args(argv)

    def grader() -> RefusalGrader:
        cfg = json.loads((a.run_dir / "config.json").read_text())
        name = cfg["anchor"] if cfg.get("judge", "anchor") == "anchor" else cfg["judge"]
        return RefusalGrader(load_model(name, engine=cfg.get("engine", "auto")), threshold=a.threshold)

    changed, llm = regrade(a.run_dir, a.threshold, grader if a.rules else None)
    print(f"{a.run_dir}: {changed} of {llm} LLM-graded records changed at threshold {a.threshold}")


if __name__ == "__main__":
    main()
