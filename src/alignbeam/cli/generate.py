"""`alignbeam generate` and `alignbeam chat`: one response, or a conversation, through the public API."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from alignbeam.api import Result
from alignbeam.cli.common import console, err_console, fail
from alignbeam.cli.options import ModelOptions, check_knobs, with_knobs, with_models
from alignbeam.errors import AlignBeamError


def trace_table(res: Any) -> Table:
    """The K candidates as the judge saw them: score, mixed likelihood, bridge statistics, text."""
    tr = res.trace
    title = f"{len(tr.candidates)} candidates (chosen: #{tr.chosen})"
    if tr.request_risk is not None:
        title += f"; P(harmful request) {tr.request_risk:.2f}"
    routes = {
        "draft": " -> draft alone (gated)",
        "classifier": " -> flagged: full method",
        "anchor": " -> the anchor declined: its refusal stands",
        "prefill": " -> assistant prefill: full method",
        "uncalibrated": " -> no calibrated classifier: full method",
    }
    title += routes.get(tr.route or "", "")
    if tr.anchor_opening is not None:
        title += f" (the anchor's opening {'declined' if tr.anchor_refusal else 'did not decline'})"
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


def _stream_to_console(ab: Any, prompt: Any, trace: bool, system: str | None, knobs: dict[str, Any]) -> Any:
    """Print the response as it is generated; returns the Result. Text comes token by token where the
    configuration allows it (early judging, or a request gated to the draft alone); with full judging every
    candidate must be finished and judged first, so a spinner runs until the chosen text arrives."""
    status = console.status("generating...")
    status.start()
    shown = False  # the spinner stops at the first piece of text
    try:
        for item in ab.stream(prompt, trace=trace, system=system, **knobs):
            if isinstance(item, Result):
                console.print()
                return item
            if not shown:
                status.stop()
                shown = True
            console.print(item, end="", markup=False, highlight=False, soft_wrap=True)
    finally:
        status.stop()
    raise AssertionError("the stream ended without a result")  # AlignBeam.stream always ends with one


@with_models
@with_knobs
def generate(
    prompt: Annotated[str, typer.Argument(help="The user prompt ('-' reads standard input)")],
    system: Annotated[str | None, typer.Option(help="System message")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="Show the K candidates with their scores")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    baseline: Annotated[bool, typer.Option("--baseline", help="Also show the draft alone, side by side")] = False,
    *,
    models: ModelOptions,
    knobs: dict[str, Any],
) -> None:
    """Generate one response with AlignBeam (default: SmolLM2-135M draft, Qwen2.5-Coder-1.5B anchor and judge)."""
    if prompt == "-":
        prompt = sys.stdin.read()
    try:
        check_knobs(models.preset, knobs)
        ab = models.build(console)
        if not (json_out or baseline):  # plain output: the text as it comes
            res = _stream_to_console(ab, prompt, trace, system, knobs)
            if trace and res.trace is not None:
                console.print(trace_table(res))
                console.print("timings (ms): " + ", ".join(f"{k}={v:.0f}" for k, v in res.trace.timings_ms.items()))
            return
        with console.status("generating..."):
            res = ab.generate(prompt, trace=trace or json_out, system=system, **knobs)
            base = (
                ab.generate_draft(prompt, max_new_tokens=knobs.get("max_new_tokens"), system=system)
                if baseline
                else None
            )
    except AlignBeamError as e:
        fail(e)
    if json_out:
        out = res.to_dict()
        if base is not None:
            out["draft_alone"] = base.to_dict()
        console.print_json(data=out)
        return
    if base is not None:  # --baseline (the only way here without --json)
        from rich.columns import Columns
        from rich.panel import Panel

        console.print(
            Columns([Panel(base.text, title="draft alone", width=60), Panel(res.text, title="AlignBeam", width=60)])
        )
    if trace and res.trace is not None:
        console.print(trace_table(res))
        console.print("timings (ms): " + ", ".join(f"{k}={v:.0f}" for k, v in res.trace.timings_ms.items()))


@with_models
@with_knobs
def chat(
    system: Annotated[str | None, typer.Option(help="System message")] = None,
    trace: Annotated[bool, typer.Option("--trace")] = False,
    *,
    models: ModelOptions,
    knobs: dict[str, Any],
) -> None:
    """Interactive multi-turn chat through AlignBeam. Commands: /reset, /quit."""
    try:
        check_knobs(models.preset, knobs)
        ab = models.build(console)
    except AlignBeamError as e:
        fail(e)
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
            console.print("[bold green]assistant>[/] ", end="")
            res = _stream_to_console(ab, history, trace, system, knobs)
        except AlignBeamError as e:
            err_console.print(f"[red]error:[/] {e}")
            history.pop()
            continue
        if trace and res.trace is not None:
            console.print(trace_table(res))
        history.append({"role": "assistant", "content": res.text})
