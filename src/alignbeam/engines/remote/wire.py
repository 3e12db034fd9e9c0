"""The HTTP side of the remote engine that does not depend on a protocol: the client, error answers, server-sent
events, and the two failures the engine handles rather than reports (a refused request, a broken-off stream)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from alignbeam.engines.remote.spec import RemoteSpec
from alignbeam.errors import BackendError


class Refused(BackendError):
    """The backend answered 4xx: the request itself is wrong for it (not retried)."""


class BrokeOff(BackendError):
    """A streamed completion broke off after it had sent something: resumed, not retried from the start."""


def make_client(spec: RemoteSpec) -> httpx.Client:
    """The HTTP client for one backend: at most `connections` requests in flight, each with the URL's timeout."""
    limits = httpx.Limits(max_connections=spec.connections, max_keepalive_connections=spec.connections)
    # waiting for one of this backend's `connections` is queueing here, not the backend being slow: no pool timeout
    timeout = httpx.Timeout(spec.timeout, connect=min(spec.timeout, 5.0), pool=None)
    return httpx.Client(base_url=spec.base_url, timeout=timeout, limits=limits)


def message(r: httpx.Response) -> str:
    """The error message in an error answer (OpenAI's and llama-server's shapes), else the start of the body."""
    try:
        data = r.json()
    except ValueError:
        return r.text[:200]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or err)[:300]
    return str(err)[:300]


def event(line: str) -> Any:
    """The JSON of one server-sent event line (None for blank lines, comments, other fields and the closing
    [DONE]); ValueError for a line that is not server-sent events at all."""
    if not line.startswith("data:"):
        if line and not line.startswith((":", "event:", "id:", "retry:")):
            raise ValueError(f"not a server-sent event: {line[:80]!r}")
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        return json.loads(payload)
    except json.JSONDecodeError as e:
        raise ValueError(f"a streamed chunk that is not JSON: {payload[:80]!r}") from e
