"""Running the app: in the foreground (`alignbeam serve`) or on a background thread (tests, notebooks, benchmarks).

One process, one uvicorn worker: the models are loaded once and every request shares them through the
generation queue; several uvicorn workers would each load their own copy of every model.

Both run a `Server`: uvicorn's, with a drain in front of its shutdown. uvicorn's shutdown closes the listening
socket first and only then waits for open connections, so during a grace period new requests and probes would
meet "connection refused". Here the first SIGINT / SIGTERM (or `BackgroundServer.stop`) awaits the app's
`state.drain()` (see `shutdown.py`) while the socket stays open, and hands over to uvicorn's own exit once
nothing runs. A second signal skips the wait (uvicorn's handling: SIGINT twice forces the exit).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import uvicorn


class Server(uvicorn.Server):
    """uvicorn's server, draining the app (its `state.drain`, if it has one) before shutting down."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = False
        self._drain_task: asyncio.Task[None] | None = None  # held so the running task is not collected

    async def startup(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler: drain first; uvicorn's own exit (recording the signal, to re-raise it once the
        server is down, as uvicorn does) comes when the drain is over. A second signal goes to uvicorn at once."""
        if self.draining or not self.drain_then(lambda: super(Server, self).handle_exit(sig, frame)):
            super().handle_exit(sig, frame)

    def drain_then(self, then: Callable[[], None]) -> bool:
        """Start draining the app and call `then` when done (thread-safe: from a signal handler or another
        thread). False when there is nothing to drain (not started, no drain hook, already draining)."""
        hook = getattr(getattr(self.config.app, "state", None), "drain", None)
        loop = self.loop
        if not callable(hook) or loop is None or not self.started or self.draining or self.should_exit:
            return False
        self.draining = True

        async def drain() -> None:
            try:
                await hook()
            finally:
                then()

        def start() -> None:
            self._drain_task = loop.create_task(drain())

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed: the server is down already
            return False
        return True

    async def shutdown(self, sockets: Any = None) -> None:
        # reached without a drain when uvicorn stops on its own (limit_max_requests) or on a second signal: the
        # app still refuses new work and starts its grace period
        hook = getattr(getattr(self.config.app, "state", None), "begin_shutdown", None)
        if callable(hook):
            hook()
        await super().shutdown(sockets=sockets)


def config(app: Any, host: str, port: int, log_level: str, **uvicorn_options: Any) -> uvicorn.Config:
    """uvicorn's config for this app: its own access log off (the app writes a structured one)."""
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, **uvicorn_options)


def run(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    timeout_keep_alive: int = 5,
    limit_concurrency: int | None = None,
) -> None:
    """Serve `app` until interrupted (SIGINT / SIGTERM drain, then shut down). timeout_keep_alive: seconds an
    idle keep-alive connection stays open; limit_concurrency: connections (or running requests) beyond which
    uvicorn answers 503 at once, which bounds what a flood of slow clients can hold."""
    server = Server(
        config(app, host, port, log_level, timeout_keep_alive=timeout_keep_alive, limit_concurrency=limit_concurrency)
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)  # what uvicorn.run does when the server could not start (port in use, ...)


class BackgroundServer:
    """`with BackgroundServer(app) as srv: srv.url` — a real HTTP server on a free local port, in this process.

    port=0 lets the OS pick a free port at bind time (no probe-then-bind race); the chosen port is read back from
    the listening socket. Being in-process, tests can reach into the app (its queue, its metrics) directly.
    `stop()` drains as SIGTERM does.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", **uvicorn_options: Any
    ) -> None:
        self.host = host
        self.config = config(app, host, port, log_level, lifespan="on", **uvicorn_options)
        self.server = Server(self.config)
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread = threading.Thread(target=self.server.run, name="alignbeam-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout} s")
            time.sleep(0.02)
        sockets = [s for srv in self.server.servers for s in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Drain (as SIGTERM does), shut down, and wait up to `timeout` s for the server thread."""
        if not self.server.drain_then(self._exit):
            self._exit()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _exit(self) -> None:
        self.server.should_exit = True

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
