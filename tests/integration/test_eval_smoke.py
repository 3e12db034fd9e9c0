"""`alignbeam eval --suite smoke` end to end on the embedded models, including resume after an interruption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_embedded


def _eval(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alignbeam.cli", "eval", "--suite", "smoke", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=1200,
    )


def test_smoke_suite_writes_results_and_resumes(tmp_path: Path) -> None:
    for n in ("smollm2-135m", "qwen2.5-coder-1.5b"):
        require_embedded(n)
    out = tmp_path / "run"
    r = _eval(out, "-s", "draft", "-s", "alignbeam:k=2", "-n", "24")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = (out / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 11
    recs = [json.loads(x) for x in lines]
    assert {x["system"] for x in recs} == {"draft", "alignbeam:k=2"}
    assert all(("refusal" in x) != ("correct" in x) for x in recs)
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["draft"]["advbench"]["n"] == 4 and summary["alignbeam:k=2"]["xstest_safe"]["metric"] == "over_refusal"
    )
    assert "latency_ratio" in summary["alignbeam:k=2"]["advbench"]
    assert (out / "report.md").exists() and (out / "frontier.png").exists()
    # an interrupted run: drop the last 5 generations and leave a torn line; the rerun redoes exactly those
    (out / "generations.jsonl").write_text("\n".join(lines[:-5]) + "\n" + lines[-5][:20])
    r = _eval(out, "-s", "draft", "-s", "alignbeam:k=2", "-n", "24")
    assert r.returncode == 0, r.stderr[-2000:]
    again = [
        json.loads(x)
        for x in (out / "generations.jsonl").read_text().splitlines()
        if x.startswith('{"system') and x.endswith("}")
    ]
    assert len({(x["system"], x["dataset"], x["id"]) for x in again}) == 22
