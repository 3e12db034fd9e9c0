"""`alignbeam ...`: a thin command line over the public API.

One module per command group; the options they share (models, knobs) are derived in `options.py`. Errors a user
can fix (AlignBeamError) are printed as one red line with what to do, never as a traceback.
"""

from __future__ import annotations

import sys

import typer

from alignbeam.cli.calibrate import calibrate_cmd
from alignbeam.cli.common import err_console, print_error
from alignbeam.cli.configcmd import config_app
from alignbeam.cli.evaluate import eval_cmd
from alignbeam.cli.generate import chat, generate
from alignbeam.cli.models import models_app
from alignbeam.cli.serve import serve
from alignbeam.errors import AlignBeamError

app = typer.Typer(
    help="AlignBeam: inference-time safety transfer for fine-tuned LLMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.command()(generate)
app.command()(chat)
app.command()(serve)
app.command("eval")(eval_cmd)
app.command("calibrate")(calibrate_cmd)


def main() -> None:
    try:
        app()
    except AlignBeamError as e:
        print_error(e)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
