"""The access log and per-request metrics, as raw ASGI middleware."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alignbeam.server.errors import dumps
from alignbeam.server.metrics import Metrics

access_log = logging.getLogger("alignbeam.access")

#: endpoints reported by name in metrics; anything else is "other" so that random paths (scanners) cannot grow
#: the number of series without bound
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics")
_LOG_KEY = "alignbeam.log"
#: HTTP status logged for a client that went away before its answer (nginx's convention)
CLIENT_CLOSED = 499


class AccessLog:
    """Pure ASGI middleware: one JSON log line and one metrics observation per request, at its real end.

    Written as raw ASGI (not `@app.middleware`) because a streamed response ends long after the handler returns;
    only the final body message says when the request is over. Handlers add what they know (tokens, mode,
    phase timings) to a dict in the scope.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info: dict[str, Any] = {}
        scope[_LOG_KEY] = info
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            latency = time.perf_counter() - t0
            status = info.pop("status", status)  # a handler that knows better: 499 (client gone), a stream's error
            path = scope.get("path", "")
            endpoint = path if path in ENDPOINTS else ("/v1/models" if path.startswith("/v1/models/") else "other")
            entry: dict[str, Any] = {
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "latency_ms": round(latency * 1000, 2),
            }
            client = scope.get("client")
            if client:
                entry["client"] = f"{client[0]}:{client[1]}"
            entry.update(info)
            with contextlib.suppress(Exception):  # logging must never turn a served request into an error
                access_log.info(dumps(entry))
            if endpoint != "/metrics":
                self.metrics.observe_request(
                    endpoint,
                    status,
                    latency,
                    mode=info.get("mode"),
                    prompt_tokens=info.get("prompt_tokens"),
                    completion_tokens=info.get("completion_tokens"),
                    queue_wait_s=None if "queue_wait_ms" not in info else info["queue_wait_ms"] / 1000,
                    phases_ms=info.get("timings_ms"),
                )
                if info.get("decision"):
                    self.metrics.observe_decision(info["decision"], info.get("policy"))


def log_result(info: dict[str, Any], gen: Any, result: Any, timings: dict[str, float]) -> None:
    """A finished generation into the access log (and so /metrics): tokens, finish reason, phase timings and the
    decision; in shadow mode the request's messages too, so `alignbeam calibrate --from-log` can read the log as
    traffic."""
    info.update(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        timings_ms=timings,
    )
    if gen.decision is not None:
        info["decision"] = gen.decision
        if not gen.enforced:
            info["request"] = {"messages": gen.messages}


def log_info(request: Request) -> dict[str, Any]:
    return request.scope.setdefault(_LOG_KEY, {})
