"""Answering an evaluation item as a system (the registry itself is `alignbeam.systems`), timed from a cold start."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from alignbeam.api import AlignBeam
from alignbeam.method.request import to_messages
from alignbeam.systems import System, router_classifier, run_system


@dataclass
class Answer:
    text: str
    latency_s: float
    completion_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)


class Responder:
    """Answers an item's prompt as a given system, reusing one AlignBeam (models loaded once).

    `cold`: clear the judge's request cache before each answer, so each pays its own classification. An
    evaluation with several answers in flight (`--concurrency`) passes False: clearing would evict the entries of
    the answers running beside it."""

    def __init__(self, ab: AlignBeam, cold: bool = True) -> None:
        self.ab = ab
        self.cold = cold
        if (getattr(ab.judge, "model", None) or ab.anchor) is not None:
            router_classifier(ab)  # built before any item is timed, so the router's first answer is not slower

    def answer(self, system: System, prompt: str, max_new_tokens: int) -> Answer:
        if self.cold and self.ab.judge is not None:
            # the judge remembers each request's classification; without this, a system answering an item
            # after another that classified it would skip that cost and look faster than it is
            self.ab.judge.clear_cache()
        t0 = time.perf_counter()
        r, extra = run_system(self.ab, system, to_messages(prompt), max_new_tokens)
        return Answer(r.text, time.perf_counter() - t0, r.completion_tokens, extra)
