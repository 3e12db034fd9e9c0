"""`alignbeam serve`: the OpenAI-compatible HTTP server over one AlignBeam pipeline."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from alignbeam.cli.common import console, err_console, fail
from alignbeam.cli.options import ModelOptions, check_knobs, with_knobs, with_models
from alignbeam.errors import AlignBeamError

# The options, named once here so that the command's signature stays readable.
Host = Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 exposes the server to the network)")]
Port = Annotated[int, typer.Option(help="TCP port")]
ApiKey = Annotated[
    str | None,
    typer.Option(
        envvar="ALIGNBEAM_API_KEY",
        help="Require 'Authorization: Bearer KEY' on /v1/*; prefer ALIGNBEAM_API_KEY or --api-key-file "
        "(a key given here is visible in the process list)",
    ),
]
ApiKeyFile = Annotated[
    Path | None,
    typer.Option(
        envvar="ALIGNBEAM_API_KEY_FILE", help="Read the API key from this file (env ALIGNBEAM_API_KEY_FILE too)"
    ),
]
MaxTokensLimit = Annotated[int, typer.Option(help="Largest max_tokens a request may ask for")]
MaxQueue = Annotated[int, typer.Option(help="Requests that may wait while one generates; more get 429")]
ServedName = Annotated[str, typer.Option(help="Model id reported by /v1/models")]
Grace = Annotated[
    float, typer.Option(help="Seconds waiting requests may still be served after SIGTERM; then they get 503", min=0)
]
Concurrency = Annotated[
    int | None,
    typer.Option(help="Requests generated at once; above 1 only when every model is a server URL (default 8 then)"),
]
BodyTimeout = Annotated[
    float, typer.Option(help="Seconds a request body may take to arrive; slower ones get 408", min=0.001)
]
KeepAlive = Annotated[int, typer.Option(help="Seconds an idle keep-alive connection stays open (uvicorn's)", min=1)]
LimitConcurrency = Annotated[
    int | None,
    typer.Option(help="Open connections beyond which new ones get 503 at once (uvicorn's; default: no limit)"),
]
LogLevel = Annotated[str, typer.Option(help="debug | info | warning | error")]


@with_models
@with_knobs
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    api_key: ApiKey = None,
    api_key_file: ApiKeyFile = None,
    max_tokens_limit: MaxTokensLimit = 1024,
    max_queue: MaxQueue = 32,
    served_model_name: ServedName = "alignbeam",
    shutdown_grace: Grace = 30.0,
    concurrency: Concurrency = None,
    body_timeout: BodyTimeout = 30.0,
    timeout_keep_alive: KeepAlive = 5,
    limit_concurrency: LimitConcurrency = None,
    log_level: LogLevel = "info",
    *,
    models: ModelOptions,
    knobs: dict[str, Any],
) -> None:
    """Serve AlignBeam over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, ...).

    The knobs set here are defaults; every request can override them with extra body fields.
    """
    try:
        from alignbeam.server import create_app, run
    except ImportError as e:  # the server extras are regular dependencies, but a trimmed install may lack them
        fail(AlignBeamError(f"the server needs fastapi and uvicorn ({e}): pip install fastapi uvicorn"))
    try:
        api_key = _api_key(api_key, api_key_file)
        check_knobs(models.preset, knobs)
        ab = models.build(console, **knobs)
        server_app = create_app(
            ab,
            api_key=api_key,
            body_timeout_s=body_timeout,
            max_tokens_limit=max_tokens_limit,
            max_queue=max_queue,
            served_model_name=served_model_name,
            shutdown_grace_s=shutdown_grace,
            concurrency=concurrency,
        )
    except (AlignBeamError, ValueError) as e:
        fail(e)
    _log_access_to_stderr()
    err_console.print(
        f"AlignBeam serving [bold]{served_model_name}[/] on http://{host}:{port}/v1 "
        f"(draft {models.draft}, anchor {models.anchor}; auth {'on' if api_key else 'off'}, "
        f"max_tokens <= {max_tokens_limit}, queue <= {max_queue})"
    )
    uvicorn_options = {"timeout_keep_alive": timeout_keep_alive, "limit_concurrency": limit_concurrency}
    run(server_app, host=host, port=port, log_level=log_level.lower(), **uvicorn_options)


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
