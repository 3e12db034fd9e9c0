"""`calibrate()`: record a deployer's traffic and harmful sets once, replay every operating point, choose one.

Records are appended to `records.jsonl` as they are made, so an interrupted calibration resumes where it stopped
(a rerun skips the rows it has); the sweep, the choice, the report and the config file are remade from all the
records at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbeam.api import AlignBeam
from alignbeam.calibrate.point import Choice, Target, operating_point
from alignbeam.calibrate.record import Recorder
from alignbeam.calibrate.replay import Point, frontier, grid
from alignbeam.calibrate.report import write_report
from alignbeam.calibrate.rows import Row
from alignbeam.eval.evaluate import check_concurrency
from alignbeam.eval.runner import in_pool, read_records

#: progress(done, total, what)
Progress = Callable[[int, int, str], None]


@dataclass
class Calibration:
    out_dir: Path
    choice: Choice
    points: list[Point]
    frontier: list[Point]
    records: list[dict[str, Any]]
    sweep_seconds: float
    config_path: Path | None = None


def record_all(
    ab: AlignBeam, rows: Sequence[Row], out_dir: Path, progress: Progress | None = None, concurrency: int = 1
) -> list[dict]:
    """Every row's record, resuming from `out_dir/records.jsonl`. With `concurrency` > 1 (every model on a serving
    engine) that many rows are recorded at once; each record is written whole, under a lock, as it finishes, so
    the file's order follows completion and a killed run loses only the rows in flight."""
    check_concurrency(ab, concurrency)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "records.jsonl"
    done = {r["id"]: r for r in read_records(path)}
    recorder = Recorder(ab, ab.config, grid())
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with open(path, "a") as f:
            f.write("\n")  # a run killed mid-line: the next record starts on a line of its own
    todo = list({row.id: row for row in rows if row.id not in done}.values())  # each id once
    lock = threading.Lock()
    with open(path, "a") as f:

        def work(row: Row) -> None:
            rec = recorder.record(row)
            with lock:
                done[row.id] = rec
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                if progress:
                    progress(len(rows) - sum(r.id not in done for r in rows), len(rows), row.family)

        if progress:
            progress(len(rows) - len(todo), len(rows), "resumed" if done else "starting")
        try:
            if concurrency == 1:
                for row in todo:  # in this thread: Ctrl-C stops at once, losing only the row in flight
                    work(row)
            else:
                in_pool(work, todo, concurrency, "calibrate")
        finally:
            recorder.close()
    ids = {r.id for r in rows}
    return [r for r in done.values() if r["id"] in ids]


def calibrate(
    ab: AlignBeam,
    rows: Sequence[Row],
    target: Target,
    out_dir: str | Path,
    *,
    write_config: str | Path | None = None,
    models: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    concurrency: int = 1,
) -> Calibration:
    """Record `rows` (traffic and harmful) through `ab`, sweep the decision knobs, choose the point that meets
    `target` on half the traffic, and promise its over-refusal on the other half. Writes the records, the sweep,
    a report with a plot, and (with `write_config`) a deployment config file at the chosen point."""
    out = Path(out_dir)
    records = record_all(ab, rows, out, progress, concurrency)
    t0 = time.perf_counter()
    choice, points = operating_point(records, grid(), ab.judge, ab.config, target, seed)
    seconds = time.perf_counter() - t0
    cal = Calibration(out, choice, points, frontier(points), records, seconds)
    if write_config is not None:
        cal.config_path = Path(write_config)
        _write_config(cal, ab, models or {})
    write_report(cal)
    return cal


def _write_config(cal: Calibration, ab: AlignBeam, models: dict[str, Any]) -> None:
    from alignbeam.configfile import dump

    paper = type(ab.config)().to_dict()
    # the response length only bounds what calibration reads (refusal shows in the opening): not a deployment choice
    knobs = {k: v for k, v in ab.config.to_dict().items() if v != paper[k] and k != "max_new_tokens"}
    check = ab.config.anchor_check or 12
    knobs.update(cal.choice.setting.knobs(check))
    held = cal.choice.held_out
    calibration = {
        "target": cal.choice.to_dict()["target"],
        "promised_over_refusal": round(held.over_refusal, 4),
        "promised_over_refusal_ci95": [round(x, 4) for x in held.over_refusal_ci],
        "held_out_traffic_rows": held.n_traffic,
        "refusal_on_held_out_harmful_families": round(held.refusal, 4),
        "refusal_ci95": [round(x, 4) for x in held.refusal_ci],
        "held_out_harmful_rows": held.n_harmful,
        "median_latency_x_draft": held.latency_x,
        "report": str(cal.out_dir / "report.md"),
    }
    if cal.choice.warnings():
        calibration["warnings"] = cal.choice.warnings()
    assert cal.config_path is not None
    cal.config_path.parent.mkdir(parents=True, exist_ok=True)
    cal.config_path.write_text(dump({"models": models, "knobs": knobs, "calibration": calibration}))
