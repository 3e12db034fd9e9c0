"""Generations first come first served, on a fixed number of worker threads, with a bounded waiting line.

In-process models are not thread-safe (one llama.cpp context, one KV cache per model), so with any of them the
queue has a single worker and generations run one after another. When every model is remote (a serving engine
behind a URL), a model object holds no state of a request, so several workers run requests at once and the
engines batch them (`workers`). Arrival order is also the fair policy: a burst from one client cannot starve
another. The line is bounded so that an overloaded server says 429 at once instead of
letting requests wait for minutes and time out anyway. A request whose client has gone away leaves the line
(`cancel`), so abandoned requests never hold a slot or burn model time.

Shutting down is two steps: `close()` refuses new work while the line drains, and `abandon()` (after the
server's grace period) answers whatever still waits with QueueClosed (HTTP 503) and asks the running job to stop
at its next token. `stop()` does both at once and ends the worker.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("alignbeam.server")


class QueueFull(Exception):
    """The waiting line is at its bound; the client should retry later (HTTP 429)."""


class QueueClosed(Exception):
    """The server is shutting down and takes no more work (HTTP 503)."""


@dataclass(eq=False)
class Job:
    """One unit of work for the worker thread.

    `fn(job)` runs on the worker; its return value or exception resolves `future` on the event loop. Streaming
    work pushes items to the event loop with `emit` and checks `cancelled` between items, which is how a stream
    stops being generated once its client disconnects.
    """

    fn: Callable[[Job], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    events: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    finished_at: float | None = None

    def emit(self, item: Any) -> None:
        """Hand an item to the waiting coroutine (thread-safe)."""
        _call_soon(self.loop, self.events.put_nowait, item)

    @property
    def queue_wait_s(self) -> float:
        end = self.started_at if self.started_at is not None else time.perf_counter()
        return end - self.enqueued_at


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the event loop is closed (server shut down): nobody is waiting any more
        pass


def _resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


class GenerationQueue:
    """`workers` worker threads fed by a FIFO line of at most `max_queue` waiting jobs.

    `max_queue` counts the jobs *waiting* while every worker is busy: with max_queue=0 the server takes a
    request only when a worker is idle.
    """

    def __init__(self, max_queue: int = 32, workers: int = 1) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.max_queue = max_queue
        self.workers = workers
        self._waiting: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._running: set[Job] = set()
        self._closed = False  # the workers are to exit
        self._accepting = False  # submit() takes new work (off from close() on)
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._threads:
                return
            self._closed = False
            self._accepting = True
            self._threads = [
                threading.Thread(target=self._work, name=f"alignbeam-generation-{i}", daemon=True)
                for i in range(self.workers)
            ]
            for t in self._threads:
                t.start()

    def close(self) -> None:
        """Refuse new work (submit raises QueueClosed); the waiting jobs and the running one carry on."""
        with self._cond:
            self._accepting = False

    @property
    def closed(self) -> bool:
        return not self._accepting

    def abandon(self, reason: str = "the server is shutting down") -> int:
        """Answer every waiting job with QueueClosed(reason) and ask the running one to stop at its next item
        (a stream stops; a whole generation finishes). Returns how many waiting jobs were dropped."""
        with self._cond:
            self._accepting = False
            dropped = list(self._waiting)
            self._waiting.clear()
            for job in self._running:
                job.cancelled.set()
        for job in dropped:
            job.cancelled.set()
            _call_soon(job.loop, _resolve, job.future, None, QueueClosed(reason))
        return len(dropped)

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new work, drop what is waiting, ask a running stream to stop, and wait for the worker."""
        self.abandon()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- state -------------------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def alive(self) -> bool:
        """Whether every worker thread is up (what /health reports)."""
        threads = self._threads
        return bool(threads) and all(t.is_alive() for t in threads)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- work --------------------------------------------------------------------------------------
    def submit(self, fn: Callable[[Job], Any]) -> Job:
        """Queue `fn` (to run on the worker thread); call from the event loop. Raises QueueFull / QueueClosed."""
        loop = asyncio.get_running_loop()
        job = Job(fn=fn, loop=loop, future=loop.create_future())
        with self._cond:
            if self._closed or not self._accepting or not self._threads:
                raise QueueClosed("the server is not accepting requests (shutting down)")
            # the jobs that will really wait (beyond the workers that are idle or about to pick one up)
            queued = len(self._running) + len(self._waiting) - self.workers
            if queued >= self.max_queue:
                raise QueueFull(
                    f"the server is busy: {self.running} request(s) generating and {len(self._waiting)} waiting "
                    f"(--max-queue {self.max_queue}); retry later"
                )
            self._waiting.append(job)
            self._cond.notify()
        return job

    def cancel(self, job: Job) -> bool:
        """Withdraw a job whose client went away. Returns True if it had not started (its slot is free now);
        a running job is flagged so that a stream stops at its next item."""
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                job.cancelled.set()
                return False
        job.cancelled.set()
        if not job.future.done():
            job.future.cancel()
        return True

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._running.add(job)
            job.started_at = time.perf_counter()
            value: Any = None
            exc: BaseException | None = None
            try:
                value = job.fn(job)
            except BaseException as e:  # delivered to the request handler, which decides the HTTP status
                exc = e
            finally:
                job.finished_at = time.perf_counter()
                with self._cond:
                    self._running.discard(job)
            _call_soon(job.loop, _resolve, job.future, value, exc)
