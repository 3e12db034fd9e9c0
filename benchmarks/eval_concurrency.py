"""`alignbeam eval --concurrency 8` against `--concurrency 1` (#36): the same items, every model a URL of a real
llama-server (SmolLM2 the draft, Qwen2.5-Coder-1.5B the anchor, judge and grader), greedy.

    flock /tmp/model.lock python benchmarks/eval_concurrency.py [--n 12] [--concurrency 8]

Prints the wall time and throughput (answers per second) of each run, their ratio, and whether the two runs made
the same refusal decision (and the same text) for every (system, dataset, item); the last line is JSON. The
records' `latency_s` are compared too: with 8 in flight each answer waits for the engines' shared time, so its
latency grows while the throughput does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.slim.check_gateway import llama_server  # noqa: E402

from alignbeam import AlignBeam  # noqa: E402
from alignbeam.eval.evaluate import evaluate  # noqa: E402


def suite_file(folder: Path, n: int) -> Path:
    """n harmful (AdvBench) and n harmless (XSTest safe) requests, 32 new tokens: refusal and over-refusal."""
    path = folder / f"suite-{n}.yaml"
    path.write_text(
        f"name: concurrency\nmax_new_tokens: 32\ndatasets:\n  - {{name: advbench, n: {n}}}\n"
        f"  - {{name: xstest_safe, n: {n}}}\n"
    )
    return path


def timed_run(ab: AlignBeam, suite: Path, out: Path, concurrency: int) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    result = evaluate(ab, ["draft", "alignbeam"], str(suite), out=out, concurrency=concurrency)
    return time.perf_counter() - t0, result.records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="items per dataset (two datasets, two systems)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--llama-server", default=str(ROOT / ".venv/bin/llama-server"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alignbeam-evalconc-"))
    procs = []
    try:
        draft, draft_url = llama_server(args.llama_server, "smollm2-135m", tmp, parallel=16)
        procs.append(draft)
        anchor, anchor_url = llama_server(args.llama_server, "qwen2.5-coder-1.5b", tmp, parallel=16)
        procs.append(anchor)
        ab = AlignBeam(draft=draft_url, anchor=anchor_url, judge="anchor", preset="paper")
        timed_run(ab, suite_file(tmp, 1), tmp / "warm", 1)  # not timed: the servers' first requests, the bridge
        suite = suite_file(tmp, args.n)
        t1, seq = timed_run(ab, suite, tmp / "c1", 1)
        tn, par = timed_run(ab, suite, tmp / "cn", args.concurrency)
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
    print_figures(args, t1, seq, tn, par)
    shutil.rmtree(tmp, ignore_errors=True)


def print_figures(args: argparse.Namespace, t1: float, seq: list[dict], tn: float, par: list[dict]) -> None:
    key = lambda r: (r["system"], r["dataset"], r["id"])  # noqa: E731
    a, b = {key(r): r for r in seq}, {key(r): r for r in par}
    same_refusal = sum(a[k].get("refusal") == b[k].get("refusal") for k in a if k in b)
    same_text = sum(a[k]["response"] == b[k]["response"] for k in a if k in b)
    lat1, latn = statistics.median(r["latency_s"] for r in seq), statistics.median(r["latency_s"] for r in par)
    out = {
        "answers": len(seq),
        "concurrency": args.concurrency,
        "wall_s_c1": round(t1, 1),
        f"wall_s_c{args.concurrency}": round(tn, 1),
        "throughput_c1": round(len(seq) / t1, 3),
        f"throughput_c{args.concurrency}": round(len(par) / tn, 3),
        "throughput_ratio": round(t1 / tn, 2),
        "same_records": len(a) == len(b) == len(set(a) & set(b)),
        "same_refusal": f"{same_refusal}/{len(a)}",
        "same_text": f"{same_text}/{len(a)}",
        "median_latency_s_c1": lat1,
        f"median_latency_s_c{args.concurrency}": latn,
    }
    for k, v in out.items():
        print(f"{k}: {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
