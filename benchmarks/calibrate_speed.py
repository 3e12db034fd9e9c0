"""How long calibration takes: recording rows (per row, traffic and harmful apart) and replaying the sweep.

Reads a calibration folder `alignbeam calibrate` wrote (its records keep each phase's time), replays the full
grid of operating points from the records and times that, and projects the recording time of 500 traffic plus
500 harmful rows from the measured per-row medians (a projection: it says so).

Usage: python benchmarks/calibrate_speed.py runs/calibrate-clinic [--repeat 3]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from alignbeam.calibrate.replay import grid, sweep
from alignbeam.config import preset
from alignbeam.eval.runner import read_records
from alignbeam.method.judge import SafetyJudge


def _judge_constants() -> SafetyJudge:
    """The default safety judge's decision constants (gate, read_gate, refusal bound, combine), with no model
    loaded: replay needs nothing else of it."""
    judge = object.__new__(SafetyJudge)  # the dataclass defaults, __post_init__ (which reads the model) skipped
    return judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    records = read_records(a.folder / "records.jsonl")
    per_row = {True: [], False: []}
    for r in records:
        # a record's own wall time (reads and grading included); older records kept only the serving phases
        per_row[r["harmful"]].append(r["record_s"] if "record_s" in r else sum(r["ms"].values()) / 1000)
    settings = grid()
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        sweep(records, settings, _judge_constants(), preset("recommended"))
        times.append(time.perf_counter() - t0)
    med = {k: statistics.median(v) if v else 0.0 for k, v in per_row.items()}
    mean = {k: statistics.fmean(v) if v else 0.0 for k, v in per_row.items()}  # a few slow rows weigh in the total
    out = {
        "rows": len(records),
        "traffic_rows": len(per_row[False]),
        "harmful_rows": len(per_row[True]),
        "median_s_per_traffic_row": round(med[False], 2),
        "median_s_per_harmful_row": round(med[True], 2),
        "recorded_minutes": round(sum(sum(v) for v in per_row.values()) / 60, 1),
        "projected_minutes_500_traffic_500_harmful": round(500 * (med[False] + med[True]) / 60, 1),
        "mean_s_per_traffic_row": round(mean[False], 2),
        "mean_s_per_harmful_row": round(mean[True], 2),
        "projected_minutes_500_500_from_means": round(500 * (mean[False] + mean[True]) / 60, 1),
        "sweep_points": len(settings),
        "sweep_seconds_min": round(min(times), 2),
    }
    print(f"{out['rows']} records; {out['sweep_points']} points replayed in {out['sweep_seconds_min']} s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
