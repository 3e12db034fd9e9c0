"""The one narrow interface between the AlignBeam method and an inference engine.

The method needs only: a tokenizer view (encode / decode / single-token texts / chat template) and *sessions*,
sequences with their own KV cache that can be extended, asked for next-token logits, forked and truncated;
plus `Model.step`, which extends several sessions in one batched forward pass. Everything is numpy on the
method's side, so the algorithm never knows whether llama.cpp or transformers runs underneath.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from alignbeam.engines.tokenizer import Message, Tokenizer
from alignbeam.errors import ContextOverflowError

#: `Message` and `Tokenizer` live in `engines.tokenizer`; importing them from here keeps working
__all__ = [
    "Decoder",
    "Message",
    "Model",
    "ModelInfo",
    "Sampling",
    "Session",
    "Snapshot",
    "StepDecoder",
    "Tokenizer",
    "check_context",
    "eog_index",
    "masked",
    "softmax",
]


class Session(ABC):
    """One sequence with its own KV cache. `tokens` is everything fed so far (prompt included)."""

    model: Model
    tokens: list[int]

    @abstractmethod
    def logits(self) -> np.ndarray:
        """Next-token logits after `tokens`, float32, shape (vocab_size,)."""

    @abstractmethod
    def extend(self, tokens: Sequence[int]) -> None:
        """Feed tokens (prefill or decode) and keep their KV."""

    @abstractmethod
    def fork(self) -> Session:
        """A new session sharing this prefix (KV copied, not recomputed)."""

    @abstractmethod
    def truncate(self, n: int) -> None:
        """Drop everything after the first n tokens; logits() then equals a fresh session's on tokens[:n]."""

    @abstractmethod
    def close(self) -> None:
        """Free the KV cache; the session may not be used afterwards."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Snapshot:
    """A session's state outside any session (Model.snapshot): its tokens and the engine's own copy of its KV
    cache (None: restore prefills the tokens again)."""

    tokens: list[int]
    state: object


@dataclass
class ModelInfo:
    name: str
    engine: str
    path: str
    n_ctx: int
    n_params: int | None = None


class Model(ABC):
    """A loaded causal LM. Cheap to share: the anchor and the judge may be one Model."""

    #: logits() holds every token's logit (False for the remote engine, which gets the top few from a server)
    full_vocabulary: bool = True

    tokenizer: Tokenizer
    info: ModelInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def n_ctx(self) -> int:
        return self.info.n_ctx

    @property
    def kv_capacity(self) -> int | None:
        """Tokens all open sessions may hold together (None: no shared limit)."""
        return None

    @property
    def max_sessions(self) -> int | None:
        """Sessions that may be open at once (llama.cpp's sequence slots; None: no fixed limit). A request that
        needs more is refused before anything opens."""
        return None

    @property
    def free_sessions(self) -> int | None:
        """Sessions that could be opened now (None: no fixed limit); /health reports a shortfall."""
        return None

    @abstractmethod
    def session(self, tokens: Sequence[int] = ()) -> Session:
        """Open a session, prefilled with `tokens`."""

    def step(self, sessions: Sequence[Session], tokens: Sequence[Sequence[int]]) -> None:
        """Extend each session by its tokens. Engines override this with one batched forward pass."""
        for s, t in zip(sessions, tokens, strict=True):
            if t:
                s.extend(t)

    def ensure(self, sessions: Sequence[Session], ids: Sequence[Sequence[int]]) -> None:  # noqa: B027
        """Make the next `logits()` of each session exact at `ids[i]` (the mixture reads the draft's probability of
        every translated anchor token). A no-op here: `logits()` already holds every token. A model that only sees
        the top few next tokens (the remote engine) asks its server for these ids where the server can name them."""

    def snapshot(self, session: Session) -> Snapshot:
        """A copy of a session's state that holds no session slot, for a prefix read again and again (the request
        classifier's head). This default keeps only the tokens (`restore` prefills them again); engines that can
        copy their KV cache out override both."""
        return Snapshot(list(session.tokens), None)

    def restore(self, snap: Snapshot) -> Session:
        """A new session in the state `snapshot` saw."""
        return self.session(snap.tokens)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engine resources early (they are also released when the object is collected)."""

    def decoder(
        self,
        sessions: Sequence[Session],
        limits: Sequence[int],
        sampling: Sampling,
        rng: np.random.Generator | None = None,
    ) -> Decoder:
        """Continue `sessions` on the model's own, up to `limits[i]` new tokens each, handing the tokens out one
        position at a time (`Decoder`). This default decodes here: one batched `step` per position, each token
        picked by `sampling` from the logits with `rng`. An engine that can decode on its own side (a serving
        engine's streamed completion) overrides it, so a continuation costs one request instead of one per token.
        """
        return StepDecoder(self, sessions, limits, sampling, rng)

    def generate_greedy(
        self,
        prompt: Sequence[int],
        max_new_tokens: int,
        ignore_eos: bool = False,
        stop_when: Callable[[list[int]], bool] | None = None,
    ) -> list[int]:
        """Plain greedy decoding from one session: the reference that tests and baselines compare against.

        `ignore_eos` masks the end-of-turn tokens so exactly `max_new_tokens` come out (equal-length benchmarks).
        `stop_when(tokens so far)` ends it early once it returns True (the anchor's check stops as soon as its
        opening is decided).
        """
        out: list[int] = []
        if max_new_tokens <= 0:
            return out
        with self.session(prompt) as s:
            dec = self.decoder([s], [max_new_tokens], Sampling(ignore_eos=ignore_eos))
            try:
                while len(out) < max_new_tokens:
                    t = dec.next().get(0)
                    if t is None or t in self.tokenizer.eog_ids:
                        break
                    out.append(t)
                    if stop_when is not None and stop_when(out):
                        break
            finally:
                dec.close(feed=False)
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """The next-token distribution, in float64: engines hand out float32 logits, and sums over a 150k vocabulary
    (answer-word mass, mixture weights) need the precision. The maximum is subtracted first, so large logits
    cannot overflow."""
    z = logits.astype(np.float64) - float(np.max(logits))
    e = np.exp(z)
    return e / e.sum()


@dataclass(frozen=True)
class Sampling:
    """How a continuation picks each token: greedy at temperature 0, else from the tempered distribution cut to
    its top-p nucleus. With `ignore_eos`, end-of-turn tokens are never picked (equal-length benchmarks)."""

    temperature: float = 0.0
    top_p: float = 1.0
    ignore_eos: bool = False

    def pick(self, logits: np.ndarray, rng: np.random.Generator | None, eog: np.ndarray | None) -> int:
        """One token from `logits` (float32 over the vocabulary); `eog` is the end-of-turn index (`eog_index`)."""
        if self.ignore_eos:
            logits = masked(logits, eog, -np.inf)
        if self.temperature == 0:
            return int(np.argmax(logits))
        if rng is None:
            raise ValueError("sampling at temperature > 0 needs a random generator")
        p = softmax(logits / self.temperature)
        if self.top_p < 1.0:
            order = np.argsort(-p)
            cut = int(np.searchsorted(np.cumsum(p[order]), self.top_p)) + 1
            kept = np.zeros_like(p)
            kept[order[:cut]] = p[order[:cut]]
            p = kept / kept.sum()
        return int(rng.choice(len(p), p=p))


class Decoder(ABC):
    """Several sessions continued by their model, one position at a time (`Model.decoder`).

    `next()` hands out the next token of every session still running: a dict from the session's index to its
    token, an end-of-turn id when the model ended the response there, no entry once a session has its `limits`
    tokens. The caller tells it which sessions it no longer needs (`stop`: a finished beam, a relapse cut, a stop
    string) so their decoding ends; every token handed out to a session that is not stopped becomes part of it
    (its `tokens`, its KV cache) by the next `next()` or by `close()`, so the session can be read or continued
    afterwards as if it had been stepped token by token.
    """

    @abstractmethod
    def next(self) -> dict[int, int]:
        """The next token of each running session, by index (empty when none runs any more)."""

    @abstractmethod
    def stop(self, index: int) -> None:
        """Session `index` is no longer needed: decode nothing more for it (its last token is not fed)."""

    @abstractmethod
    def close(self, feed: bool = True) -> None:
        """End decoding. `feed`: the tokens handed out to sessions not stopped become part of them (False when the
        sessions are about to be closed anyway: a generation abandoned, an error)."""


@dataclass
class StepDecoder(Decoder):
    """The default decoder: one batched `Model.step` per position, tokens picked here by `Sampling.pick`."""

    model: Model
    sessions: Sequence[Session]
    limits: Sequence[int]
    sampling: Sampling
    rng: np.random.Generator | None = None
    _count: list[int] = field(init=False)
    _pending: dict[int, int] = field(init=False, default_factory=dict)
    _stopped: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._count = [0] * len(self.sessions)
        self._eog = eog_index(self.model.tokenizer)

    def next(self) -> dict[int, int]:
        self._feed()
        out = {}
        for i, s in enumerate(self.sessions):
            if i in self._stopped or self._count[i] >= self.limits[i]:
                continue
            out[i] = self.sampling.pick(s.logits(), self.rng, self._eog)
            self._count[i] += 1
            if out[i] in self.model.tokenizer.eog_ids:
                self._stopped.add(i)  # the response ended: nothing to feed, nothing more to decode
            else:
                self._pending[i] = out[i]
        return out

    def stop(self, index: int) -> None:
        self._stopped.add(index)
        self._pending.pop(index, None)

    def close(self, feed: bool = True) -> None:
        if feed:
            self._feed()
        self._pending.clear()

    def _feed(self) -> None:
        pending, self._pending = self._pending, {}
        live = sorted(pending)
        if live:
            self.model.step([self.sessions[i] for i in live], [[pending[i]] for i in live])


def eog_index(tokenizer: Tokenizer) -> np.ndarray | None:
    """The end-of-turn ids as an index array for `masked` (None when the tokenizer has none)."""
    return np.array(sorted(tokenizer.eog_ids), dtype=np.int64) if tokenizer.eog_ids else None


def masked(x: np.ndarray, index: np.ndarray | None, fill: float) -> np.ndarray:
    """A copy of `x` with the entries at `index` set to `fill` (x itself when index is None).

    The one end-of-turn mask: `ignore_eos` runs every response to max_new_tokens by masking the end-of-turn ids out
    of each choice, on logits (fill -inf) or on a mixed distribution (fill 0). A copy, because engines may hand out
    views of their own buffers.
    """
    if index is None:
        return x
    x = x.copy()
    x[index] = fill
    return x


def check_context(model: Model, n_prompt: int, n_new: int, beams: int | None = None, role: str = "") -> None:
    """The one context-window check, before any session opens: the prompt and `n_new` response tokens must fit the
    model's window, and `beams` such responses its shared KV cache. The message says what to change."""
    who = f"the {role} {model.name}" if role else model.name
    length = "n_mix" if role == "anchor" else "max_new_tokens"
    if n_prompt + n_new > model.n_ctx:
        raise ContextOverflowError(
            f"the prompt has {n_prompt} tokens for {who}, and {n_prompt} + {length} {n_new} exceeds its context window "
            f"of {model.n_ctx}: shorten the conversation or lower {length}"
        )
    cap = model.kv_capacity
    if beams is not None and cap is not None and n_prompt + beams * n_new > cap:
        raise ContextOverflowError(
            f"{beams} candidates of up to {n_new} tokens after a {n_prompt}-token prompt need "
            f"{n_prompt + beams * n_new} KV cells, but {model.name} was loaded with room for {cap}: "
            "lower k or max_new_tokens, or load it with a larger n_ctx_total "
            f"(load_model({model.name!r}, n_ctx_total=...))"
        )
