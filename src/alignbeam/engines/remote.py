"""The remote engine: a model that runs on a serving engine (llama.cpp's server, vLLM, SGLang), behind the same
`Model` interface as the in-process engines, so the method never knows where a model runs.

A model is named by URL: `http://gpu-1:8000/v1#specialist` is the model the server calls "specialist";
`...#specialist@/models/specialist-hf` also says where its tokenizer is (an embedded name, a .gguf file, a
Hugging Face folder or id; by default the served name itself). Options go in the query string:
`?protocol=llama-server|vllm|sglang` (default: detected), `top_logprobs=64`, `timeout=60`, `retries=3`,
`n_ctx=4096`.

What stays local: the tokenizer and the chat template (the prompt is rendered and tokenized here, the bridge
table is built from the same token texts as with a local model). What goes over the wire: a session is only its
token list; `logits()` asks the server for the top `top_logprobs` next tokens after that list. The server's
prefix cache makes each request a one-token extension of what it already holds. `step()` sends the next
request of every session in one batched request per server and does not wait for the answer, so the draft's and
the anchor's requests of a mixed step are in flight at the same time.

Top-n instead of the full vocabulary: a token outside the returned list gets a log-probability 20 nats below the
last returned one, so the mixture is, in effect, over the union of the draft's and the anchor's top lists,
renormalised (UniTE's choice), and sampling never lands outside the returned list. The anchor's translation is
exact when `top_b` <= `top_logprobs`. Read-outs that need every logit (the request probe) are not available on a
remote model: `full_vocabulary` is False, and the judge says so (docs/deployment.md).

Failures: an unreachable backend or a 5xx is retried with backoff (the requests are idempotent), then raised
as `BackendError` naming the server (the server's 503); no answer within the timeout is `BackendTimeoutError`
(504); an answer that is not what the protocol promises is a `BackendError` too, never a wrong number.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import numpy as np

from alignbeam.engines.base import Model, ModelInfo, Session, Tokenizer
from alignbeam.engines.protocols import PROTOCOLS, Protocol, TopLogprobs
from alignbeam.errors import BackendError, BackendTimeoutError, ModelLoadError

#: how far below the last returned log-probability a token outside the returned list is put (nats)
OUTSIDE_GAP = 20.0
_OPTIONS = {"protocol": str, "top_logprobs": int, "timeout": float, "retries": int, "n_ctx": int}


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
        path = parts.path.rstrip("/").removesuffix("/v1")
        base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        return cls(base, served, tokenizer, **opts)


class RemoteSession(Session):
    """A token list and, once asked for, the server's answer for it (a future shared by forks of one prefix)."""

    def __init__(self, model: RemoteModel, tokens: Sequence[int]) -> None:
        self.model = model
        self.tokens = list(tokens)
        self._answer: tuple[Future[list[TopLogprobs]], int] | None = None
        self._closed = False

    def logits(self) -> np.ndarray:
        if self._answer is None:
            self.model._prefetch([self])
        assert self._answer is not None
        future, i = self._answer
        return self.model._dense(self.model._wait(future)[i])

    def extend(self, tokens: Sequence[int]) -> None:
        if tokens:
            self.tokens.extend(int(t) for t in tokens)
            self._answer = None

    def fork(self) -> RemoteSession:
        s = RemoteSession(self.model, self.tokens)
        s._answer = self._answer  # the same prefix has the same answer
        return s

    def truncate(self, n: int) -> None:
        if n < len(self.tokens):
            del self.tokens[n:]
            self._answer = None

    def close(self) -> None:
        self._closed = True
        self._answer = None


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
        self._vocab = tokenizer.vocab_size
        self.info = ModelInfo(served or spec.base_url, f"remote:{protocol.name}", spec.base_url, n_ctx)
        self._lock = threading.Lock()
        self.requests = 0  # next-token requests sent (benchmarks, tests)

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

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
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
        try:
            return self.protocol.parse_next_token(data, len(prompts))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise BackendError(
                f"{self.backend} sent an answer that is not a {self.protocol.name} next-token answer ({e!r}): is "
                "the protocol right? Set it with ?protocol=... in the model URL",
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
                raise BackendTimeoutError(
                    f"{self.backend} did not answer within {self.spec.timeout:g} s ({type(e).__name__}): it is "
                    "overloaded or stuck; raise ?timeout= in the model URL if it is only slow",
                    self.backend,
                ) from e
            except httpx.HTTPError as e:
                last = f"cannot be reached ({type(e).__name__}: {e})"
                continue  # down or restarting: retry
            if r.status_code >= 500:
                last = f"answered {r.status_code}: {_message(r)}"
                continue
            if r.status_code >= 400:
                hint = f" ({self.protocol.limit_hint})" if "logprob" in r.text.lower() or "n_probs" in r.text else ""
                msg = f"{self.backend} refused the request: {r.status_code} {_message(r)}{hint}"
                raise BackendError(msg, self.backend)
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


def _client(spec: RemoteSpec) -> httpx.Client:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    timeout = httpx.Timeout(spec.timeout, connect=min(spec.timeout, 5.0))
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
