"""What the in-process engines (llama.cpp, transformers) share: sessions that keep their own next-token logits.

Both engines compute a session's logits in the forward pass that feeds its last token and keep them with the
session (`next_logits`), so `logits()` after `extend` costs nothing. When they were dropped (a truncation, a
token fed without asking for its logits) `logits()` feeds the last token again: truncate by one, extend by one,
the same forward pass as the first time. A closed session refuses every call. `step` checks its sessions here
(open, of this model, within the context window) before the engine runs its batched forward pass.

What touches the engine's own KV cache (forking, dropping cells, the forward pass itself) stays in the engine:
`LocalSession.drop_kv` and `LocalModel.new_session` are the two hooks.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar, cast

import numpy as np

from alignbeam.engines.base import Model, Session
from alignbeam.errors import AlignBeamError, ContextOverflowError

S = TypeVar("S", bound="LocalSession")


class LocalSession(Session):
    """A session of an in-process model: its tokens, the logits after them (when known), and whether it is open."""

    model: LocalModel

    def __init__(self, model: LocalModel) -> None:
        self.model = model
        self.tokens = []
        #: next-token logits after `tokens` when the last forward pass computed them (None: `logits()` recomputes)
        self.next_logits: np.ndarray | None = None
        self.closed = False

    def logits(self) -> np.ndarray:
        self.check_open()
        if self.next_logits is None:
            if not self.tokens:
                raise AlignBeamError("an empty session has no next-token logits: extend it with a prompt first")
            last = self.tokens[-1]
            self.truncate(len(self.tokens) - 1)
            self.extend([last])
        assert self.next_logits is not None
        return self.next_logits

    def extend(self, tokens: Sequence[int]) -> None:
        self.check_open()
        if tokens:
            self.model.step([self], [tokens])

    def truncate(self, n: int) -> None:
        self.check_open()
        if n < 0 or n > len(self.tokens):
            raise ValueError(f"cannot truncate a session of {len(self.tokens)} tokens to {n}")
        if n == len(self.tokens):
            return
        self.drop_kv(n)
        del self.tokens[n:]
        self.next_logits = None

    @abstractmethod
    def drop_kv(self, n: int) -> None:
        """Drop the engine's KV cache after the first `n` tokens (`tokens` still holds all of them)."""

    def fed(self, tokens: Sequence[int], logits: np.ndarray | None) -> None:
        """The engine fed `tokens` into this session's KV cache; `logits` are the next-token logits after them
        (None when the forward pass did not compute them)."""
        self.tokens.extend(tokens)
        self.next_logits = logits

    def check_open(self) -> None:
        if self.closed:
            raise AlignBeamError("this session was closed")


class LocalModel(Model, Generic[S]):
    """A model whose sessions live in this process (`S`: the engine's session class)."""

    def session(self, tokens: Sequence[int] = ()) -> S:
        s = self.new_session()
        if tokens:
            s.extend(tokens)
        return s

    @abstractmethod
    def new_session(self) -> S:
        """An empty session of this model."""

    def step_work(self, sessions: Sequence[Session], tokens: Sequence[Sequence[int]]) -> list[tuple[S, list[int]]]:
        """The (session, tokens) pairs `step` has to feed, empty ones left out, after checking every session: open,
        of this model, and with room for its tokens in the context window (nothing is fed when one has none)."""
        work: list[tuple[S, list[int]]] = []
        for s, t in zip(sessions, tokens, strict=True):
            assert isinstance(s, LocalSession) and s.model is self
            s.check_open()
            if not t:
                continue
            if len(s.tokens) + len(t) > self.info.n_ctx:
                raise ContextOverflowError(
                    f"{len(s.tokens) + len(t)} tokens do not fit in {self.info.name}'s context of "
                    f"{self.info.n_ctx}: shorten the prompt or lower max_new_tokens"
                )
            work.append((cast(S, s), [int(x) for x in t]))
        return work
