"""`alignbeam calibrate`: choose the operating point on your own traffic; the work is `alignbeam.calibrate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from alignbeam.cli.common import console, err_console, fail
from alignbeam.cli.options import ModelOptions, check_knobs, with_knobs, with_models
from alignbeam.errors import AlignBeamError

Traffic = Annotated[
    list[Path] | None,
    typer.Option(
        "--traffic",
        help="Your traffic: JSONL of chat request bodies (or a server log), or CSV/JSONL with a prompt column; "
        "a 'label' of harmful marks a row harmful, every other row is acceptable (repeatable)",
    ),
]
FromLog = Annotated[
    list[Path] | None,
    typer.Option("--from-log", help="A shadow-mode server log (alignbeam serve --enforce false) read as traffic"),
]
Harmful = Annotated[list[Path] | None, typer.Option("--harmful", help="Your own red-team file (repeatable)")]
PerFamily = Annotated[
    int, typer.Option(help="Rows from each harmful family of the data folder (0: only --harmful files)", min=0)
]
Concurrency = Annotated[
    int,
    typer.Option(
        help="Rows recorded at once; above 1 only when every model is a URL (the serving engines batch them). "
        "The same records as 1, written as each finishes",
        min=1,
    ),
]
MaxOver = Annotated[float | None, typer.Option(help="Target: at most this share of your traffic refused")]
MinRefusal = Annotated[float | None, typer.Option(help="Target: at least this share of harmful requests refused")]


@with_models
@with_knobs
def calibrate_cmd(
    traffic: Traffic = None,
    from_log: FromLog = None,
    harmful: Harmful = None,
    harmful_per_family: PerFamily = 56,
    max_over_refusal: MaxOver = None,
    min_refusal: MinRefusal = None,
    column: Annotated[str, typer.Option(help="Prompt column of CSV/JSONL traffic")] = "prompt",
    data_dir: Annotated[Path | None, typer.Option(help="Benchmark data folder (default ../shared/data)")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/calibrate-NAME); reruns resume")] = None,
    write_config: Annotated[Path | None, typer.Option(help="Config file to write (default OUT/alignbeam.yaml)")] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the harmful samples and of the held-out split")] = 0,
    concurrency: Concurrency = 1,
    *,
    models: ModelOptions,
    knobs: dict[str, Any],
) -> None:
    """Choose the operating point for your traffic: refusal of harmful requests against over-refusal of yours.

    Every request is run once through the real decision path with every read recorded; every setting of the
    decision knobs is then replayed from the records. The point is chosen on half your traffic, and its
    over-refusal is measured on the other half, with a 95% interval (report.md, frontier.png, alignbeam.yaml).
    """
    from alignbeam.calibrate import Target, harmful_rows, load_traffic, redteam_rows

    files = [*(traffic or []), *(from_log or [])]
    try:
        if not files:
            raise AlignBeamError("give your traffic: --traffic FILE (or --from-log FILE from a shadow-mode server)")
        target = Target(max_over_refusal, min_refusal)
        check_knobs(models.preset, knobs)
        rows = [row for f in files for row in load_traffic(f, column)]
        rows += [row for f in harmful or [] for row in redteam_rows(f, column)]
        if harmful_per_family:
            rows += harmful_rows(data_dir, harmful_per_family, split_seed)
        folder = out or Path("runs") / f"calibrate-{files[0].stem}"
        ab = models.build(console, **knobs)
        config = write_config or folder / "alignbeam.yaml"
        cal = _run(ab, rows, target, folder, config, models, split_seed, concurrency)
    except AlignBeamError as e:
        fail(e)
    except KeyboardInterrupt:
        err_console.print("interrupted: the records made so far are kept; rerun the same command to resume")
        raise typer.Exit(130) from None
    held = cal.choice.held_out
    console.print(
        f"chosen: {cal.choice.to_dict()['setting']}\n"
        f"on {held.n_traffic} held-out traffic rows: {100 * held.over_refusal:.1f}% over-refused "
        f"(95% CI {100 * held.over_refusal_ci[0]:.1f}-{100 * held.over_refusal_ci[1]:.1f}%); on {held.n_harmful} "
        f"rows of held-out harmful families: {100 * held.refusal:.1f}% refused; median latency {held.latency_x}x "
        f"the draft\nreport: {cal.out_dir / 'report.md'}  config: {cal.config_path}  "
        f"({len(cal.points)} points replayed in {cal.sweep_seconds:.1f} s)"
    )
    for w in cal.choice.warnings():
        err_console.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False)


def _run(
    ab: Any, rows: list, target: Any, folder: Path, config: Path, models: ModelOptions, seed: int, concurrency: int
) -> Any:
    from dataclasses import asdict

    from alignbeam.calibrate import calibrate

    named = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(models).items() if v is not None}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as prog:
        task = prog.add_task("calibrate", total=len(rows))

        def progress(done: int, total: int, what: str) -> None:
            prog.update(task, completed=done, total=total, description=f"calibrate: {what}")

        return calibrate(
            ab,
            rows,
            target,
            folder,
            write_config=config,
            models=named,
            seed=seed,
            progress=progress,
            concurrency=concurrency,
        )
