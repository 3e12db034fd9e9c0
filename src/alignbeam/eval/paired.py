"""Two systems compared item by item: what changes when one knob changes, with the noise of small sets removed.

Two rates measured on 40 prompts each are ±15 points apart by chance alone; on the *same* 40 prompts most
answers agree, and the items where the two systems disagree are the whole story. For each dataset the two
systems share, this prints both rates, the discordant items (A refuses / answers where B does not: the counts a
McNemar test reads, with its exact two-sided p-value) and B's latency as a multiple of A's on those items.

The systems may come from one run folder or two (a variant run later on a subset of the items of a bigger run):
python -m alignbeam.eval.paired RUN_A SYSTEM_A [RUN_B] SYSTEM_B [--json]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from alignbeam.errors import AlignBeamError
from alignbeam.eval.runner import read_records


def _outcome(r: dict[str, Any]) -> bool:
    return bool(r.get("correct")) if r.get("kind") == "utility" else bool(r.get("refusal"))


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b and c discordant pairs (binomial test at 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{dataset: {n, metric, rate_a, rate_b, only_a, only_b, p_value, latency_ratio}} over the shared items."""
    by_a = {(r["dataset"], r["id"]): r for r in a}
    by_b = {(r["dataset"], r["id"]): r for r in b}
    out: dict[str, dict[str, Any]] = {}
    for ds in sorted({d for d, _ in by_a} & {d for d, _ in by_b}):
        keys = sorted(k for k in by_a.keys() & by_b.keys() if k[0] == ds)
        ra, rb = [by_a[k] for k in keys], [by_b[k] for k in keys]
        oa, ob = [_outcome(r) for r in ra], [_outcome(r) for r in rb]
        kind = ra[0]["kind"]
        only_a = sum(x and not y for x, y in zip(oa, ob, strict=True))
        only_b = sum(y and not x for x, y in zip(oa, ob, strict=True))
        lat_a, lat_b = sum(r["latency_s"] for r in ra), sum(r["latency_s"] for r in rb)
        out[ds] = {
            "n": len(keys),
            "metric": "utility" if kind == "utility" else ("refusal" if kind == "harmful" else "over_refusal"),
            "rate_a": round(sum(oa) / len(keys), 4),
            "rate_b": round(sum(ob) / len(keys), 4),
            "only_a": only_a,
            "only_b": only_b,
            "p_value": round(mcnemar_p(only_a, only_b), 4),
            "latency_ratio": round(lat_b / lat_a, 3) if lat_a else None,
        }
    return out


def _records(run_dir: Path, system: str) -> list[dict[str, Any]]:
    recs = [r for r in read_records(run_dir / "generations.jsonl") if r.get("system") == system]
    if not recs:
        systems = sorted({r.get("system", "?") for r in read_records(run_dir / "generations.jsonl")})
        raise AlignBeamError(f"{run_dir}: no records of system {system!r} (it has: {', '.join(systems) or 'none'})")
    return recs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("args", nargs="+", help="RUN_A SYSTEM_A [RUN_B] SYSTEM_B")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = ap.parse_args(argv)
    if len(a.args) not in (3, 4):
        ap.error("give RUN_A SYSTEM_A [RUN_B] SYSTEM_B")
    run_a, sys_a = Path(a.args[0]), a.args[1]
    run_b, sys_b = (Path(a.args[2]), a.args[3]) if len(a.args) == 4 else (run_a, a.args[2])
    try:
        res = compare(_records(run_a, sys_a), _records(run_b, sys_b))
    except AlignBeamError as e:
        raise SystemExit(f"error: {e}") from None
    if not res:
        raise SystemExit("error: the two systems share no items (same suite and seed?)")
    if a.json:
        print(json.dumps(res))
        return
    print(f"A = {sys_a} ({run_a}), B = {sys_b} ({run_b}); same items only")
    print(
        f"{'dataset':16s} {'metric':13s} {'n':>4s} {'A':>7s} {'B':>7s} "
        f"{'A only':>7s} {'B only':>7s} {'p':>6s} {'time B/A':>9s}"
    )
    for ds, e in res.items():
        print(
            f"{ds:16s} {e['metric']:13s} {e['n']:4d} {100 * e['rate_a']:6.1f}% {100 * e['rate_b']:6.1f}% "
            f"{e['only_a']:7d} {e['only_b']:7d} {e['p_value']:6.3f} {e['latency_ratio'] or float('nan'):9.2f}"
        )


if __name__ == "__main__":
    main()
