"""The API key check on /v1/* (/health and /metrics stay open for probes and scrapers)."""

from __future__ import annotations

import secrets

from fastapi import Request

from alignbeam.server.errors import JSON, api_error
from alignbeam.server.state import ServerState


def authorized(state: ServerState, request: Request) -> bool:
    """Whether the request carries `Authorization: Bearer <key>` (always, when the server has no key). The key is
    compared in constant time, so response timing does not reveal how much of a guess was right."""
    if state.api_key is None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), state.api_key.encode())


def unauthorized() -> JSON:
    return api_error(
        401,
        "invalid or missing API key: send the header 'Authorization: Bearer <key>' with the server's --api-key",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )
