"""The API key check on /v1/* (/health and /metrics stay open for probes and scrapers)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from alignbeam.server.errors import JSON, api_error
from alignbeam.server.policies import policy_for
from alignbeam.server.state import ServerState


def authorized(state: ServerState, request: Request) -> bool:
    """Whether the request carries `Authorization: Bearer <key>` with the server's key or a tenant's (always, when
    the server has neither). Keys are compared in constant time (policies.policy_for)."""
    return policy_for(state.policies, state.api_key, request) is not None


def unauthorized() -> JSON:
    return api_error(
        401,
        "invalid or missing API key: send the header 'Authorization: Bearer <key>' with the server's --api-key",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def read_api_key_file(path: str | Path) -> str:
    """The API key stored in a file (surrounding whitespace and the final newline dropped).

    A file (or the ALIGNBEAM_API_KEY environment variable) keeps the key out of the process list, where
    `--api-key KEY` is visible to every user of the machine (`ps`, /proc/PID/cmdline)."""
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the API key file {str(path)!r}: {e}") from e
    if not key:
        raise ValueError(f"the API key file {str(path)!r} is empty")
    if any(c.isspace() for c in key):
        raise ValueError(f"the API key file {str(path)!r} holds more than one word: put the key alone in it")
    return key
