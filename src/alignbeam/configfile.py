"""The deployment config file: one YAML file with the models, the knobs, the server's settings and, once
`alignbeam calibrate` has chosen one, the operating point.

    models:                       # ModelOptions: which draft, anchor and judge, on which engine
      draft: http://gpu-1:8000/v1#specialist
      anchor: qwen2.5-coder-1.5b
    knobs:                        # AlignBeamConfig fields (any of the README's knob table)
      gate_threshold: 0.3
    server:                       # ServerSettings: host, port, api_key, limits
      port: 8080
      api_key: ${ALIGNBEAM_API_KEY}
    calibration: {...}            # written by `alignbeam calibrate`: what the operating point promises (not read)
    policies:                     # per API key (tenant): its own operating point and judge policy text
      clinic: {key: ${CLINIC_KEY}, knobs: {gate_threshold: 0.3}, judge_policy: "..."}
      default: {knobs: {...}}     # every other authorised request

Its schema is derived from the classes that define each section, so a new knob or server setting is valid in
the file with no edit here. Every mistake is one line that names the key: an unknown key with the closest valid
one, a value of the wrong type, a `${VAR}` whose environment variable is not set. Command-line flags override the
file (the CLI passes the file's values as defaults).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignbeam.config import knobs, preset
from alignbeam.errors import ConfigError
from alignbeam.modelspec import ModelOptions

#: sections whose keys are checked; `calibration` is kept as written (a record of what calibrate measured)
SECTIONS = ("models", "knobs", "server")
#: what one policy of the `policies` section holds
POLICY_KEYS = ("key", "knobs", "judge_policy")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Deployment:
    """A parsed, validated config file."""

    models: dict[str, Any] = field(default_factory=dict)
    knobs: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def model_options(self) -> ModelOptions:
        return ModelOptions(**self.models)

    def server_policies(self) -> tuple[Any, ...]:
        """The `policies` section as the server's Policy objects."""
        from alignbeam.server.policies import Policy

        return tuple(Policy(name, p["key"], p["knobs"], p["judge_policy"]) for name, p in self.policies.items())

    def flat(self) -> dict[str, Any]:
        """Every setting by its CLI parameter name (models, knobs and server settings share no name)."""
        return {**self.models, **self.knobs, **self.server}

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in (*SECTIONS, "calibration") if getattr(self, k)}
        return _plain(out)


def schema() -> dict[str, dict[str, Any]]:
    """section -> key -> its type annotation, from the classes that define each section."""
    from alignbeam.server.settings import ServerSettings

    return {
        "models": typing.get_type_hints(ModelOptions),
        "knobs": {kn.name: kn.type for kn in knobs()},
        "server": typing.get_type_hints(ServerSettings),
    }


def load_config(path: str | Path) -> Deployment:
    """Read and validate a config file; raises ConfigError (one line naming the key) on any mistake."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1})" if where else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    return parse_config(raw or {}, path)


def parse_config(raw: Any, path: Path | None = None) -> Deployment:
    """Validate an already-parsed config (a dict of sections)."""
    where = f"{path}: " if path else ""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}the config file must be a mapping of sections ({', '.join(SECTIONS)})")
    kinds = schema()
    out = Deployment(path=path)
    for section, body in raw.items():
        if section == "calibration":
            out.calibration = dict(body or {})
            continue
        if section == "policies":
            out.policies = _policies(body, kinds["knobs"], where)
            continue
        if section not in kinds:
            valid = [*SECTIONS, "calibration", "policies"]
            raise ConfigError(f"{where}unknown section {section!r}{_closest(section, valid)}")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}section {section!r} must be a mapping of key: value")
        values = {}
        for key, value in body.items():
            if key not in kinds[section]:
                raise ConfigError(f"{where}unknown key {section}.{key}{_closest(str(key), list(kinds[section]))}")
            name = f"{section}.{key}"
            values[key] = _typed(name, _expand(f"{where}{name}", value), kinds[section][key], where)
        setattr(out, section, values)
    _check_knobs(out, where)
    return out


def _policies(body: Any, knob_types: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """The `policies` section: name -> {key, knobs, judge_policy}; every policy but `default` needs its key."""
    if not isinstance(body, dict):
        raise ConfigError(f"{where}section 'policies' must map each policy's name to its settings")
    out: dict[str, dict[str, Any]] = {}
    for name, p in body.items():
        if not isinstance(p, dict):
            raise ConfigError(f"{where}policies.{name} must be a mapping (key, knobs, judge_policy)")
        for k in p:
            if k not in POLICY_KEYS:
                raise ConfigError(f"{where}unknown key policies.{name}.{k}{_closest(str(k), list(POLICY_KEYS))}")
        key = _typed(f"policies.{name}.key", _expand(f"{where}policies.{name}.key", p.get("key")), str | None, where)
        if key is None and name != "default":
            raise ConfigError(f"{where}policies.{name} needs a key (only the policy named default has none)")
        knobs_ = p.get("knobs") or {}
        if not isinstance(knobs_, dict):
            raise ConfigError(f"{where}policies.{name}.knobs must be a mapping of knob: value")
        typed = {}
        for k, v in knobs_.items():
            if k not in knob_types:
                raise ConfigError(f"{where}unknown knob policies.{name}.knobs.{k}{_closest(str(k), list(knob_types))}")
            typed[k] = _typed(f"policies.{name}.knobs.{k}", v, knob_types[k], where)
        text = _typed(f"policies.{name}.judge_policy", p.get("judge_policy"), str | None, where)
        out[str(name)] = {"key": key, "knobs": typed, "judge_policy": text}
    keys = [p["key"] for p in out.values() if p["key"] is not None]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{where}two policies share one key: give each tenant its own")
    return out


def _check_knobs(d: Deployment, where: str) -> None:
    """The knobs as the library will read them: ranges and combinations, with the config's own messages."""
    base = d.models.get("preset") or "recommended"
    try:
        cfg = preset(base, **d.knobs)
    except ConfigError as e:
        raise ConfigError(f"{where}knobs: {e}") from None
    for name, p in d.policies.items():
        try:
            cfg.merged(**p["knobs"])
        except ConfigError as e:
            raise ConfigError(f"{where}policies.{name}.knobs: {e}") from None


