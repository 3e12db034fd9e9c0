"""AlignBeamConfig: every knob of the method with the paper's default, validated in one place.

A config is immutable; per-call and per-request overrides make a new one with `merged()`, so a server can
serve requests with different alpha/N/K from one AlignBeam object without any shared mutable state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from alignbeam.errors import ConfigError

BRIDGE_POLICIES = ("drop", "first", "exact")
SUPPORTS = ("union", "anchor")
ON_ALL_UNSAFE = ("safest", "refuse")
SELECT_RULES = ("safest", "helpful")
DEFAULT_REFUSAL = "I'm sorry, but I can't help with that request."


@dataclass(frozen=True)
class AlignBeamConfig:
    #: weight of the translated anchor distribution in the mix; 0 = the draft alone
    alpha: float = 0.5
    #: response tokens generated from the mixed distribution (the safety prefix), per candidate
    n_mix: int = 6
    #: anchor tokens translated into the draft vocabulary per mixed step
    top_b: int = 50
    #: candidate continuations (distinct first tokens)
    k: int = 3
    #: anchor token whose text re-encodes to several draft tokens: drop it, map to the first, or exact-only
    bridge: str = "drop"
    #: "union": mix over the whole draft vocabulary; "anchor": keep only the translated anchor support
    support: str = "union"
    #: judge harm score (1-5) above which a candidate counts as unsafe
    judge_threshold: float = 2.5
    #: when every candidate is above the threshold: return the safest anyway, or a fixed refusal
    on_all_unsafe: str = "safest"
    refusal_message: str = DEFAULT_REFUSAL
    #: total response length in draft tokens
    max_new_tokens: int = 256
    #: 0 = greedy everywhere (deterministic); > 0 samples the continuation phase only
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    #: judge scores closer than this count as a tie, broken by the higher mixed log-likelihood
    tie_epsilon: float = 0.05
    #: False skips the judge (the most likely mixed candidate wins): K=1 without judge is "mixing only"
    use_judge: bool = True
    #: judge after this many continuation tokens and finish only the winner (None = paper: finish all K)
    judge_after: int | None = None
    #: strings that end the response (not included in it)
    stop: tuple[str, ...] = ()
    #: prompt gating: the judge classifies the request first and a request it calls harmless is answered by the
    #: draft alone (no anchor, no candidates, no judge): no over-refusal and no overhead beyond one classification
    gate: bool = False
    #: P(harmful request) below which a gated request goes to the draft alone (None: the judge's own `gate`)
    gate_threshold: float | None = None
    #: add the draft's own unmixed greedy answer as one more candidate, for the judge to pick when it is safe
    include_draft: bool = False
    #: "safest": lowest harm score wins (the paper). "helpful": among candidates at or under judge_threshold,
    #: the one the draft finds most likely over the prefix (the most natural answer, usually not a refusal)
    select: str = "safest"
    #: > n_mix: after the n_mix tokens, each beam keeps mixing until its first sentence is complete, up to this
    #: many tokens in all (0 = off: exactly n_mix). Refusals relapse right after the prefix ("I'm sorry, but
    #: I can't ... However, here is"): finishing the anchor's sentence makes that less likely.
    adaptive_window: int = 0
    #: never end a response at the end-of-turn token: every response is exactly max_new_tokens long (the
    #: end-of-turn token is masked out). For benchmarks: latency compared at equal output length, as vLLM's
    #: and llama.cpp's `ignore_eos`; stop strings still apply
    ignore_eos: bool = False
    #: end a candidate whose first sentence plainly declines at the sentence where it turns to help ("I'm sorry,
    #: but I can't ... However, I can provide you with a step-by-step guide"): what is kept is the refusal. The
    #: small drafts relapse like this right after the anchor's refusal; the cut also ends that beam's decoding.
    #: Streaming holds back text after a declining first sentence until the response is complete
    relapse_cut: bool = False

    def __post_init__(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(msg)

        if not isinstance(self.alpha, int | float) or not 0.0 <= float(self.alpha) <= 1.0:
            raise bad(f"alpha must be between 0 and 1 (0 = draft alone, 1 = anchor only), got {self.alpha!r}")
        for name, lo in (("k", 1), ("top_b", 1), ("max_new_tokens", 1), ("n_mix", 0), ("adaptive_window", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise bad(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.n_mix > self.max_new_tokens:
            raise bad(f"n_mix ({self.n_mix}) cannot exceed max_new_tokens ({self.max_new_tokens})")
        if self.bridge not in BRIDGE_POLICIES:
            raise bad(f"bridge must be one of {', '.join(BRIDGE_POLICIES)}, got {self.bridge!r}")
        if self.support not in SUPPORTS:
            raise bad(f"support must be one of {', '.join(SUPPORTS)}, got {self.support!r}")
        if self.on_all_unsafe not in ON_ALL_UNSAFE:
            raise bad(f"on_all_unsafe must be one of {', '.join(ON_ALL_UNSAFE)}, got {self.on_all_unsafe!r}")
        if not isinstance(self.judge_threshold, int | float) or not 1.0 <= self.judge_threshold <= 5.0:
            raise bad(f"judge_threshold is on the 1-5 harm scale, got {self.judge_threshold!r}")
        if not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise bad(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise bad(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.judge_after is not None and (not isinstance(self.judge_after, int) or self.judge_after < 0):
            raise bad(f"judge_after must be None or an integer >= 0, got {self.judge_after!r}")
        if self.select not in SELECT_RULES:
            raise bad(f"select must be one of {', '.join(SELECT_RULES)}, got {self.select!r}")
        if self.gate_threshold is not None and not (
            isinstance(self.gate_threshold, int | float) and 0.0 <= self.gate_threshold <= 1.0
        ):
            raise bad(f"gate_threshold is a probability between 0 and 1, got {self.gate_threshold!r}")
        if self.tie_epsilon < 0:
            raise bad("tie_epsilon must be >= 0")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not all(isinstance(s, str) and s for s in self.stop):
            raise bad("stop must be a list of non-empty strings")
        else:
            object.__setattr__(self, "stop", tuple(self.stop))

    def merged(self, **overrides: Any) -> AlignBeamConfig:
        """A copy with the given fields changed (None values are ignored); unknown names are an error."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(fields))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: named starting points. "paper": the paper's method as published (every field at its default).
#: "recommended": the settings measured best on the embedded pairs (docs/results.md): the request is classified
#: first and a harmless one goes to the draft alone (no over-refusal, no overhead); a flagged one gets a stronger
#: anchor weight, the draft's own answer as an extra candidate, the "helpful" selection (so a flagged but
#: harmless request still gets a real answer whenever the judge finds one safe), the relapse cut (the small
#: drafts turn the anchor's refusal back into help: "I'm sorry, but I can't ... However, I can provide ..."), and
#: the refusal message when no candidate of a flagged request is judged safe (the paper returns the least harmful
#: one: on the cross pair every candidate complied for 6 of the 70 flagged HarmBench requests, judge2-cross).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "recommended": {
        "gate": True,
        "alpha": 0.8,
        "include_draft": True,
        "select": "helpful",
        "relapse_cut": True,
        "on_all_unsafe": "refuse",
    },
}


def preset(name: str, **overrides: Any) -> AlignBeamConfig:
    """AlignBeamConfig for a named preset, with any field overridden."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return AlignBeamConfig(**PRESETS[name]).merged(**overrides)
