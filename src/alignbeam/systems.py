"""Systems: the ways a request can be answered, in one registry that the API, the server and the evaluation share.

A system is named by a short spec, so a user can name a comparison on the command line:
  draft                 the draft alone, greedy: the baseline every result is compared with
  anchor                the anchor alone, greedy, with its own chat template
  alignbeam[:k=v,...]   AlignBeam on the loaded config (the paper's method in `alignbeam eval`) with knobs
  recommended[:k=v]     AlignBeam with the recommended preset (config.PRESETS), and knobs on top
  mixing                K=1, no judge: the anchor's mix alone (SafeDecoding-style)
  router[:margin=m]     the judge model classifies the request: flagged -> the anchor alone, otherwise the draft
A sweep: alignbeam:alpha=0.2|0.5|0.8 expands to three systems. A new baseline is one entry in `KINDS`.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alignbeam.config import PRESETS
from alignbeam.engines.base import Message, Model, check_context
from alignbeam.errors import AlignBeamError, ConfigError
from alignbeam.method.judge import SafetyJudge
from alignbeam.method.request import Result
from alignbeam.method.textrules import trim_stop

if TYPE_CHECKING:
    from alignbeam.api import AlignBeam

#: what a system's answer carries besides its Result: fields an evaluation record keeps (route, scores, ...)
Extra = dict[str, Any]
Runner = Callable[["AlignBeam", list[Message], int, dict[str, Any]], tuple[Result, Extra]]


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


def answer_alone(
    model: Model, messages: list[Message], max_new_tokens: int, ignore_eos: bool = False, stop: Sequence[str] = ()
) -> Result:
    """One model alone, greedy, in its own chat template; `stop` strings end the answer (not included)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    ids = model.tokenizer.encode_chat(messages)
    check_context(model, len(ids), max_new_tokens)  # no mixing here, so only the length matters
    out = model.generate_greedy(ids, max_new_tokens, ignore_eos=ignore_eos)
    finished = len(out) < max_new_tokens
    text, cut = trim_stop(model.tokenizer.decode(out), stop)
    return Result(text, "stop" if finished or cut else "length", len(ids), len(out))


def _draft(ab: AlignBeam, messages: list[Message], n: int, opts: dict[str, Any]) -> tuple[Result, Extra]:
    stop, ignore_eos = opts.get("stop", ()), opts.get("ignore_eos")
    return ab.generate_draft(messages, max_new_tokens=n, ignore_eos=ignore_eos, stop=stop), {}


def _anchor(ab: AlignBeam, messages: list[Message], n: int, opts: dict[str, Any]) -> tuple[Result, Extra]:
    return ab.generate_anchor(messages, max_new_tokens=n, stop=opts.get("stop", ())), {}


def _router(ab: AlignBeam, messages: list[Message], n: int, opts: dict[str, Any]) -> tuple[Result, Extra]:
    """The judge model's request classifier picks one model: flagged -> the anchor alone, else the draft alone."""
    classifier = router_classifier(ab)
    margin = classifier.request_margin(messages)
    flagged = margin > float(opts.get("margin", classifier.harm_center))
    run = _anchor if flagged else _draft
    result, _ = run(ab, messages, n, {k: v for k, v in opts.items() if k == "stop"})
    return result, {"request_margin": round(margin, 3), "flagged": flagged}


#: the router's request classifier per loaded AlignBeam (built on first use, gone with it)
_classifiers: weakref.WeakKeyDictionary[AlignBeam, SafetyJudge] = weakref.WeakKeyDictionary()


def router_classifier(ab: AlignBeam) -> SafetyJudge:
    """The router's request classifier, built once per AlignBeam (the judge's model, else the anchor)."""
    if ab not in _classifiers:
        model = getattr(ab.judge, "model", None) or ab.anchor
        if model is None:
            raise AlignBeamError("the router needs a judge or anchor model to classify requests")
        _classifiers[ab] = SafetyJudge(model)
    return _classifiers[ab]


def _method(preset: dict[str, Any]) -> Runner:
    """AlignBeam itself, with the preset's knobs under the system's own."""

    def run(ab: AlignBeam, messages: list[Message], n: int, opts: dict[str, Any]) -> tuple[Result, Extra]:
        r = ab.generate(messages, max_new_tokens=n, trace=True, **{**preset, **opts})
        return r, trace_extra(r)

    return run


def trace_extra(r: Result) -> Extra:
    """What an evaluation record keeps of a trace: the route and what it read, the scores, every candidate."""
    tr = r.trace
    if tr is None:
        return {}

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "phases_ms": tr.timings_ms,
        "scores": [c.score for c in tr.candidates],
        "chosen": tr.chosen,
        "gated": tr.gated,
        "route": tr.route,
        "request_risk": rounded(tr.request_risk),
        "anchor_opening": tr.anchor_opening,
        "anchor_refusal": rounded(tr.anchor_refusal),
        # every candidate's text, so the oracle bound (a perfect selector) can be computed afterwards, and the one
        # a refusal message replaced (an audit can read what was not returned)
        "candidates": [c.text for c in tr.candidates] if len(tr.candidates) > 1 or tr.refused_by_policy else [],
    }


#: kind -> how it answers. The method's kinds pass the system's options as knobs.
KINDS: dict[str, Runner] = {
    "draft": _draft,
    "anchor": _anchor,
    "alignbeam": _method({}),
    "recommended": _method(PRESETS["recommended"]),
    "mixing": _method({"k": 1, "use_judge": False}),
    "router": _router,
}


def run_system(
    ab: AlignBeam, system: System, messages: list[Message], max_new_tokens: int, **options: Any
) -> tuple[Result, Extra]:
    """Answer `messages` as `system`, with extra options (a request's stop strings) on top of the system's own."""
    return KINDS[system.kind](ab, messages, max_new_tokens, {**system.options(), **options})


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