def _closest(name: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    return f": did you mean {near[0]!r}?" if near else f" (valid: {', '.join(valid)})"


def _expand(key: str, value: Any) -> Any:
    """`${VAR}` in a string is the environment variable's value; a variable that is not set is an error."""
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise ConfigError(f"{key}: the environment variable {m.group(1)} is not set (export it, or edit the file)")
        return os.environ[m.group(1)]

    return _ENV.sub(sub, value)


def _typed(key: str, value: Any, annotation: Any, where: str) -> Any:
    """The value as the annotation wants it; a number where a string is wanted and the like is an error."""
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if value is None and type(None) in options:
        return None
    for t in (o for o in options if o is not type(None)):
        ok, converted = _convert(value, t)
        if ok:
            return converted
    names = " or ".join(_type_name(o) for o in options)
    raise ConfigError(f"{where}{key} must be {names}, got {value!r}")


def _convert(value: Any, t: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(t)
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        ok = isinstance(items, list | tuple) and all(isinstance(v, str) for v in items)
        return ok, tuple(items) if ok else None
    if t is bool:
        return isinstance(value, bool), value
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if t is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if t is str:
        return isinstance(value, str), value
    if t is Path:
        return isinstance(value, str), Path(value) if isinstance(value, str) else None
    return False, None


def _is_union(t: Any) -> bool:
    return isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union


def _type_name(t: Any) -> str:
    if t is type(None):
        return "null"
    if typing.get_origin(t) is tuple:
        return "a list of strings"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", Path: "a path"}.get(t, str(t))


def _plain(x: Any) -> Any:
    """Values YAML can write: tuples as lists, paths as strings."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return str(x) if isinstance(x, Path) else x


def dump(d: dict[str, Any]) -> str:
    return yaml.safe_dump(_plain(d), sort_keys=False, allow_unicode=True)


def merged(d: Deployment, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every setting with its value in force: the classes' defaults, then the file, then `overrides` (flags), by
    section (`alignbeam config show`). Secrets are masked."""
    from alignbeam.server.settings import ServerSettings

    over = overrides or {}
    models = {**dataclasses.asdict(ModelOptions()), **d.models}
    knob_values = preset(models.get("preset") or "recommended", **d.knobs).to_dict()
    server = {**dataclasses.asdict(ServerSettings()), **d.server}
    for section in (models, knob_values, server):
        section.update({k: v for k, v in over.items() if k in section and v is not None})
    if server.get("api_key"):
        server["api_key"] = "***"
    out = {"models": models, "knobs": knob_values, "server": server}
    if d.policies:
        out["policies"] = {n: {**p, "key": "***" if p["key"] else None} for n, p in d.policies.items()}
    if d.calibration:
        out["calibration"] = d.calibration
    return out
