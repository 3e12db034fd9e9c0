"""What every command shares: the consoles and the one-line error a user can act on."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(e: Exception) -> NoReturn:
    """Errors a user can fix are printed as one red line with what to do, never as a traceback."""
    err_console.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(2)
