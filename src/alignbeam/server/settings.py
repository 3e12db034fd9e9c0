"""The server's own settings (not knobs, not models): where it listens, who may call it, how much it takes in.

One source for `alignbeam serve`'s options (cli/serve.py derives them from these fields, their types, defaults
and help) and for the `server:` section of a deployment config file (configfile.py validates against them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def setting(default: Any, help: str, *, envvar: str | None = None, min: float | None = None, word: bool = False) -> Any:
    """A server setting with its help line. envvar: the environment variable the CLI also reads it from. min: the
    smallest value. word: a true/false setting the CLI takes as a value (`--enforce false`), not as a flag."""
    return dataclasses.field(default=default, metadata={"help": help, "envvar": envvar, "min": min, "word": word})


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("127.0.0.1", "Interface to listen on (0.0.0.0 exposes the server to the network)")
    port: int = setting(8000, "TCP port")
    api_key: str | None = setting(
        None,
        "Require 'Authorization: Bearer KEY' on /v1/*; prefer ALIGNBEAM_API_KEY or --api-key-file "
        "(a key given on the command line is visible in the process list)",
        envvar="ALIGNBEAM_API_KEY",
    )
    api_key_file: Path | None = setting(  # noqa: RUF009 - `setting` returns a dataclasses.field
        None, "Read the API key from this file (env ALIGNBEAM_API_KEY_FILE too)", envvar="ALIGNBEAM_API_KEY_FILE"
    )
    max_tokens_limit: int = setting(1024, "Largest max_tokens a request may ask for")
    max_queue: int = setting(32, "Requests that may wait while one generates; more get 429")
    served_model_name: str = setting("alignbeam", "Model id reported by /v1/models")
    shutdown_grace: float = setting(
        30.0, "Seconds waiting requests may still be served after SIGTERM; then they get 503", min=0
    )
    concurrency: int | None = setting(
        None, "Requests generated at once; above 1 only when every model is a server URL (default 8 then)"
    )
    body_timeout: float = setting(30.0, "Seconds a request body may take to arrive; slower ones get 408", min=0.001)
    timeout_keep_alive: int = setting(5, "Seconds an idle keep-alive connection stays open (uvicorn's)", min=1)
    limit_concurrency: int | None = setting(
        None, "Open connections beyond which new ones get 503 at once (uvicorn's; default: no limit)"
    )
    log_level: str = setting("info", "debug | info | warning | error")
    enforce: bool = setting(
        True,
        "false: shadow mode. Clients get exactly the draft alone's answers; what AlignBeam would have done (route, "
        "risk, scores, refusal, its text) goes to the log, /metrics and x-alignbeam-* headers",
        word=True,
    )
    allow_shadow_requests: bool = setting(
        False, 'let a request ask for shadow mode itself ("enforce": false); off, such a request gets 400'
    )
    ui: bool = setting(
        False,
        "Serve the playground page at /ui: the draft alone and AlignBeam side by side, the route, the candidates "
        "and the mixed prefix (behind the API key when one is set)",
    )


def settings_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(ServerSettings)
