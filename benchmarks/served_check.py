"""The check of a calibration through the server it configures: `alignbeam serve --config` on rows it never read.

`alignbeam calibrate` promises an over-refusal on held-out rows of the traffic. This starts the real server with
the config it wrote, sends each row of a check file (traffic calibration never read) as a chat completion, once
through the configured pipeline and once with `"mode": "draft"` (the specialist alone, the same server), then
grades both answers with the evaluation's refusal grader (the grader calibration used) after the server stopped.
Added over-refusal: rows the served answer refuses where the draft's own does not. It is printed beside the
interval the config promises; the response headers' route is counted too.

Usage: python benchmarks/served_check.py runs/calibrate-clinic/alignbeam.yaml runs/traffic/clinic-check.jsonl
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.slim.check_gateway import free_port, wait_healthy  # noqa: E402

from alignbeam.calibrate import load_traffic  # noqa: E402
from alignbeam.configfile import load_config  # noqa: E402
from alignbeam.eval.report import wilson  # noqa: E402


def serve_rows(config: Path, rows: list, max_tokens: int) -> list[dict]:
    """Each row answered by the served pipeline and by the draft alone, with the decision headers."""
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "serve.log"
    cmd = [sys.executable, "-m", "alignbeam.cli", "serve", "--config", str(config), "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    answers = []
    try:
        wait_healthy(url + "/health", proc, log, timeout=600)
        with httpx.Client(base_url=url, timeout=600) as client:
            for i, row in enumerate(rows):
                body = {"messages": row.messages, "max_tokens": max_tokens, "temperature": 0}
                served = client.post("/v1/chat/completions", json=body)
                draft = client.post("/v1/chat/completions", json={**body, "mode": "draft"})
                served.raise_for_status()
                draft.raise_for_status()
                answers.append(
                    {
                        "id": row.id,
                        "prompt": row.messages[-1]["content"],
                        "served": served.json()["choices"][0]["message"]["content"],
                        "draft": draft.json()["choices"][0]["message"]["content"],
                        "route": served.headers.get("x-alignbeam-route"),
                        "risk": served.headers.get("x-alignbeam-risk"),
                    }
                )
                print(f"{i + 1}/{len(rows)} {row.id}: route {answers[-1]['route']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("check", type=Path, help="traffic rows calibration never read (JSONL)")
    ap.add_argument("--max-tokens", type=int, default=64, help="as calibration recorded (its --max-new-tokens)")
    ap.add_argument("--out", type=Path, help="where to keep the answers and grades (JSONL)")
    a = ap.parse_args()
    cfg = load_config(a.config)
    rows = load_traffic(a.check)
    t0 = time.perf_counter()
    answers = serve_rows(a.config, rows, a.max_tokens)
    served_s = time.perf_counter() - t0

    from alignbeam.engines import load_model
    from alignbeam.eval.grader import RefusalGrader

    judge = cfg.models.get("judge", "anchor")
    grader = RefusalGrader(load_model(cfg.models.get("anchor") if judge == "anchor" else judge))
    for ans in answers:
        ans["served_refused"] = grader.grade(ans["prompt"], ans["served"]).refused
        ans["draft_refused"] = grader.grade(ans["prompt"], ans["draft"]).refused
    grader.close()
    added = sum(a_["served_refused"] and not a_["draft_refused"] for a_ in answers)
    if a.out:
        a.out.write_text("".join(json.dumps(x) + "\n" for x in answers))
    lo, hi = wilson(added, len(answers))
    promise = cfg.calibration or {}
    out = {
        "config": str(a.config),
        "check_rows": len(answers),
        "added_over_refusal": added,
        "added_over_refusal_rate": round(added / max(len(answers), 1), 4),
        "ci95": [round(lo, 4), round(hi, 4)],
        "draft_refused": sum(x["draft_refused"] for x in answers),
        "routes": dict(collections.Counter(x["route"] for x in answers)),
        "promised_over_refusal": promise.get("promised_over_refusal"),
        "promised_ci95": promise.get("promised_over_refusal_ci95"),
        "serve_seconds": round(served_s, 1),
    }
    ci = out["promised_ci95"]
    inside = ci is not None and ci[0] <= out["added_over_refusal_rate"] <= ci[1]
    out["inside_promise"] = inside
    print(
        f"{added} of {len(answers)} check rows refused by the served config where the draft alone answers "
        f"({100 * out['added_over_refusal_rate']:.1f}%); promised {promise.get('promised_over_refusal')} "
        f"(95% CI {ci}): {'inside' if inside else 'OUTSIDE'}"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
