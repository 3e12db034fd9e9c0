"""`alignbeam eval`: systems on benchmark suites; the harness itself lives in `alignbeam.eval`."""

from __future__ import annotations

import dataclasses
import json as _json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from alignbeam.cli.common import console, err_console, fail
from alignbeam.cli.options import ModelOptions, with_models
from alignbeam.errors import AlignBeamError


@with_models
def eval_cmd(
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
    *,
    models: ModelOptions,
) -> None:
    """Evaluate systems on a benchmark suite: refusal, over-refusal, utility, latency; writes a report."""
    from alignbeam.eval import datasets as D
    from alignbeam.eval import grader as G
    from alignbeam.eval import report, runner
    from alignbeam.eval.systems import Responder, parse_systems

    try:
        if kind not in ("harmful", "benign"):
            raise AlignBeamError("--kind must be harmful or benign")
        systems = parse_systems(system or ["draft", "alignbeam"])
        if prompts is not None:
            the_suite = runner.Suite(f"prompts-{prompts.stem}", [], max_new_tokens or 128, seed or 0)
            items = {prompts.stem: D.load_prompt_file(prompts, column, kind)}  # type: ignore[arg-type]
        else:
            the_suite = runner.load_suite(suite)
            if seed is not None:
                the_suite.seed = seed
            items = runner.suite_items(the_suite, data_dir)
        mnt = max_new_tokens or the_suite.max_new_tokens
        lengths = runner.suite_lengths(the_suite, max_new_tokens) if prompts is None else {prompts.stem: mnt}
        out_dir = out or Path("runs") / f"eval-{the_suite.name}"
        # the `alignbeam` system is the paper's method (with its overrides) unless --preset names another base;
        # `recommended` is the default preset, as its own system
        ab = dataclasses.replace(models, preset=models.preset or "paper").build(console)
        grader_model = getattr(ab.judge, "model", None) or ab.anchor
        if grader_model is None:
            raise AlignBeamError("the refusal grader needs a judge or anchor model")
        grader = G.RefusalGrader(grader_model)
        val_path = out_dir / "grader_validation.json"
        if validate_grader and val_path.exists():  # a resumed run: measured already, same grader
            val = _json.loads(val_path.read_text())
            console.print(f"refusal grader agreement with human labels: {100 * val['agreement']:.1f}% (n={val['n']})")
        elif validate_grader:
            rows = G.load_human_labels(data_dir or D.default_data_dir())
            with Progress(
                TextColumn("grader vs human labels"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as prog:
                task = prog.add_task("v", total=len(rows))
                val = G.validate(grader, data_dir or D.default_data_dir(), lambda i: prog.update(task, completed=i))
            console.print(
                f"refusal grader agreement with human labels: {100 * val['agreement']:.1f}% (n={val['n']}; "
                f"dev {100 * val['agreement_dev']:.1f}%, held-out {100 * val['agreement_heldout']:.1f}%; "
                f"keyword rule alone {100 * val['keyword_agreement']:.1f}%, "
                f"keyword + off-topic rules {100 * val['rules_agreement']:.1f}%)"
            )
            out_dir.mkdir(parents=True, exist_ok=True)
            val_path.write_text(_json.dumps(val, indent=2))
        cmd = shlex.join(["alignbeam", *sys.argv[1:]]) if sys.argv[0].endswith("alignbeam") else "alignbeam eval ..."
        runner.write_config(
            out_dir,
            command=cmd,
            suite=the_suite.name,
            systems=[s.name for s in systems],
            draft=models.draft,
            anchor=models.anchor,
            judge=models.judge,
            judge_method=models.judge_method,
            engine=models.engine,
            max_new_tokens=lengths,
            seed=the_suite.seed,
            datasets={k: len(v) for k, v in items.items()},
        )
        total = len(systems) * sum(len(v) for v in items.values())
        responder = Responder(ab)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
        ) as prog:
            task = prog.add_task(f"eval {the_suite.name}", total=total)
            records = runner.run(
                responder,
                grader,
                systems,
                items,
                out_dir,
                lengths,
                on_progress=lambda name: prog.update(task, advance=1, description=f"eval: {name}"),
                allow_unsandboxed=allow_unsandboxed,
            )
        summary = report.write(out_dir, records, f"AlignBeam evaluation: {the_suite.name}", cmd)
    except AlignBeamError as e:
        fail(e)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: what was generated is in {out_dir}/generations.jsonl; rerun to resume")
        raise typer.Exit(130) from None
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
