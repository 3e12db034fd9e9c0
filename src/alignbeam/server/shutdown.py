"""Draining on shutdown, as docs/server.md describes it.

On SIGTERM (or `BackgroundServer.stop`) the runner awaits `drain(state)` *before* uvicorn's own shutdown, which
closes the listening socket at once: while draining, the socket stays open so that `/health` answers 503
(`shutting_down`) and new generation requests get 503 `shutting_down` in OpenAI's shape, which a load balancer or
a readiness probe can see and act on, instead of "connection refused". Requests already running or waiting carry
on for `shutdown_grace_s`; after it, those still waiting get 503 and a running stream stops at its next token
(an error event, then [DONE]), while a running whole generation is finished. `drain` returns as soon as nothing
runs or waits, so the process exits then rather than always waiting out the grace.
"""

from __future__ import annotations

import asyncio

from alignbeam.server.errors import log
from alignbeam.server.state import ServerState

#: how often the drain checks whether the line is empty (the process exits within this of the last request)
DRAIN_POLL_S = 0.05


def begin_shutdown(state: ServerState) -> None:
    """Take no new requests, and give the running and waiting ones `shutdown_grace_s` before the waiting ones
    are answered 503 and a running stream is stopped. Idempotent; call on the event loop."""
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


async def drain(state: ServerState) -> None:
    """Begin the shutdown and return once no request runs or waits (their answers may still be on their way
    out: uvicorn's own shutdown waits for those)."""
    begin_shutdown(state)
    while state.queue.waiting or state.queue.running:
        await asyncio.sleep(DRAIN_POLL_S)
