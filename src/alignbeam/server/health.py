"""GET /health (liveness, load, engine slots, serving engines) and GET /metrics (Prometheus text format).

Both are open without the API key: probes and scrapers carry none. /health answers 503 whenever a balancer
should stop sending (worker gone, engines unable to serve, server draining), so a probe needs only the status.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from alignbeam.api import AlignBeam
from alignbeam.server.errors import JSON
from alignbeam.server.state import ServerState, models_of, state_of


def engine_state(state: ServerState) -> tuple[str, dict[str, Any]]:
    """Each model's sequence slots: "degraded" when one has none free, or fewer than all while nothing runs
    (sessions left open by a failed request: generation would fail until they are freed)."""
    slots: dict[str, Any] = {}
    degraded = False
    for role, m in models_of(state.ab).items():
        cap, free = getattr(m, "max_sessions", None), getattr(m, "free_sessions", None)
        if m is None or cap is None or free is None:
            continue
        slots[role] = {"free": free, "total": cap}
        degraded |= free == 0 or (state.queue.running == 0 and free < cap)
    return ("degraded" if degraded else "ok"), slots


def backends_of(ab: AlignBeam) -> dict[str, Any]:
    """Each remote model's serving engine, as /health reports it (one check per distinct model)."""
    seen: dict[int, dict[str, Any]] = {}
    out = {}
    for role, m in models_of(ab).items():
        if m is not None and hasattr(m, "health"):
            out[role] = seen.setdefault(id(m), m.health())
    return out


async def health(request: Request) -> Response:
    """Liveness and load: 200 while the worker is alive and the engines can serve; 503 when the worker is
    gone ("unavailable"), the engines cannot open sessions or a serving engine is down ("degraded"), or the
    server is draining."""
    state = state_of(request)
    queue, ab = state.queue, state.ab
    status, slots = engine_state(state)
    backends = await asyncio.to_thread(backends_of, ab)
    if any(b["state"] != "ok" for b in backends.values()):
        status = "degraded"
    if not queue.alive:
        status = "unavailable"
    elif queue.closed:
        status = "shutting_down"
    body = {
        "status": status,
        "model": state.served_model_name,
        "draft": ab.draft.name,
        "anchor": ab.anchor.name if ab.anchor is not None else None,
        "queue": {
            "waiting": queue.waiting,
            "running": queue.running,
            "workers": queue.workers,
            "max_queue": queue.max_queue,
        },
        "slots": slots,
        "backends": backends,
    }
    return JSON(body, status_code=200 if status == "ok" else 503)


async def metrics_page(request: Request) -> Response:
    text = state_of(request).metrics.render()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
