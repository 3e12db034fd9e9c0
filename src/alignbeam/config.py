"""AlignBeamConfig: every knob of the method with the paper's default, validated in one place.

A config is immutable; per-call and per-request overrides make a new one with `merged()`, so a server can
serve requests with different alpha/N/K from one AlignBeam object without any shared mutable state.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from alignbeam.errors import ConfigError

BRIDGE_POLICIES = ("drop", "first", "exact")
SUPPORTS = ("union", "anchor")
ON_ALL_UNSAFE = ("safest", "refuse")
SELECT_RULES = ("safest", "helpful")
DEFAULT_REFUSAL = "I'm sorry, but I can't help with that request."
#: the most candidates a request may ask for: an engine without a fixed slot count (a serving engine) cannot
#: refuse a huge k by its slots, and no selection gains from hundreds of candidates
MAX_K = 64


#: the knob groups, in the order the CLI's help and the README's table show them
GROUPS = ("mixing", "gate", "selection", "sampling")


def knob(
    default: Any,
    help: str,
    *,
    group: str,
    request: bool = True,
    short: str | None = None,
    openai: str | None = None,
) -> Any:
    """A config field with what every outer layer needs to know about it, so each derives it from here.

    help: one line for the CLI, the server's error messages and the README's knob table. group: which of GROUPS it
    belongs to (mixing: the anchor's steering and the candidates; gate: which requests are steered; selection: the
    judge and the choice; sampling: length, randomness and stops). request: whether a server request may set it
    per request (False: a deployment choice, set when the server starts). short: the CLI's one-letter alias.
    openai: the name of the OpenAI request field that carries it, where OpenAI has one.
    """
    if group not in GROUPS:
        raise ValueError(f"knob group {group!r} is not one of {GROUPS}")
    meta = {"help": help, "group": group, "request": request, "short": short, "openai": openai}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class AlignBeamConfig:
    alpha: float = knob(
        0.5, "weight of the anchor in the mix; 0 = the draft alone, 1 = the anchor decides the prefix", group="mixing"
    )
    n_mix: int = knob(
        6,
        "response tokens generated from the mix (the safety prefix, N); the rest is the draft alone",
        short="-N",
        group="mixing",
    )
    top_b: int = knob(50, "anchor tokens translated into the draft's vocabulary per mixed step (B)", group="mixing")
    k: int = knob(
        3,
        "candidates (K), with distinct first tokens: more chances of a safe one, more compute",
        short="-K",
        group="mixing",
    )
    bridge: str = knob(
        "drop",
        "an anchor token whose text needs several draft tokens: `drop` it, map it to the `first`, or `exact` "
        "(also drops partial characters)",
        group="mixing",
    )
    support: str = knob(
        "union",
        "`union`: mix over the whole draft vocabulary; `anchor`: only the anchor's translated tokens",
        group="mixing",
    )
    judge_threshold: float = knob(
        2.5, "a candidate whose 1-5 judge score is above this counts as unsafe", group="selection"
    )
    on_all_unsafe: str = knob(
        "safest",
        "when every candidate is unsafe: return the `safest` anyway, or `refuse` with `refusal_message`",
        group="selection",
    )
    refusal_message: str = knob(
        DEFAULT_REFUSAL, "the text `on_all_unsafe=refuse` answers with", request=False, group="selection"
    )
    max_new_tokens: int = knob(
        256, "response length in draft tokens", short="-n", openai="max_tokens", group="sampling"
    )
    temperature: float = knob(
        0.0,
        "0 = greedy everywhere (deterministic); > 0 samples the continuation phase only",
        openai="temperature",
        group="sampling",
    )
    top_p: float = knob(
        1.0, "nucleus sampling of the continuation (with temperature > 0)", openai="top_p", group="sampling"
    )
    seed: int | None = knob(None, "sampling seed (None: a fresh one)", openai="seed", group="sampling")
    tie_epsilon: float = knob(
        0.05,
        "judge scores closer than this are a tie, broken by the higher mixed log-likelihood",
        request=False,
        group="selection",
    )
    use_judge: bool = knob(
        True,
        "False skips the judge: the most likely mixed candidate wins (K=1 without judge: mixing only)",
        request=False,
        group="selection",
    )
    judge_after: int | None = knob(
        None,
        "judge after this many continuation tokens and finish only the winner (None: finish all K, the paper)",
        group="selection",
    )
    stop: tuple[str, ...] = knob(
        (), "strings that end the response (not included in it)", openai="stop", group="sampling"
    )
    gate: bool = knob(
        False,
        "prompt gating: the judge classifies the request first; one it calls harmless (P(harmful) < "
        "`gate_threshold`) is answered by the draft alone: no anchor, no candidates, no judge",
        group="gate",
    )
    gate_threshold: float | None = knob(
        None,
        "P(harmful request) below which a gated request goes to the draft alone (None: the judge's own, 0.5); "
        "below the judge's own it is a stricter setting: a flagged request's candidates are also judged as if "
        "this threshold were the classifier's midpoint, so more of them count as unsafe (more refusal, more "
        "over-refusal)",
        group="gate",
    )
    anchor_check: int = knob(
        0,
        "with `gate`: a request the classifier passes but is not sure of (P(harmful) at or above the judge's "
        "`read_gate`, 0.05) is first answered by the anchor alone for up to this many tokens; if that opening "
        "declines, the anchor's refusal stands (one mixed candidate, no judge; the refusal message if that "
        "candidate does not decline) instead of the draft answering alone (0: off)",
        group="gate",
    )
    include_draft: bool = knob(False, "the draft's own unmixed greedy answer joins the candidates", group="mixing")
    select: str = knob(
        "safest",
        "`safest`: lowest harm wins, near-ties to the higher mixed likelihood (the paper); `helpful`: among "
        "candidates at or under `judge_threshold`, the one the draft finds most likely over the prefix",
        group="selection",
    )
    ignore_eos: bool = knob(
        False,
        "never stop at end-of-turn: every response is exactly `max_new_tokens` long (equal-length benchmarks, as "
        "vLLM's `ignore_eos`); stop strings still apply",
        group="sampling",
    )
    relapse_cut: bool = knob(
        False,
        "a candidate whose first sentence declines is ended where it turns to help (\"I'm sorry, but I can't ... "
        'However, here is"): the refusal is kept; streaming holds back text after a declining first sentence',
        group="mixing",
    )

    def __post_init__(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(msg)

        if not isinstance(self.alpha, int | float) or not 0.0 <= float(self.alpha) <= 1.0:
            raise bad(f"alpha must be between 0 and 1 (0 = draft alone, 1 = anchor only), got {self.alpha!r}")
        for name, lo in (
            ("k", 1),
            ("top_b", 1),
            ("max_new_tokens", 1),
            ("n_mix", 0),
            ("anchor_check", 0),
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise bad(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.k > MAX_K:
            raise bad(f"k must be at most {MAX_K} (candidates beyond a few dozen add cost, not safety), got {self.k!r}")
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
        if (
            isinstance(self.temperature, bool)
            or not isinstance(self.temperature, int | float)
            or not 0 <= self.temperature < float("inf")  # NaN fails the comparison too
        ):
            raise bad(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise bad(f"seed must be an integer (any: it is mapped onto numpy's seed range) or None, got {self.seed!r}")
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
#: "recommended" (the default, DEFAULT_PRESET): the settings measured best on the embedded pairs (docs/results.md):
#: the request is classified first and a harmless one goes to the draft alone (no over-refusal, no overhead),
#: unless the classifier is unsure and the anchor's greedy opening, answering it, declines (anchor_check: rewordings
#: the classifier misses, docs/results.md#generalization; exploring 4 openings instead refused fewer harmful
#: rewordings and more harmless ones, docs/results.md#generalization-greedy-opening-against-the-tree); a flagged
#: one gets a stronger anchor weight, the draft's own answer as an extra candidate, the "helpful" selection (so a
#: flagged but harmless request still gets a real answer whenever the judge finds one safe), the relapse cut (the small
#: drafts turn the anchor's refusal back into help: "I'm sorry, but I can't ... However, I can provide ..."), and
#: the refusal message when no candidate of a flagged request is judged safe (the paper returns the least harmful
#: one: on the cross pair every candidate complied for 6 of the 70 flagged HarmBench requests, judge2-cross).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "recommended": {
        "gate": True,
        "anchor_check": 12,
        "alpha": 0.8,
        "include_draft": True,
        "select": "helpful",
        "relapse_cut": True,
        "on_all_unsafe": "refuse",
    },
}


#: the preset the library, the CLI and the server start from when none is named (safe by default); the paper's
#: method as published is `preset="paper"` (or `AlignBeamConfig()`, whose field defaults are the paper's)
DEFAULT_PRESET = "recommended"


def preset(name: str, **overrides: Any) -> AlignBeamConfig:
    """AlignBeamConfig for a named preset, with any field overridden."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return AlignBeamConfig(**PRESETS[name]).merged(**overrides)


