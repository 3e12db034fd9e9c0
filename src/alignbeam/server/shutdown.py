"""Shutdown with a grace period: new requests get 503 at once, waiting ones may still run for
`shutdown_grace_s`, then those still waiting get 503 (`shutting_down`) and a running stream stops at its next
token.

The runner calls `begin_shutdown` (through `app.state.begin_shutdown`) when uvicorn starts shutting down, before
it waits for the open connections: the lifespan's shutdown only comes after them, too late for a grace period.
"""

from __future__ import annotations

import asyncio

from alignbeam.server.errors import log
from alignbeam.server.state import ServerState


def begin_shutdown(state: ServerState) -> None:
    """Called on the event loop when shutdown starts (SIGTERM): take no new requests, and give the waiting
    ones `shutdown_grace_s` before they are answered 503."""
    queue, grace = state.queue, state.limits.shutdown_grace_s
    if queue.closed:
        return
    queue.close()
    if queue.waiting or queue.running:
        log.warning(
            "shutting down: %d request(s) waiting, %d running; waiting ones get 503 after %g s",
            queue.waiting,
            queue.running,
            grace,
        )

    def expire() -> None:
        n = queue.abandon(
            f"the server is shutting down: this request was still waiting after the {grace:g} s "
            "shutdown grace period; retry on another instance"
        )
        if n:
            log.warning("shutdown grace period over: %d waiting request(s) answered 503", n)

    asyncio.get_running_loop().call_later(grace, expire)
