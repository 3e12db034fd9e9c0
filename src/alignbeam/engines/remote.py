"""The remote engine: a model that runs on a serving engine (llama.cpp's server, vLLM, SGLang), behind the same
`Model` interface as the in-process engines, so the method never knows where a model runs.

A model is named by URL: `http://gpu-1:8000/v1#specialist` is the model the server calls "specialist";
`...#specialist@/models/specialist-hf` also says where its tokenizer is (an embedded name, a .gguf file, a
Hugging Face folder or id; by default the served name itself). Options go in the query string:
`?protocol=llama-server|vllm|sglang` (default: detected), `top_logprobs=64`, `timeout=60`, `retries=3`,
`n_ctx=4096`, `named=1` (0: never ask for named tokens' log-probabilities), `connections=64` (the most requests
this process has in flight at this server at once, streams included; more wait for a free connection).

What stays local: the tokenizer and the chat template (the prompt is rendered and tokenized here, the bridge
table is built from the same token texts as with a local model). What goes over the wire: a session is only its
token list; `logits()` asks the server for the top `top_logprobs` next tokens after that list. The server's
prefix cache makes each request a one-token extension of what it already holds. `step()` sends the next
request of every session in one batched request per server and does not wait for the answer, so the draft's and
the anchor's requests of a mixed step are in flight at the same time.

The continuation after the mixed prefix is not stepped token by token: `decoder()` opens one ordinary streamed
completion per beam (all at once, so the server batches them), reads the generated token ids as they arrive, and
closes a beam's stream as soon as the method has what it needs (a stop string, a relapse cut, the judge chose
another beam). A stream that breaks off is resumed from the tokens already received. llama-server does not stream
the id of a token that ends inside a UTF-8 character (its chunks say how many tokens it has generated, so the gap
shows): the decoder then asks for the missing tokens without streaming and streams on from there.

Top-n instead of the full vocabulary: a token outside the returned list gets a log-probability 20 nats below the
last returned one, so the mixture is, in effect, over the union of the draft's and the anchor's top lists,
renormalised (UniTE's choice), and sampling never lands outside the returned list. Where the server can name
tokens (vLLM >= 0.26, SGLang), `ensure()` asks, in one more batched request, for the draft's exact probability of
the translated anchor tokens that its top list lacks; a server that ignores or refuses the request is asked no
more (one warning), and the floor stays. The anchor's translation is
exact when `top_b` <= `top_logprobs`. Read-outs that need every logit (the request probe) are not available on a
remote model: `full_vocabulary` is False, and the judge says so (docs/deployment.md).

Failures: an unreachable backend or a 5xx is retried with backoff (the requests are idempotent), then raised
as `BackendError` naming the server (the server's 503); no answer within the timeout is `BackendTimeoutError`
(504); an answer that is not what the protocol promises is a `BackendError` too, never a wrong number.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import numpy as np

from alignbeam.engines.base import Decoder, Model, ModelInfo, Sampling, Session, Tokenizer
from alignbeam.engines.protocols import PROTOCOLS, Piece, Protocol, TopLogprobs
from alignbeam.errors import BackendError, BackendTimeoutError, ModelLoadError

_T = TypeVar("_T")

#: how far below the last returned log-probability a token outside the returned list is put (nats)
OUTSIDE_GAP = 20.0
_OPTIONS = {
    "protocol": str,
    "top_logprobs": int,
    "timeout": float,
    "retries": int,
    "n_ctx": int,
    "named": int,
    "connections": int,
}


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


@dataclass(frozen=True)
class RemoteSpec:
    """A parsed model URL."""

    base_url: str  # scheme://host:port[/prefix], without a trailing /v1
    served: str  # the model name at the server ("" = the server's only model)
    tokenizer: str  # where the tokenizer is ("" = the served name)
    protocol: str | None = None
    top_logprobs: int = 64
    timeout: float = 60.0
    retries: int = 3
    n_ctx: int | None = None
    named: int = 1  # ask for the draft's probability of translated anchor tokens by id, where the server can
    connections: int = 64  # requests in flight at this server at once (the per-backend concurrency limit)

    @classmethod
    def parse(cls, spec: str, **overrides: Any) -> RemoteSpec:
        parts = urlsplit(spec)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ModelLoadError(f"'{spec}' is not a server URL: write http://host:port[/v1]#served-name")
        served, _, tokenizer = parts.fragment.partition("@")
        opts: dict[str, Any] = {}
        for key, value in [*parse_qsl(parts.query), *overrides.items()]:
            if key not in _OPTIONS:
                raise ModelLoadError(f"unknown remote model option '{key}' in {spec}: valid are {', '.join(_OPTIONS)}")
            try:
                opts[key] = _OPTIONS[key](value)
            except (TypeError, ValueError):
                kind = _OPTIONS[key].__name__
                raise ModelLoadError(f"remote model option {key}={value!r} in {spec} is not a {kind}") from None
        if opts.get("protocol") is not None and opts["protocol"] not in PROTOCOLS:
            known = ", ".join(PROTOCOLS)
            raise ModelLoadError(f"unknown protocol '{opts['protocol']}' in {spec}: choose one of {known}")
        if not 1 <= opts.get("top_logprobs", 64) <= 1000:
            raise ModelLoadError(f"top_logprobs in {spec} must be between 1 and 1000")
        if opts.get("timeout", 60.0) <= 0 or opts.get("retries", 3) < 0:
            raise ModelLoadError(f"timeout must be > 0 and retries >= 0 in {spec}")
        if opts.get("connections", 64) < 1:
            raise ModelLoadError(f"connections must be at least 1 in {spec}")
        path = parts.path.rstrip("/").removesuffix("/v1")
        base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        return cls(base, served, tokenizer, **opts)


class RemoteSession(Session):
    """A token list and, once asked for, the server's answer for it (a future shared by forks of one prefix)."""

    def __init__(self, model: RemoteModel, tokens: Sequence[int]) -> None:
        self.model = model
        self.tokens = list(tokens)
        self._answer: tuple[Future[list[TopLogprobs]], int] | None = None
        self._named: tuple[Future[list[TopLogprobs] | None], int] | None = None  # `ensure`'s answer
        self._closed = False

    def logits(self) -> np.ndarray:
        out = self.model._dense(self.top())
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

    def __init__(self, spec: RemoteSpec, tokenizer: Tokenizer, protocol: Protocol, served: str, n_ctx: int) -> None:
        self.spec = spec
        self.tokenizer = tokenizer
        self.protocol = protocol
        self.served = served
        self._client = _client(spec)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"alignbeam-remote-{served or 'model'}")
        # streamed continuations hold a thread each for their whole length: their own pool, so they never queue
        # the short next-token requests of other generations behind them
        self._streams = ThreadPoolExecutor(spec.connections, thread_name_prefix=f"alignbeam-stream-{served or 'model'}")
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
        except _Refused as e:
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
        self._streams.shutdown(wait=False, cancel_futures=True)
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
                raise self._timeout(e) from e
            except httpx.HTTPError as e:
                last = f"cannot be reached ({type(e).__name__}: {e})"
                continue  # down or restarting: retry
            if r.status_code >= 500:
                last = f"answered {r.status_code}: {_message(r)}"
                continue
            if r.status_code >= 400:
                hint = f" ({self.protocol.limit_hint})" if "logprob" in r.text.lower() or "n_probs" in r.text else ""
                msg = f"{self.backend} refused the request: {r.status_code} {_message(r)}{hint}"
                raise _Refused(msg, self.backend)
            try:
                return r.json()
            except json.JSONDecodeError as e:
                raise BackendError(f"{self.backend} answered with something that is not JSON", self.backend) from e
        raise BackendError(f"{self.backend} {last} (after {self.spec.retries + 1} tries)", self.backend)

    def _dense(self, top: TopLogprobs) -> np.ndarray:
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
    def _complete(
        self, prompt: list[int], n: int, sampling: Sampling, seed: int | None, cancel: threading.Event
    ) -> Iterator[Piece]:
        """The pieces of one streamed completion of up to `n` tokens after `prompt`. Opening it is retried like
        any request; a stream that breaks off after its first piece raises `_BrokeOff` (the caller resumes it from
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
                        last = f"answered {r.status_code}: {_message(r)}"
                        continue
                    if r.status_code >= 400:
                        r.read()
                        msg = f"{self.backend} refused the completion: {r.status_code} {_message(r)}"
                        raise BackendError(msg, self.backend)
                    with self._lock:
                        self.requests += 1
                    for line in r.iter_lines():
                        if cancel.is_set():
                            return  # leaving the block closes the connection: the server stops generating
                        try:
                            data = _event(line)
                        except ValueError as e:
                            msg = f"{self.backend} sent a stream that is not {self.protocol.name} completion chunks"
                            raise BackendError(f"{msg} ({e}): is the protocol right?", self.backend) from e
                        if data is not None:
                            started = True
                            yield self._piece(data)
                    return
            except httpx.TimeoutException as e:
                raise self._timeout(e) from e
            except httpx.HTTPError as e:
                last = f"cannot be reached ({type(e).__name__}: {e})"
                if started:
                    msg = f"{self.backend} broke off a streamed completion ({type(e).__name__}: {e})"
                    raise _BrokeOff(msg, self.backend) from e
        raise BackendError(f"{self.backend} {last} (after {self.spec.retries + 1} tries)", self.backend)

    def _complete_once(self, prompt: list[int], n: int, sampling: Sampling, seed: int | None) -> Piece:
        """Up to `n` tokens after `prompt`, unstreamed (fills the gaps a stream leaves)."""
        path, body = self.protocol.completion_request(self.served, prompt, n, sampling, seed, stream=False)
        return self._piece(self._post(path, body))

    def _piece(self, data: Any) -> Piece:
        return self._parsed(lambda: self.protocol.parse_piece(data), "a completion")

    def _timeout(self, e: Exception) -> BackendTimeoutError:
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
        return {"backend": self.backend, "state": state, "detail": f"{r.status_code}: {_message(r)}"}


def _event(line: str) -> Any:
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


_END = object()  # a stream's queue: no more tokens


class _Refused(BackendError):
    """The backend answered 4xx: the request itself is wrong for it (not retried)."""


class _BrokeOff(BackendError):
    """A streamed completion broke off after it had sent something: resumed, not retried from the start."""


class _Stream:
    """One session's continuation, read by a worker thread into a queue: token ids, then `_END` with the reason,
    or the exception that ended it."""

    def __init__(self, model: RemoteModel, prompt: list[int], limit: int, sampling: Sampling, seed: int | None):
        self.model = model
        self.cancel = threading.Event()
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.handed = 0  # tokens handed out by the decoder
        self.ended = False
        model._streams.submit(self._run, prompt, limit, sampling, seed)

    def _run(self, prompt: list[int], limit: int, sampling: Sampling, seed: int | None) -> None:
        try:
            self.q.put((_END, self._read(prompt, limit, sampling, seed)))
        except Exception as e:
            self.q.put(e)

    def _read(self, prompt: list[int], limit: int, sampling: Sampling, seed: int | None) -> str:
        """Put every token on the queue; return why the continuation ended ("eos" or "length")."""
        got: list[int] = []
        breaks = 0
        while len(got) < limit and not self.cancel.is_set():
            n0 = len(got)
            pieces = self.model._complete(prompt + got, limit - n0, sampling, seed, self.cancel)
            try:
                for piece in pieces:
                    new = piece.ids[len(got) - n0 :] if piece.cumulative else piece.ids
                    missing = 0 if piece.total is None else piece.total - (len(got) - n0) - len(new)
                    if missing > 0:
                        # ids the stream did not send (a token ending inside a UTF-8 character): ask for them and
                        # the tokens after them without streaming, then stream on from there
                        fill = self.model._complete_once(prompt + got, missing + len(new), sampling, seed)
                        self._put(got, fill.ids)
                        if fill.end == "eos":
                            return "eos"
                        break
                    self._put(got, new)
                    if piece.end is not None:
                        return piece.end
                else:
                    if not self.cancel.is_set():  # closed without its last chunk: broken off, resumed below
                        raise _BrokeOff(f"{self.model.backend} closed a stream before its end", self.model.backend)
            except _BrokeOff:
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
        """The next token id, or (_END, reason); raises what ended the stream."""
        spec = self.model.spec
        wait = spec.timeout * (spec.retries + 1) * 2 + 10  # every read has its own timeout: this never waits
        try:
            item = self.q.get(timeout=wait)
        except queue.Empty:
            raise self.model._timeout(TimeoutError(f"no token for {wait:g} s")) from None
        if isinstance(item, Exception):
            raise item
        return item


class RemoteDecoder(Decoder):
    """`Model.decoder` on a serving engine: one streamed completion per session (see the module docstring)."""

    def __init__(
        self,
        model: RemoteModel,
        sessions: Sequence[Session],
        limits: Sequence[int],
        sampling: Sampling,
        rng: np.random.Generator | None,
    ) -> None:
        self.model = model
        self.sessions = list(sessions)
        self.limits = list(limits)
        self._eot = model.tokenizer.eot_id
        self._streams: dict[int, _Stream] = {}
        for i, (s, n) in enumerate(zip(self.sessions, self.limits, strict=True)):
            if n > 0:
                # a seed per beam from the method's generator: reproducible runs, different beams
                seed = int(rng.integers(0, 2**31 - 1)) if (rng is not None and sampling.temperature > 0) else None
                self._streams[i] = _Stream(model, list(s.tokens), n, sampling, seed)

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


def _client(spec: RemoteSpec) -> httpx.Client:
    limits = httpx.Limits(max_connections=spec.connections, max_keepalive_connections=spec.connections)
    # waiting for one of this backend's `connections` is queueing here, not the backend being slow: no pool timeout
    timeout = httpx.Timeout(spec.timeout, connect=min(spec.timeout, 5.0), pool=None)
    return httpx.Client(base_url=spec.base_url, timeout=timeout, limits=limits)


def _message(r: httpx.Response) -> str:
    """The error message in an error answer (OpenAI's and llama-server's shapes), else the start of the body."""
    try:
        data = r.json()
    except ValueError:
        return r.text[:200]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or err)[:300]
    return str(err)[:300]


class _Unreachable(Exception):
    """The server did not answer while its protocol was named: loading goes on without what it would report."""


def _detect(client: httpx.Client, spec: RemoteSpec) -> tuple[Protocol, str, int | None]:
    """(protocol, served model name, context size) from what the server answers."""

    def get(path: str) -> dict | None:
        try:
            r = client.get(path, timeout=min(spec.timeout, 10.0))
        except httpx.HTTPError as e:
            if spec.protocol is not None:
                raise _Unreachable from e
            raise ModelLoadError(
                f"the server at {spec.base_url} cannot be reached ({type(e).__name__}): start it first, or name its "
                "protocol (?protocol=llama-server|vllm|sglang) to connect later"
            ) from e
        if r.status_code != 200:
            return None
        try:
            data = r.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    name = spec.protocol
    props = get("/props") if name in (None, "llama-server") else None
    if props is not None and "default_generation_settings" in props:
        n_ctx = props["default_generation_settings"].get("n_ctx")
        return PROTOCOLS["llama-server"](), spec.served or str(props.get("model_alias") or ""), n_ctx
    if name in (None, "sglang"):
        info = get("/get_model_info")
        if info is not None and "model_path" in info:
            return PROTOCOLS["sglang"](), spec.served or str(info["model_path"]), None
    if name in (None, "vllm"):
        models = get("/v1/models")
        if models is not None and models.get("data"):
            served = spec.served or str(models["data"][0]["id"])
            entry = next((m for m in models["data"] if m.get("id") == served), models["data"][0])
            return PROTOCOLS["vllm"](), served, entry.get("max_model_len")
    raise ModelLoadError(
        f"the server at {spec.base_url} does not look like llama-server (/props), SGLang (/get_model_info) or an "
        "OpenAI-compatible vLLM (/v1/models): name its protocol with ?protocol=..."
    )


def load_remote(spec: str, **options: Any) -> RemoteModel:
    """Connect to the model at `spec` (a URL, see the module docstring) and load its tokenizer locally."""
    parsed = RemoteSpec.parse(spec, **options)
    client = _client(parsed)
    try:
        protocol, served, n_ctx = _detect(client, parsed)
    except _Unreachable:  # the protocol is named: connect when the backend is up (/health says down until then)
        assert parsed.protocol is not None
        protocol, served, n_ctx = PROTOCOLS[parsed.protocol](), parsed.served, None
    finally:
        client.close()
    source = parsed.tokenizer or served
    if not source:
        raise ModelLoadError(
            f"the remote engine needs the model's tokenizer locally: write {spec}#served-name@tokenizer (an embedded "
            "name, a .gguf file, or a Hugging Face folder or id)"
        )
    return RemoteModel(parsed, load_tokenizer(source), protocol, served, parsed.n_ctx or n_ctx or 4096)


def load_tokenizer(source: str) -> Tokenizer:
    """The tokenizer and chat template of `source` (an embedded name, .gguf file, HF folder or id), no weights."""
    from alignbeam.engines.registry import resolve

    try:
        resolved = resolve(source)
    except ModelLoadError as e:
        raise ModelLoadError(
            f"the remote engine needs the model's tokenizer locally, and '{source}' could not be found ({e}); "
            "name it after '@' in the model URL: http://host:port#served-name@tokenizer"
        ) from e
    if resolved.is_gguf:
        from alignbeam.engines.llamacpp import load_tokenizer as gguf_tokenizer

        return gguf_tokenizer(resolved.path)
    from alignbeam.engines.hf import load_hf_tokenizer

    return load_hf_tokenizer(resolved)
