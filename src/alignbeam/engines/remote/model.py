"""The remote model and its sessions: next-token requests batched per step, named-token requests, and the HTTP
calls behind them (retried, and reported as errors naming the server); see the package docstring."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import numpy as np

from alignbeam.engines.base import Decoder, Model, ModelInfo, Sampling, Session, Tokenizer
from alignbeam.engines.remote.protocols import Piece, Protocol, TopLogprobs
from alignbeam.engines.remote.spec import RemoteSpec
from alignbeam.engines.remote.streams import RemoteDecoder
from alignbeam.engines.remote.wire import BrokeOff, Refused, event, make_client, message
from alignbeam.errors import BackendError, BackendTimeoutError

_T = TypeVar("_T")

#: how far below the last returned log-probability a token outside the returned list is put (nats)
OUTSIDE_GAP = 20.0


class RemoteSession(Session):
    """A token list and, once asked for, the server's answer for it (a future shared by forks of one prefix)."""

    def __init__(self, model: RemoteModel, tokens: Sequence[int]) -> None:
        self.model = model
        self.tokens = list(tokens)
        self._answer: tuple[Future[list[TopLogprobs]], int] | None = None
        self._named: tuple[Future[list[TopLogprobs] | None], int] | None = None  # `ensure`'s answer
        self._closed = False

    def logits(self) -> np.ndarray:
        out = self.model.dense(self.top())
        if self._named is not None:
            future, i = self._named
            named = self.model._wait(future)
            if named is not None:
                ids = np.asarray(named[i].ids, dtype=np.int64)
                keep = (ids >= 0) & (ids < len(out))
                out[ids[keep]] = np.asarray(named[i].logprobs, dtype=np.float32)[keep]
        return out

    def top(self) -> TopLogprobs:
        """The server's top next tokens after `tokens` (asked for now unless a step already did)."""
        if self._answer is None:
            self.model._prefetch([self])
        assert self._answer is not None
        future, i = self._answer
        return self.model._wait(future)[i]

    def extend(self, tokens: Sequence[int]) -> None:
        if tokens:
            self.tokens.extend(int(t) for t in tokens)
            self._answer = self._named = None

    def fork(self) -> RemoteSession:
        s = RemoteSession(self.model, self.tokens)
        s._answer, s._named = self._answer, self._named  # the same prefix has the same answer
        return s

    def truncate(self, n: int) -> None:
        if n < len(self.tokens):
            del self.tokens[n:]
            self._answer = self._named = None

    def close(self) -> None:
        self._closed = True
        self._answer = self._named = None


