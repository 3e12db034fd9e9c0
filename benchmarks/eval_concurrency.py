"""`alignbeam eval --concurrency 8` against `--concurrency 1` (#36): the same items, every model a URL of a real
llama-server (SmolLM2 the draft, Qwen2.5-Coder-1.5B the anchor, judge and grader), greedy.

    flock /tmp/model.lock python benchmarks/eval_concurrency.py [--n 12] [--concurrency 8]

Prints the wall time and throughput (answers per second) of each run, their ratio, and whether the two runs made
the same refusal decision (and the same text) for every (system, dataset, item); the last line is JSON. The
records' `latency_s` are compared too: with 8 in flight each answer waits for the engines' shared time, so its
latency grows while the throughput does. Each llama-server's CPU seconds during each run are printed beside the
wall time: a server runs on one thread (`-t 1`), so its CPU seconds are a floor for any run's wall time, however
many answers are in flight. Records that differ between the runs are printed (`differs ...`) with both answers.
`--repeat` runs `--concurrency 1` once more at the end and counts how many records match the first one: what
the servers alone change between two identical runs (their prompt caches hold other prefixes by then).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

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


def cpu_s(procs: list[subprocess.Popen]) -> list[float]:
    """Each process's CPU seconds so far (user + system)."""
    return [sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs]


def timed_run(
    ab: AlignBeam, suite: Path, out: Path, concurrency: int, procs: list[subprocess.Popen]
) -> tuple[float, list[dict], list[float]]:
    """Wall seconds, the records, and each server's CPU seconds during the run."""
    c0, t0 = cpu_s(procs), time.perf_counter()
    result = evaluate(ab, ["draft", "alignbeam"], str(suite), out=out, concurrency=concurrency)
    wall = time.perf_counter() - t0
    return wall, result.records, [round(b - a, 1) for a, b in zip(c0, cpu_s(procs), strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="items per dataset (two datasets, two systems)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", action="store_true", help="a second --concurrency 1 run at the end, as a control")
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
        timed_run(ab, suite_file(tmp, 1), tmp / "warm", 1, procs)  # not timed: the first requests, the bridge
        suite = suite_file(tmp, args.n)
        t1, seq, cpu1 = timed_run(ab, suite, tmp / "c1", 1, procs)
        tn, par, cpun = timed_run(ab, suite, tmp / "cn", args.concurrency, procs)
        again = timed_run(ab, suite, tmp / "c1-again", 1, procs)[1] if args.repeat else None
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
    print_figures(args, (t1, seq, cpu1), (tn, par, cpun), again)
    shutil.rmtree(tmp, ignore_errors=True)


def print_figures(args: argparse.Namespace, one: tuple, many: tuple, again: list[dict] | None) -> None:
    (t1, seq, cpu1), (tn, par, cpun) = one, many
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
        "server_cpu_s_c1": {"draft": cpu1[0], "anchor": cpu1[1]},
        f"server_cpu_s_c{args.concurrency}": {"draft": cpun[0], "anchor": cpun[1]},
    }
    if again is not None:
        c = {key(r): r for r in again}
        refusals = sum(a[k].get("refusal") == c[k].get("refusal") for k in a if k in c)
        out["c1_again_same_refusal"] = f"{refusals}/{len(a)}"
        out["c1_again_same_text"] = f"{sum(a[k]['response'] == c[k]['response'] for k in a if k in c)}/{len(a)}"
    for k in a:  # what differs, so a difference can be traced (server numerics, a race, a cache)
        if k in b and (a[k]["response"] != b[k]["response"] or a[k].get("refusal") != b[k].get("refusal")):
            print(f"differs {k}:", json.dumps({"c1": _brief(a[k]), f"c{args.concurrency}": _brief(b[k])}))
    for k, v in out.items():
        print(f"{k}: {v}")
    print(json.dumps(out))


def _brief(r: dict) -> dict:
    keep = ("response", "refusal", "refusal_reason", "p_complies", "route", "request_risk", "scores", "chosen")
    return {k: r.get(k) for k in keep if k in r} | {"candidates": r.get("candidates", [])}


if __name__ == "__main__":
    main()