# -- the knob list, derived: the CLI options, the server's request fields and the README table read it from here --
@dataclass(frozen=True)
class Knob:
    """One config field as the outer layers see it."""

    name: str
    type: Any  # the field's annotation, resolved: float, int, str, bool, int | None, tuple[str, ...], ...
    default: Any
    help: str
    group: str  # one of GROUPS
    request: bool  # a server request may set it
    short: str | None  # CLI alias
    openai: str | None  # the OpenAI request field that carries it (max_tokens, temperature, ...), if any

    @property
    def option(self) -> str:
        """The CLI option: --n-mix for n_mix."""
        return "--" + self.name.replace("_", "-")


def knobs() -> tuple[Knob, ...]:
    """Every AlignBeamConfig field with its help text and where it may be set, by group (GROUPS), and within a
    group in declaration order."""
    hints = typing.get_type_hints(AlignBeamConfig)
    return tuple(
        Knob(
            f.name,
            hints[f.name],
            f.default,
            f.metadata["help"],
            f.metadata["group"],
            f.metadata["request"],
            f.metadata["short"],
            f.metadata["openai"],
        )
        for f in sorted(dataclasses.fields(AlignBeamConfig), key=lambda f: GROUPS.index(f.metadata["group"]))
    )


def _show(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return "()" if not value else ", ".join(value)
    if isinstance(value, str):
        return value if len(value) < 24 else f'"{value[:20]}..."'
    return str(value)


def markdown_table() -> str:
    """The README's knob table (between its `knobs:begin` / `knobs:end` markers; a unit test compares them): each
    knob's value in the default preset, in the paper's method where it differs, and where it may be set."""
    default = preset(DEFAULT_PRESET)
    rows = [
        f"| group | knob | default ({DEFAULT_PRESET}) | paper | per request | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for kn in knobs():
        where = f"as `{kn.openai}`" if kn.openai else ("yes" if kn.request else "no (server start)")
        short = f" ({kn.short})" if kn.short else ""
        ours = getattr(default, kn.name)
        paper = "" if ours == kn.default else _show(kn.default)
        rows.append(f"| {kn.group} | `{kn.name}`{short} | {_show(ours)} | {paper} | {where} | {kn.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m alignbeam.config --markdown   (prints the README's knob table)")
    print(markdown_table())
