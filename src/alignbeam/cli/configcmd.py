"""`alignbeam config show`: the settings in force, merged from the defaults, a config file and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from alignbeam.cli.common import console
from alignbeam.cli.options import ModelOptions, with_knobs, with_models
from alignbeam.configfile import Deployment, dump, load_config, merged

config_app = typer.Typer(help="Deployment config files (YAML): models, knobs, server settings.", no_args_is_help=True)


@config_app.command("show")
@with_models
@with_knobs
def show(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="The config file (or --config); none: the defaults")] = None,
    *,
    models: ModelOptions,
    knobs: dict[str, Any],
) -> None:
    """Print every setting with the value in force: defaults, then the file, then the flags given (secrets masked)."""
    file = file or ctx.params.get("config")  # `config show --config FILE` works too
    deployment = load_config(file) if file is not None else Deployment()
    given = {k: v for k, v in vars(models).items() if v != getattr(ModelOptions(), k)}
    deployment.models = {**deployment.models, **given}
    console.print(dump(merged(deployment, knobs)), end="", markup=False, highlight=False)
