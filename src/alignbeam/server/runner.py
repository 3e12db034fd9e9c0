"""Running the app: in the foreground (`alignbeam serve`) or on a background thread (tests, notebooks, benchmarks).

One process, one uvicorn worker: the models are loaded once and every request shares them through the
generation queue; several uvicorn workers would each load their own copy of every model.

Both run a `Server`: uvicorn's, telling the app when shutdown starts (`app.state.begin_shutdown`), because uvicorn
waits for every open connection before the app's lifespan hears of it, and the app's shutdown grace period must
start at the signal, not after the line has drained.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


class Server(uvicorn.Server):
    """uvicorn's server, calling the app's `state.begin_shutdown()` (if it has one) as shutdown starts."""

    async def shutdown(self, sockets: Any = None) -> None:
        hook = getattr(getattr(self.config.app, "state", None), "begin_shutdown", None)
        if callable(hook):
            hook()
        await super().shutdown(sockets=sockets)


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve `app` until interrupted (SIGINT / SIGTERM start a graceful shutdown). uvicorn's own access log is
    off: the app writes a structured one."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    server = Server(config)
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
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.host = host
        self.config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on")
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
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
