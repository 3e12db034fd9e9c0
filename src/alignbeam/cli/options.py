"""The options every command shares, derived from where each fact lives.

Knob options come from `AlignBeamConfig` (`alignbeam.config.knobs()`): its fields, types, help texts and short
aliases; a new config field is a new CLI option with no edit here. Model options (which draft, anchor and judge,
on which engine) are the same for every command that loads models, with the API's defaults.

Typer reads a command's options from its signature, so `with_knobs` / `with_models` extend the signature of the
command they decorate and hand the command one dict of knobs / one `ModelOptions` instead of dozens of arguments.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from alignbeam.api import DEFAULT_ANCHOR, DEFAULT_DRAFT, JUDGE_METHODS
from alignbeam.config import DEFAULT_PRESET, PRESETS, Knob, knobs, preset
from alignbeam.engines import ENGINES
from alignbeam.errors import AlignBeamError


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return "none" if not value else ", ".join(value)
    return "None" if value is None else str(value)


def _option_type(t: Any) -> Any:
    """The CLI type of a config field: `X | None` is X (unset = the config's default), a tuple is a list."""
    args = typing.get_args(t)
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        t = next(a for a in args if a is not type(None))
    if typing.get_origin(t) is tuple:
        return list[str]
    return t


def _knob_parameter(kn: Knob) -> inspect.Parameter:
    base = _option_type(kn.type)
    dashed = kn.option[2:]
    names = [f"{kn.option}/--no-{dashed}"] if base is bool else [kn.option]
    if kn.short:
        names.append(kn.short)
    help_ = f"{kn.help} (default {_show_default(kn.default)})"
    annotation = Annotated[
        base | None, typer.Option(*names, help=help_, show_default=False, rich_help_panel=f"Knobs: {kn.group}")
    ]
    return inspect.Parameter(kn.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _extend(f: Callable[..., Any], drop: str, extra: list[inspect.Parameter], pack: Callable[[dict], Any]):
    """A wrapper of `f` whose signature replaces parameter `drop` by `extra`; `pack` turns their values into the
    one argument `f` receives as `drop`."""
    sig = inspect.signature(f, eval_str=True)
    kept = [p for p in sig.parameters.values() if p.name != drop]
    names = [p.name for p in extra]

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {n: kwargs.pop(n) for n in names}
        return f(*args, **{drop: pack(values)}, **kwargs)

    params = kept + extra
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    wrapper.__signature__ = sig.replace(parameters=positional + keyword)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _pack_knobs(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if v is not None}
    if "stop" in out:
        out["stop"] = tuple(out["stop"]) or None
        if out["stop"] is None:
            del out["stop"]
    return out


def with_knobs(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds one option per config field; the command gets `knobs`: the ones the user set, by field name."""
    return _extend(f, "knobs", [_knob_parameter(kn) for kn in knobs()], _pack_knobs)


def check_knobs(preset_name: str | None, values: dict[str, Any]) -> None:
    """Validate the knobs against the config before any model loads (seconds saved on a typo)."""
    preset(preset_name or DEFAULT_PRESET, **values)


# -- model options ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelOptions:
    """Which models a command loads, and how: the same options on every command that loads models."""

    draft: str = DEFAULT_DRAFT
    anchor: str = DEFAULT_ANCHOR
    judge: str = "anchor"
    judge_method: str = "safety"
    judge_url: str | None = None
    policy: Path | None = None
    engine: str = "auto"
    n_threads: int | None = None
    preset: str | None = None

    def build(self, console: Any = None, **config_overrides: Any) -> Any:
        """The AlignBeam pipeline these options describe (config_overrides: its default knobs)."""
        import os

        from alignbeam.api import AlignBeam
        from alignbeam.engines import load_model
        from alignbeam.method.guard import GUARD_FORMATS, EndpointJudge, GuardJudge

        if self.policy is not None:
            if self.judge_method not in GUARD_FORMATS:
                raise AlignBeamError(
                    f"--policy applies to the guard formats ({', '.join(GUARD_FORMATS)}): add --judge-method"
                )
            if not self.policy.is_file():
                raise AlignBeamError(f"--policy {self.policy}: no such file")
        # llama.cpp's worker threads spin while they wait: with as many threads as cores on a host where something
        # else runs, every token can take 100x longer, so the thread count is an option of every command.
        opts = {} if self.n_threads is None else {"n_threads": self.n_threads}

        def load(name: str) -> Any:
            return load_model(name, engine=self.engine, **opts) if opts else name

        status = console.status(f"loading {self.draft} + {self.anchor} ({self.engine} engine)...") if console else None
        with status or _nothing():
            judge: Any
            if self.judge_url:
                named = self.judge not in ("anchor", "none")
                key = os.environ.get("ALIGNBEAM_JUDGE_API_KEY")
                judge = EndpointJudge(self.judge_url, model=self.judge if named else "default", api_key=key)
            elif self.policy is not None:
                judge_model = load_model(
                    self.anchor if self.judge == "anchor" else self.judge, engine=self.engine, **opts
                )
                judge = GuardJudge(judge_model, format=self.judge_method, policy=self.policy.read_text())
            elif self.judge in ("none", "anchor"):
                judge = None if self.judge == "none" else "anchor"
            else:
                judge = load(self.judge)
            return AlignBeam(
                draft=load(self.draft),
                anchor=load(self.anchor),
                judge=judge,
                engine=self.engine,
                judge_method=self.judge_method,
                preset=self.preset,
                **config_overrides,
            )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _model_parameters() -> list[inspect.Parameter]:
    def opt(name: str, default: Any, t: Any, *flags: str, help: str) -> inspect.Parameter:
        o = (
            typer.Option(*flags, help=help, rich_help_panel="Models")
            if flags
            else typer.Option(help=help, rich_help_panel="Models")
        )
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[t, o])

    d = ModelOptions()
    return [
        opt(
            "draft",
            d.draft,
            str,
            help="Draft (deployed specialist) model: embedded name, .gguf, HF folder or id, or a server URL "
            "(http://host:port/v1#served-name: docs/deployment.md)",
        ),
        opt("anchor", d.anchor, str, help="Safety-aligned anchor model"),
        opt("judge", d.judge, str, help="Judge model; 'anchor' reuses the anchor, 'none' disables judging"),
        opt(
            "judge_method",
            d.judge_method,
            str,
            help=f"{' | '.join(JUDGE_METHODS)}: safety (request harm x compliance), rubric (the paper's 1-5), or a "
            "guard model's prompt format",
        ),
        opt(
            "judge_url",
            d.judge_url,
            str | None,
            help="OpenAI-compatible judge endpoint (…/v1); --judge names the model there",
        ),
        opt("policy", d.policy, Path | None, help="Policy text file for the guard formats"),
        opt("engine", d.engine, str, help=" | ".join(ENGINES)),
        opt(
            "n_threads",
            d.n_threads,
            int | None,
            help="CPU threads per model (llamacpp engine; default: every core but one)",
        ),
        opt(
            "preset",
            d.preset,
            str | None,
            help=f"{' | '.join(PRESETS)}: the starting set of knobs (default {DEFAULT_PRESET}; paper: as published)",
        ),
    ]


def with_models(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the model options; the command gets `models`: a `ModelOptions`."""
    return _extend(f, "models", _model_parameters(), lambda values: ModelOptions(**values))
