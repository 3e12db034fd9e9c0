"""`alignbeam eval`: systems on benchmark suites; the harness itself lives in `alignbeam.eval`."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from alignbeam.cli.common import console, err_console, fail
from alignbeam.cli.options import ModelOptions, with_models
from alignbeam.configfile import load_config
from alignbeam.errors import AlignBeamError

_CONCURRENCY_HELP = (
    "Answers in flight at once; above 1 only when every model is a URL (the serving engines batch them). Same "
    "records as 1; latency is then each answer's time with the others running beside it"
)


@with_models
def eval_cmd(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option(help="smoke | paper | full, or a .yaml/.toml suite file")] = "smoke",
    system: Annotated[
        list[str] | None,
        typer.Option(
            "--system",
            "-s",
            help="draft | anchor | alignbeam[:k=v,...] | mixing | router (repeatable; "
            "sweeps: alignbeam:alpha=0.2|0.5). Default: draft and alignbeam",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/eval-SUITE); reruns resume")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Benchmark data folder (default ../shared/data)")] = None,
    prompts: Annotated[Path | None, typer.Option(help="Your own prompts: a CSV or JSONL file")] = None,
    column: Annotated[str, typer.Option(help="Prompt column in --prompts")] = "prompt",
    kind: Annotated[str, typer.Option(help="harmful | benign: what --prompts holds")] = "harmful",
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", "-n", help="Override the suite's")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed for subsets (default: the suite's)")] = None,
    validate_grader: Annotated[bool, typer.Option(help="First measure the refusal grader on human labels")] = False,
    allow_unsandboxed: Annotated[
        bool,
        typer.Option(
            "--allow-unsandboxed",
            help="Let HumanEval/MBPP scoring run generated code as root without a sandbox when bubblewrap is "
            "unusable (a risk: that code can read and write anything root can). Default: refuse",
        ),
    ] = False,
    concurrency: Annotated[int, typer.Option(help=_CONCURRENCY_HELP)] = 1,
    *,
    models: ModelOptions,
) -> None:
    """Evaluate systems on a benchmark suite: refusal, over-refusal, utility, latency; writes a report."""
    from alignbeam.eval.evaluate import output_dir
    from alignbeam.systems import parse_systems

    out_dir = out or Path("runs")
    try:  # every input is checked before the models load
        if kind not in ("harmful", "benign"):
            raise AlignBeamError("--kind must be harmful or benign")
        systems = parse_systems(system or ["draft", "alignbeam"])
        out_dir = out or output_dir(suite, prompts)
        # the `alignbeam` system is the paper's method (with its overrides) unless --preset names another base;
        # `recommended` is the default preset, as its own system
        # with --config, the file's knobs are the pipeline's (the `alignbeam` system is then the configured one)
        knobs = load_config(ctx.params["config"]).knobs if ctx.params.get("config") else {}
        ab = dataclasses.replace(models, preset=models.preset or "paper").build(console, **knobs)
        options = dict(prompts=prompts, column=column, kind=kind, out=out_dir, data_dir=data_dir, seed=seed)
        options |= dict(max_new_tokens=max_new_tokens, validate_grader=validate_grader, concurrency=concurrency)
        result = _run(ab, models, systems, suite, allow_unsandboxed=allow_unsandboxed, **options)
        out_dir = result.out_dir
    except AlignBeamError as e:
        fail(e)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: what was generated is in {out_dir}/generations.jsonl; rerun to resume")
        raise typer.Exit(130) from None
    if result.grader_validation is not None:
        _print_validation(result.grader_validation)
    _print_summary(result.summary, out_dir)


def _run(ab: Any, models: ModelOptions, systems: list, suite: str, **options: Any) -> Any:
    """`evaluate()` with a progress bar, recording how the run was started (the command, the model options)."""
    from alignbeam.eval.evaluate import evaluate

    cmd = shlex.join(["alignbeam", *sys.argv[1:]]) if sys.argv[0].endswith("alignbeam") else "alignbeam eval ..."
    about = {"command": cmd, "draft": models.draft, "anchor": models.anchor, "judge": models.judge}
    about |= {"judge_method": models.judge_method, "engine": models.engine}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as prog:
        task = prog.add_task("eval", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            label = "grader vs human labels" if stage == "grader" else f"eval: {stage}"
            prog.update(task, completed=done, total=total, description=label)

        return evaluate(ab, systems, suite, progress=progress, about=about, **options)


def _print_validation(val: dict) -> None:
    if "agreement_dev" not in val:
        console.print(f"refusal grader agreement with human labels: {100 * val['agreement']:.1f}% (n={val['n']})")
        return
    console.print(
        f"refusal grader agreement with human labels: {100 * val['agreement']:.1f}% (n={val['n']}; "
        f"dev {100 * val['agreement_dev']:.1f}%, held-out {100 * val['agreement_heldout']:.1f}%; "
        f"keyword rule alone {100 * val['keyword_agreement']:.1f}%, "
        f"keyword + off-topic rules {100 * val['rules_agreement']:.1f}%)"
    )


def _print_summary(summary: dict, out_dir: Path) -> None:
    t = Table(title=f"results ({out_dir}/report.md)")
    for col in ("system", "dataset", "metric", "rate", "95% CI", "n", "latency ratio"):
        t.add_column(col)
    for sys_, per in summary.items():
        for ds, e in per.items():
            t.add_row(
                sys_,
                ds,
                e["metric"],
                f"{100 * e['rate']:.1f}%",
                f"{100 * e['ci95'][0]:.0f}–{100 * e['ci95'][1]:.0f}%",
                str(e["n"]),
                str(e.get("latency_ratio", "–")),
            )
    console.print(t)
