"""Systems under evaluation: the draft alone, the anchor alone, AlignBeam with given knobs, and two baselines.

A system spec is a short string, so a user can name a comparison on the command line:
  draft | anchor | alignbeam | alignbeam:alpha=0.3,k=5 | mixing (K=1, no judge: SafeDecoding-style) |
  router | router:margin=2.0 (the judge model classifies the request; flagged -> the anchor's own answer,
  otherwise the draft alone) | recommended (AlignBeam with the "recommended" preset, config.PRESETS).
  A sweep: alignbeam:alpha=0.2|0.5|0.8 expands to three systems.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from alignbeam.api import AlignBeam
from alignbeam.config import PRESETS
from alignbeam.errors import AlignBeamError
from alignbeam.method.judge import SafetyJudge

KINDS = ("draft", "anchor", "alignbeam", "mixing", "router", "recommended")


@dataclass(frozen=True)
class System:
    kind: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        if not self.overrides:
            return self.kind
        return self.kind + ":" + ",".join(f"{k}={v}" for k, v in self.overrides)

    def options(self) -> dict[str, Any]:
        return dict(self.overrides)


def _value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(v.lower(), v)


def parse_system(spec: str) -> list[System]:
    """One spec -> systems: 'alignbeam:alpha=0.3|0.6,k=5' -> [alignbeam:alpha=0.3,k=5, alignbeam:alpha=0.6,k=5]."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise AlignBeamError(f"unknown system {kind!r}: choose from {', '.join(KINDS)} (e.g. alignbeam:alpha=0.3,k=5)")
    grid: list[list[tuple[str, Any]]] = []
    for part in [p for p in rest.split(",") if p.strip()]:
        key, eq, vals = part.partition("=")
        if not eq:
            raise AlignBeamError(f"system option {part!r} must look like name=value (several values: a|b|c)")
        grid.append([(key.strip(), _value(v.strip())) for v in vals.split("|")])
    return [System(kind, tuple(combo)) for combo in itertools.product(*grid)]


def parse_systems(specs: list[str]) -> list[System]:
    out: list[System] = []
    for spec in specs:
        for s in parse_system(spec):
            if s not in out:
                out.append(s)
    return out


@dataclass
class Answer:
    text: str
    latency_s: float
    completion_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)


class Responder:
    """Answers an item's prompt as a given system, reusing one AlignBeam (models loaded once)."""

    def __init__(self, ab: AlignBeam, router_margin: float | None = None) -> None:
        self.ab = ab
        judge_model = getattr(ab.judge, "model", None) or ab.anchor
        self._classifier = SafetyJudge(judge_model) if judge_model is not None else None
        self.router_margin = (
            router_margin if router_margin is not None else (self._classifier.harm_center if self._classifier else 0.0)
        )

    def answer(self, system: System, prompt: str, max_new_tokens: int) -> Answer:
        opts = system.options()
        if self.ab.judge is not None:
            # the judge remembers each request's classification; without this, a system answering an item
            # after another that classified it would skip that cost and look faster than it is
            self.ab.judge.clear_cache()
        t0 = time.perf_counter()
        extra: dict[str, Any] = {}
        if system.kind == "draft":
            r = self.ab.generate_draft(prompt, max_new_tokens=max_new_tokens)
        elif system.kind == "anchor":
            r = self.ab.generate_anchor(prompt, max_new_tokens=max_new_tokens)
        elif system.kind == "router":
            if self._classifier is None:
                raise AlignBeamError("the router needs a judge or anchor model to classify requests")
            margin = self._classifier.request_margin([{"role": "user", "content": prompt}])
            flagged = margin > float(opts.get("margin", self.router_margin))
            extra = {"request_margin": round(margin, 3), "flagged": flagged}
            gen = self.ab.generate_anchor if flagged else self.ab.generate_draft
            r = gen(prompt, max_new_tokens=max_new_tokens)
        else:
            if system.kind == "mixing":
                opts = {"k": 1, "use_judge": False, **opts}
            elif system.kind == "recommended":
                opts = {**PRESETS["recommended"], **opts}
            r = self.ab.generate(prompt, max_new_tokens=max_new_tokens, trace=True, **opts)
            tr = r.trace
            extra = {
                "phases_ms": tr.timings_ms,
                "scores": [c.score for c in tr.candidates],
                "chosen": tr.chosen,
                "gated": tr.gated,
                "route": tr.route,
                "request_risk": None if tr.request_risk is None else round(tr.request_risk, 4),
                "anchor_opening": tr.anchor_opening,
                "anchor_refusal": None if tr.anchor_refusal is None else round(tr.anchor_refusal, 4),
                "restated_risk": None if tr.restated_risk is None else round(tr.restated_risk, 4),
                # every candidate's text, so the oracle bound (a perfect selector) can be computed afterwards, and
                # the one a refusal message replaced (an audit can read what was not returned)
                "candidates": [c.text for c in tr.candidates] if len(tr.candidates) > 1 or tr.refused_by_policy else [],
            }
        return Answer(r.text, time.perf_counter() - t0, r.completion_tokens, extra)
