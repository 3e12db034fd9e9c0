"""Streamed continuations: one completion per beam, read by a worker thread into a queue, handed out by
`RemoteDecoder` one position at a time (the package docstring says why streams and how gaps and breaks are
mended)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from alignbeam.engines.base import Decoder, Sampling, Session, Tokenizer
from alignbeam.engines.remote.protocols import Piece
from alignbeam.engines.remote.spec import RemoteSpec
from alignbeam.engines.remote.wire import BrokeOff
from alignbeam.errors import BackendTimeoutError


class Completions(Protocol):
    """What a stream needs from its model: `RemoteModel` is one (the tests script others)."""

    spec: RemoteSpec
    tokenizer: Tokenizer
    stream_pool: ThreadPoolExecutor

    @property
    def backend(self) -> str: ...

    def stream_completion(
        self, prompt: list[int], n: int, sampling: Sampling, seed: int | None, cancel: threading.Event
    ) -> Iterator[Piece]: ...

    def complete_once(self, prompt: list[int], n: int, sampling: Sampling, seed: int | None) -> Piece: ...

    def timeout_error(self, e: Exception) -> BackendTimeoutError: ...


END = object()  # a stream's queue: no more tokens


class Stream:
    """One session's continuation, read by a worker thread into a queue: token ids, then `END` with the reason,
    or the exception that ended it."""

    def __init__(self, model: Completions, prompt: list[int], limit: int, sampling: Sampling, seed: int | None):
        self.model = model
        self.cancel = threading.Event()
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.handed = 0  # tokens handed out by the decoder
        self.ended = False
        model.stream_pool.submit(self.run, prompt, limit, sampling, seed)

    def run(self, prompt: list[int], limit: int, sampling: Sampling, seed: int | None) -> None:
        """The worker: read the whole continuation into the queue, then `END` with the reason (or the error)."""
        try:
            self.q.put((END, self._read(prompt, limit, sampling, seed)))
        except Exception as e:
            self.q.put(e)

    def _read(self, prompt: list[int], limit: int, sampling: Sampling, seed: int | None) -> str:
        """Put every token on the queue; return why the continuation ended ("eos" or "length")."""
        got: list[int] = []
        breaks = 0
        while len(got) < limit and not self.cancel.is_set():
            n0 = len(got)
            pieces = self.model.stream_completion(prompt + got, limit - n0, sampling, seed, self.cancel)
            try:
                for piece in pieces:
                    new = piece.ids[len(got) - n0 :] if piece.cumulative else piece.ids
                    missing = 0 if piece.total is None else piece.total - (len(got) - n0) - len(new)
                    if missing > 0:
                        # ids the stream did not send (a token ending inside a UTF-8 character): ask for them and
                        # the tokens after them without streaming, then stream on from there
                        fill = self.model.complete_once(prompt + got, missing + len(new), sampling, seed)
                        self._put(got, fill.ids)
                        if fill.end == "eos":
                            return "eos"
                        break
                    self._put(got, new)
                    if piece.end is not None:
                        return piece.end
                else:
                    if not self.cancel.is_set():  # closed without its last chunk: broken off, resumed below
                        raise BrokeOff(f"{self.model.backend} closed a stream before its end", self.model.backend)
            except BrokeOff:
                # the server went away mid-stream (a restart): resume from what it sent, like a retry
                breaks += 1
                if breaks > self.model.spec.retries:
                    raise
                time.sleep(min(0.25 * 2 ** (breaks - 1), 4.0))
            finally:
                pieces.close()
        return "length"

    def _put(self, got: list[int], ids: list[int]) -> None:
        for t in ids:
            got.append(t)
            self.q.put(t)

    def take(self) -> int | tuple[object, str]:
        """The next token id, or (END, reason); raises what ended the stream."""
        spec = self.model.spec
        wait = spec.timeout * (spec.retries + 1) * 2 + 10  # every read has its own timeout: this never waits
        try:
            item = self.q.get(timeout=wait)
        except queue.Empty:
            raise self.model.timeout_error(TimeoutError(f"no token for {wait:g} s")) from None
        if isinstance(item, Exception):
            raise item
        return item


class RemoteDecoder(Decoder):
    """`Model.decoder` on a serving engine: one streamed completion per session (see the module docstring)."""

    def __init__(
        self,
        model: Completions,
        sessions: Sequence[Session],
        limits: Sequence[int],
        sampling: Sampling,
        rng: np.random.Generator | None,
    ) -> None:
        self.model = model
        self.sessions = list(sessions)
        self.limits = list(limits)
        self._eot = model.tokenizer.eot_id
        self._streams: dict[int, Stream] = {}
        for i, (s, n) in enumerate(zip(self.sessions, self.limits, strict=True)):
            if n > 0:
                # a seed per beam from the method's generator: reproducible runs, different beams
                seed = int(rng.integers(0, 2**31 - 1)) if (rng is not None and sampling.temperature > 0) else None
                self._streams[i] = Stream(model, list(s.tokens), n, sampling, seed)

    def next(self) -> dict[int, int]:
        out = {}
        for i, st in self._streams.items():
            if st.ended or st.handed >= self.limits[i]:
                continue
            item = st.take()
            if isinstance(item, tuple):  # ended: by the model (an end-of-turn token stands for it), or cut short
                st.ended = True
                if item[1] == "eos":
                    out[i] = self._eot
                continue
            st.handed += 1
            out[i] = item
            if item in self.model.tokenizer.eog_ids:
                st.ended = True
            else:
                self.sessions[i].extend([item])
        return out

    def stop(self, index: int) -> None:
        st = self._streams.get(index)
        if st is not None:
            st.ended = True
            st.cancel.set()

    def close(self, feed: bool = True) -> None:
        for i in list(self._streams):
            self.stop(i)
