"""Which models to load, and how: the model half of a deployment, shared by the CLI, the config file and
`AlignBeam.from_config`.

The same options describe every command that loads models (the CLI derives its --draft, --anchor, ... options
from these fields) and the `models:` section of a deployment config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbeam.api import DEFAULT_ANCHOR, DEFAULT_DRAFT
from alignbeam.errors import AlignBeamError


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
