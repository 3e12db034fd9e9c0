"""What every command shares: the consoles and the one-line error a user can act on."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def fail(e: Exception) -> NoReturn:
    """Errors a user can fix are printed as one red line with what to do, never as a traceback."""
    print_error(e)
    raise typer.Exit(2)


def print_error(e: Exception) -> None:
    """The message as written (escaped: "pip install 'alignbeam[hf]'" is text, not a style tag), on one line."""
    err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