class RemoteModel(Model):
    """A model on a serving engine; see the module docstring."""

    full_vocabulary = False

    def __init__(
        self,
        spec: RemoteSpec,
        tokenizer: Tokenizer,
        protocol: Protocol,
        served: str,
        n_ctx: int,
        client: httpx.Client | None = None,
    ) -> None:
        """`client`: the HTTP client to use (default: one made from `spec`; tests pass one over recorded answers)."""
        self.spec = spec
        self.tokenizer = tokenizer
        self.protocol = protocol
        self.served = served
        self._client = client if client is not None else make_client(spec)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"alignbeam-remote-{served or 'model'}")
        # streamed continuations hold a thread each for their whole length: their own pool, so they never queue
        # the short next-token requests of other generations behind them
        self.stream_pool = ThreadPoolExecutor(
            spec.connections, thread_name_prefix=f"alignbeam-stream-{served or 'model'}"
        )
        self._vocab = tokenizer.vocab_size
        self.info = ModelInfo(served or spec.base_url, f"remote:{protocol.name}", spec.base_url, n_ctx)
        self._lock = threading.Lock()
        self.requests = 0  # requests sent (benchmarks, tests)
        self.named = bool(spec.named) and protocol.max_named > 0  # off for good once the server ignores it

    @property
    def backend(self) -> str:
        """How errors and /health name this backend."""
        return f"{self.protocol.name} at {self.spec.base_url}" + (f" (model {self.served})" if self.served else "")

    def session(self, tokens: Sequence[int] = ()) -> RemoteSession:
        return RemoteSession(self, tokens)

    def step(self, sessions: Sequence[Session], tokens: Sequence[Sequence[int]]) -> None:
        for s, t in zip(sessions, tokens, strict=True):
            s.extend(t)
        self._prefetch([s for s in sessions if isinstance(s, RemoteSession)])

    def decoder(
        self,
        sessions: Sequence[Session],
        limits: Sequence[int],
        sampling: Sampling,
        rng: np.random.Generator | None = None,
    ) -> Decoder:
        """One streamed completion per session, all opened now (see the module docstring)."""
        return RemoteDecoder(self, sessions, limits, sampling, rng)

    def ensure(self, sessions: Sequence[Session], ids: Sequence[Sequence[int]]) -> None:
        """Ask, in one batched request, for the ids of `ids[i]` missing from session i's top list (see the module
        docstring); `logits()` then holds them exactly."""
        if not self.named:
            return
        need: list[tuple[RemoteSession, list[int]]] = []
        for s, row in zip(sessions, ids, strict=True):
            if isinstance(s, RemoteSession) and not s._closed:
                have = set(s.top().ids)
                missing = [int(t) for t in row if int(t) not in have]
                if missing:
                    need.append((s, missing))
        if not need:
            return
        future = self._pool.submit(self._named_tokens, [list(s.tokens) for s, _ in need], [m for _, m in need])
        for i, (s, _) in enumerate(need):
            s._named = (future, i)

    def _named_tokens(self, prompts: list[list[int]], ids: list[list[int]]) -> list[TopLogprobs] | None:
        """The named ids' log-probabilities, or None once the server shows it cannot name tokens."""
        path, body = self.protocol.named_request(self.served, prompts, ids)
        try:
            data = self._post(path, body)
        except Refused as e:
            return self._named_off(f"it refused the request ({e})")
        with self._lock:
            self.requests += 1
        try:
            answers = self.protocol.parse_named(data, len(prompts))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            return self._named_off(f"its answer has no named-token log-probabilities ({e!r})")
        asked = {t for row in ids for t in row}
        if asked and not asked & {t for a in answers for t in a.ids}:
            return self._named_off("its answer holds none of the named ids")
        return answers

    def _named_off(self, why: str) -> None:
        if self.named:
            self.named = False
            warnings.warn(
                f"{self.backend} cannot return the log-probabilities of named tokens: {why}. The mixture goes on "
                "with the top-n floor for tokens outside the draft's top list (vLLM >= 0.26 names tokens; add "
                "?named=0 to the model URL to silence this)",
                stacklevel=2,
            )
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.stream_pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- requests ---------------------------------------------------------------------------------
    def _prefetch(self, sessions: Sequence[RemoteSession]) -> None:
        """Send one batched request for every session without an answer; do not wait for it."""
        need = [s for s in sessions if s._answer is None and not s._closed]
        if not need:
            return
        prompts = [list(s.tokens) for s in need]
        future = self._pool.submit(self._next_tokens, prompts)
        for i, s in enumerate(need):
            s._answer = (future, i)

    def _wait(self, future: Future[list[TopLogprobs]]) -> list[TopLogprobs]:
        return future.result()  # re-raises the BackendError of the request

    def _next_tokens(self, prompts: list[list[int]]) -> list[TopLogprobs]:
        path, body = self.protocol.next_token_request(self.served, prompts, self.spec.top_logprobs)
        data = self._post(path, body)
        with self._lock:
            self.requests += 1
        return self._parsed(lambda: self.protocol.parse_next_token(data, len(prompts)), "a next-token answer")

    def _parsed(self, parse: Callable[[], _T], what: str) -> _T:
        """`parse()`, or a BackendError naming the server when its answer is not what the protocol promises (never a
        wrong number)."""
        try:
            return parse()
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise BackendError(
                f"{self.backend} sent something that is not {what} of {self.protocol.name} ({e!r}): is the protocol "
                "right? Set it with ?protocol=... in the model URL",
                self.backend,
            ) from e

    def _post(self, path: str, body: dict) -> Any:
        delay, last = 0.25, ""
        for attempt in range(self.spec.retries + 1):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
            try:
                r = self._client.post(path, json=body)
            except httpx.TimeoutException as e:
                raise self.timeout_error(e) from e
            except httpx.HTTPError as e:
                last = f"cannot be reached ({type(e).__name__}: {e})"
                continue  # down or restarting: retry
            if r.status_code >= 500:
                last = f"answered {r.status_code}: {message(r)}"
                continue
            if r.status_code >= 400:
                hint = f" ({self.protocol.limit_hint})" if "logprob" in r.text.lower() or "n_probs" in r.text else ""
                msg = f"{self.backend} refused the request: {r.status_code} {message(r)}{hint}"
                raise Refused(msg, self.backend)
            try:
                return r.json()
            except json.JSONDecodeError as e:
                raise BackendError(f"{self.backend} answered with something that is not JSON", self.backend) from e
        raise BackendError(f"{self.backend} {last} (after {self.spec.retries + 1} tries)", self.backend)

    def dense(self, top: TopLogprobs) -> np.ndarray:
        """The top list as a full-vocabulary vector: tokens outside it `OUTSIDE_GAP` below its last entry."""
        if not top.ids:
            raise BackendError(f"{self.backend} returned no next-token log-probabilities", self.backend)
        ids = np.asarray(top.ids, dtype=np.int64)
        lps = np.asarray(top.logprobs, dtype=np.float32)
        keep = (ids >= 0) & (ids < self._vocab)
        floor = float(lps[keep].min()) - OUTSIDE_GAP if keep.any() else -OUTSIDE_GAP
        out = np.full(self._vocab, floor, dtype=np.float32)
        out[ids[keep]] = lps[keep]
        return out

    # -- completions --------------------------------------------------------------------------------
    def stream_completion(
        self, prompt: list[int], n: int, sampling: Sampling, seed: int | None, cancel: threading.Event
    ) -> Iterator[Piece]:
        """The pieces of one streamed completion of up to `n` tokens after `prompt`. Opening it is retried like
        any request; a stream that breaks off after its first piece raises `BrokeOff` (the caller resumes it from
        what it received, which a retry here could not)."""
        path, body = self.protocol.completion_request(self.served, prompt, n, sampling, seed, stream=True)
        delay, last = 0.25, ""
        for attempt in range(self.spec.retries + 1):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
            started = False
            try:
                with self._client.stream("POST", path, json=body) as r:
                    if r.status_code >= 500:
                        r.read()
                        last = f"answered {r.status_code}: {message(r)}"
                        continue
                    if r.status_code >= 400:
                        r.read()
                        msg = f"{self.backend} refused the completion: {r.status_code} {message(r)}"
                        raise BackendError(msg, self.backend)
                    with self._lock:
                        self.requests += 1
                    for line in r.iter_lines():
                        if cancel.is_set():
                            return  # leaving the block closes the connection: the server stops generating
                        try:
                            data = event(line)
                        except ValueError as e:
                            msg = f"{self.backend} sent a stream that is not {self.protocol.name} completion chunks"
                            raise BackendError(f"{msg} ({e}): is the protocol right?", self.backend) from e
                        if data is not None:
                            started = True
                            yield self._piece(data)
                    return
            except httpx.TimeoutException as e:
                raise self.timeout_error(e) from e
            except httpx.HTTPError as e:
                last = f"cannot be reached ({type(e).__name__}: {e})"
                if started:
                    msg = f"{self.backend} broke off a streamed completion ({type(e).__name__}: {e})"
                    raise BrokeOff(msg, self.backend) from e
        raise BackendError(f"{self.backend} {last} (after {self.spec.retries + 1} tries)", self.backend)

    def complete_once(self, prompt: list[int], n: int, sampling: Sampling, seed: int | None) -> Piece:
        """Up to `n` tokens after `prompt`, unstreamed (fills the gaps a stream leaves)."""
        path, body = self.protocol.completion_request(self.served, prompt, n, sampling, seed, stream=False)
        return self._piece(self._post(path, body))

    def _piece(self, data: Any) -> Piece:
        return self._parsed(lambda: self.protocol.parse_piece(data), "a completion")

    def timeout_error(self, e: Exception) -> BackendTimeoutError:
        """The error for an answer that did not come in time."""
        return BackendTimeoutError(
            f"{self.backend} did not answer within {self.spec.timeout:g} s ({type(e).__name__}): it is "
            "overloaded or stuck; raise ?timeout= in the model URL if it is only slow",
            self.backend,
        )

    # -- health -----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The backend's state as /health reports it: ok, loading or down, with the reason."""
        try:
            r = self._client.get(self.protocol.health_path, timeout=2.0)
        except httpx.HTTPError as e:
            return {"backend": self.backend, "state": "down", "detail": f"{type(e).__name__}: {e}"}
        if r.status_code == 200:
            return {"backend": self.backend, "state": "ok"}
        state = "loading" if r.status_code == 503 else "down"
        return {"backend": self.backend, "state": state, "detail": f"{r.status_code}: {message(r)}"}
