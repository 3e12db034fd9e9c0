"""The knob list the playground shows as controls (`GET /ui/knobs.json`), derived from `alignbeam.config.knobs()`.

The page builds one control per knob a request may set, with the knob's help line, from this list rather than
from a copy in JavaScript: a new knob appears on the page with its help as soon as it is in `AlignBeamConfig`,
and the defaults shown are the ones this server runs with (its start-up knobs, not the paper's).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from alignbeam.config import BRIDGE_POLICIES, GROUPS, ON_ALL_UNSAFE, PRESETS, SELECT_RULES, SUPPORTS, Knob, knobs
from alignbeam.config import preset as preset_config
from alignbeam.server.state import ServerState

#: the knobs whose value is one of a fixed set of words: the page shows a drop-down instead of a text box
CHOICES: dict[str, tuple[str, ...]] = {
    "bridge": BRIDGE_POLICIES,
    "support": SUPPORTS,
    "on_all_unsafe": ON_ALL_UNSAFE,
    "select": SELECT_RULES,
}


def control_of(kn: Knob) -> tuple[str, bool]:
    """The control a knob needs ("float", "int", "bool", "choice", "str" or "list") and whether it may be left
    empty (an optional knob: empty sends nothing, so the server's default applies)."""
    t = kn.type
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is tuple:
        return "list", False
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else t
    if base is bool:
        return "bool", optional
    if base in (int, float):
        return base.__name__, optional
    return ("choice" if kn.name in CHOICES else "str"), optional


def field_of(kn: Knob) -> str:
    """The request body field that carries a knob: OpenAI's own name where it has one (max_new_tokens travels
    as max_tokens), else the knob's name."""
    return kn.openai or kn.name


def request_knobs() -> tuple[Knob, ...]:
    """The knobs a request may set, by group: the page's controls."""
    return tuple(kn for kn in knobs() if kn.request)


def knob_entry(kn: Knob, default: Any) -> dict[str, Any]:
    """One control: what the page needs to draw it, send it and explain it."""
    control, optional = control_of(kn)
    entry = {
        "name": kn.name,
        "field": field_of(kn),
        "group": kn.group,
        "control": control,
        "optional": optional,
        "default": list(default) if isinstance(default, tuple) else default,
        "help": kn.help,
    }
    if control == "choice":
        entry["choices"] = list(CHOICES[kn.name])
    return entry


def preset_values(name: str) -> dict[str, Any]:
    """A preset's value of every request knob, by request field; the response length is left out, so choosing
    a preset on the page changes what the method does, not how long the answers are."""
    cfg = preset_config(name)
    return {
        field_of(kn): (list(v) if isinstance(v := getattr(cfg, kn.name), tuple) else v)
        for kn in request_knobs()
        if kn.name != "max_new_tokens"
    }


def knobs_document(state: ServerState, policy_knobs: dict[str, Any], auth: bool) -> dict[str, Any]:
    """The body of /ui/knobs.json: the controls with the defaults the page's requests get (the server's, under
    the key's policy: `policy_knobs`), the presets, and the limits the page must respect (max_tokens above the
    server's limit is a 400). auth: whether the server wants a key, so the page offers to forget it."""
    cfg = state.ab.config.merged(**policy_knobs)
    defaults = {kn.name: getattr(cfg, kn.name) for kn in request_knobs()}
    defaults["max_new_tokens"] = state.limits.default_max_tokens  # what a request without max_tokens gets
    return {
        "model": state.served_model_name,
        "groups": list(GROUPS),
        "knobs": [knob_entry(kn, defaults[kn.name]) for kn in request_knobs()],
        "presets": {name: preset_values(name) for name in PRESETS},
        "max_tokens_limit": state.limits.max_tokens,
        "auth": auth,
    }
