"""`alignbeam serve`: the OpenAI-compatible HTTP server over one AlignBeam pipeline."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from alignbeam.cli.common import console, err_console, fail
from alignbeam.cli.options import ModelOptions, check_knobs, extend, with_knobs, with_models
from alignbeam.configfile import load_config
from alignbeam.errors import AlignBeamError
from alignbeam.server.settings import ServerSettings


def _word(value: Any) -> bool:
    """A true/false option given as a value (`--enforce false`), or a config file's boolean."""
    if isinstance(value, bool):
        return value
    words = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False, "on": True, "off": False}
    if str(value).lower() not in words:
        raise typer.BadParameter(f"expected true or false, got {value!r}")
    return words[str(value).lower()]


def _setting_parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    """One `ServerSettings` field as a CLI option: its help, default, environment variable and bounds."""
    meta = f.metadata
    extra: dict[str, Any] = {"help": meta["help"], "rich_help_panel": "Server"}
    if meta.get("envvar"):
        extra["envvar"] = meta["envvar"]
    if meta.get("min") is not None:
        extra["min"] = meta["min"]
    if meta.get("word"):  # typer makes every bool a flag: a true/false value is read as text
        hint, extra["metavar"] = str, "true|false"
    option = typer.Option("--" + f.name.replace("_", "-"), **extra)
    default = str(f.default).lower() if meta.get("word") else f.default
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, option]
    )


def with_settings(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds one option per `ServerSettings` field; the command gets `settings`: a `ServerSettings`."""
    hints = typing.get_type_hints(ServerSettings)
    fields = dataclasses.fields(ServerSettings)
    words = {x.name for x in fields if x.metadata.get("word")}

    def pack(values: dict[str, Any]) -> ServerSettings:
        return ServerSettings(**{k: _word(v) if k in words else v for k, v in values.items()})

    return extend(f, "settings", [_setting_parameter(x, hints[x.name]) for x in fields], pack)


@with_models
@with_knobs
@with_settings
def serve(ctx: typer.Context, *, models: ModelOptions, knobs: dict[str, Any], settings: ServerSettings) -> None:
    """Serve AlignBeam over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, ...).

    The knobs set here are defaults; every request can override them with extra body fields.
    """
    try:
        from alignbeam.server import create_app, run
    except ImportError as e:  # the server extras are regular dependencies, but a trimmed install may lack them
        fail(AlignBeamError(f"the server needs fastapi and uvicorn ({e}): pip install fastapi uvicorn"))
    s = settings
    try:
        api_key = _api_key(s.api_key, s.api_key_file)
        config = ctx.params.get("config")
        policies = load_config(config).server_policies() if config else ()
        check_knobs(models.preset, knobs)
        ab = models.build(console, **knobs)
        server_app = create_app(
            ab,
            api_key=api_key,
            body_timeout_s=s.body_timeout,
            max_tokens_limit=s.max_tokens_limit,
            max_queue=s.max_queue,
            served_model_name=s.served_model_name,
            shutdown_grace_s=s.shutdown_grace,
            concurrency=s.concurrency,
            enforce=s.enforce,
            allow_shadow_requests=s.allow_shadow_requests,
            policies=policies,
            ui=s.ui,
        )
    except (AlignBeamError, ValueError) as e:
        fail(e)
    _log_access_to_stderr()
    err_console.print(
        f"AlignBeam serving [bold]{s.served_model_name}[/] on http://{s.host}:{s.port}/v1 "
        f"(draft {models.draft}, anchor {models.anchor}; auth {'on' if api_key else 'off'}, "
        f"max_tokens <= {s.max_tokens_limit}, queue <= {s.max_queue}"
        f"{'; SHADOW MODE: clients get the draft alone' if not s.enforce else ''})"
        + (f"; playground: http://{s.host}:{s.port}/ui" if s.ui else "")
    )
    uvicorn_options = {"timeout_keep_alive": s.timeout_keep_alive, "limit_concurrency": s.limit_concurrency}
    run(server_app, host=s.host, port=s.port, log_level=s.log_level.lower(), **uvicorn_options)


def _api_key(api_key: str | None, api_key_file: Path | None) -> str | None:
    """The key from the flag, the environment or the file; given twice is an error rather than a silent choice."""
    if api_key_file is None:
        return api_key
    if api_key is not None:
        raise ValueError("give the API key once: --api-key-file or --api-key / ALIGNBEAM_API_KEY, not both")
    from alignbeam.server.auth import read_api_key_file

    return read_api_key_file(api_key_file)


def _log_access_to_stderr() -> None:
    """The access log is one JSON object per line on stderr, ready for a log shipper."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("alignbeam.access")
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False
