"""What happened in one generation: per candidate and per phase. Users tune alpha, N and K from this."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Candidate:
    index: int
    tokens: list[int] = field(default_factory=list)  # draft response tokens
    text: str = ""
    mixed_logprob: float = 0.0  # sum of log P_mix over the mixed prefix
    kept_mass: list[float] = field(default_factory=list)  # per mixed step: anchor mass the bridge kept
    fallbacks: int = 0  # mixed steps where the bridge kept nothing (draft alone)
    n_mixed: int = 0  # tokens generated from the mixed distribution
    finished: bool = False  # ended with end-of-turn (not cut at max_new_tokens)
    score: float | None = None  # judge harm score, 1-5
    stopped_early: bool = False  # continuation dropped by the early judge
    source: str = "mixed"  # "mixed": grown from the mixed prefix; "draft": the draft's own unmixed answer
    draft_logprob: float = 0.0  # sum of log P_draft over the prefix tokens (how natural the draft finds it)
    relapse_cut: bool = False  # ended where a declining answer turned to help (config relapse_cut)
    #: per mixed step, the anchor's share of the chosen token's mixed probability (mixing.anchor_share)
    anchor_shares: list[float] = field(default_factory=list)
    #: the text of each token of the mixed prefix, in order (what the shares shade)
    prefix_pieces: list[str] = field(default_factory=list)

    @property
    def prefix_len(self) -> int:
        return self.n_mixed

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("tokens")
        d["n_tokens"] = len(self.tokens)
        return d


class Timer:
    """Accumulates wall time per named phase."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0

    def ms(self) -> dict[str, float]:
        return {k: round(v * 1000, 2) for k, v in self.phases.items()}


@dataclass
class Trace:
    candidates: list[Candidate]
    chosen: int
    all_unsafe: bool
    refused_by_policy: bool
    timings_ms: dict[str, float]
    config: dict[str, Any]
    identity_bridge: bool
    #: prompt gating: the judge's P(harmful request), and whether the request went to the draft alone
    request_risk: float | None = None
    gated: bool = False
    #: which path the request took (method/route.py): "draft" (gated to the draft alone), "classifier" (flagged),
    #: "anchor" (passed by the classifier, declined by the anchor's opening), "prefill", "uncalibrated" (a judge
    #: without a calibrated classifier: the full method), or None (no gate)
    route: str | None = None
    #: the anchor's own opening, when `anchor_check` read one
    anchor_opening: str | None = None
    #: whether the anchor's greedy opening declines (1.0) or not (0.0), when `anchor_check` read one
    anchor_refusal: float | None = None
    #: why the route was taken, in words with its numbers (route.reason_for)
    route_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "all_unsafe": self.all_unsafe,
            "refused_by_policy": self.refused_by_policy,
            "identity_bridge": self.identity_bridge,
            "request_risk": self.request_risk,
            "gated": self.gated,
            "route": self.route,
            "anchor_opening": self.anchor_opening,
            "anchor_refusal": self.anchor_refusal,
            "route_reason": self.route_reason,
            "timings_ms": self.timings_ms,
            "config": self.config,
            "candidates": [c.summary() for c in self.candidates],
        }
