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
from pathlib import Path
from typing import Annotated, Any

import typer

from alignbeam.api import JUDGE_METHODS
from alignbeam.config import DEFAULT_PRESET, PRESETS, Knob, knobs, preset
from alignbeam.configfile import load_config
from alignbeam.engines import ENGINES
from alignbeam.modelspec import ModelOptions


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


def extend(f: Callable[..., Any], drop: str, extra: list[inspect.Parameter], pack: Callable[[dict], Any]):
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
    return extend(f, "knobs", [_knob_parameter(kn) for kn in knobs()], _pack_knobs)


def check_knobs(preset_name: str | None, values: dict[str, Any]) -> None:
    """Validate the knobs against the config before any model loads (seconds saved on a typo)."""
    preset(preset_name or DEFAULT_PRESET, **values)


# -- model options ---------------------------------------------------------------------------------------------
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


def use_config_file(ctx: typer.Context, value: Path | None) -> Path | None:
    """`--config FILE`: the file's settings become the command's defaults (flags given still win), read before
    any other option (click's default_map)."""
    if value is not None:
        deployment = load_config(value)
        ctx.default_map = {**(ctx.default_map or {}), **deployment.flat()}
    return value


def _config_parameter() -> inspect.Parameter:
    option = typer.Option(
        "--config",
        help="A deployment config file (YAML: models, knobs, server; docs/deployment.md); flags override it",
        is_eager=True,
        callback=use_config_file,
        rich_help_panel="Models",
    )
    return inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Path | None, option]
    )


def with_models(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the model options and `--config`; the command gets `models`: a `ModelOptions`."""

    def pack(values: dict[str, Any]) -> ModelOptions:
        return ModelOptions(**{k: v for k, v in values.items() if k != "config"})

    return extend(f, "models", [_config_parameter(), *_model_parameters()], pack)
