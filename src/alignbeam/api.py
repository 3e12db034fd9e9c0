"""AlignBeam: the front door. Loads the draft, the anchor and the judge, merges each call's knobs into the
config, hands the request to the method's pipeline (method/pipeline.py) and returns its Result.

Models are loaded once (and shared: the anchor doubles as the judge without a second copy); every call merges
its overrides into an immutable config, so one object serves calls with different knobs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from alignbeam.config import DEFAULT_PRESET, AlignBeamConfig
from alignbeam.config import preset as preset_config
from alignbeam.engines import Model, load_model
from alignbeam.errors import AlignBeamError, ConfigError
from alignbeam.method.bridge import Bridge
from alignbeam.method.guard import GUARD_FORMATS, GuardJudge
from alignbeam.method.judge import JUDGES, Judge
from alignbeam.method.pipeline import Pipeline
from alignbeam.method.request import Prompt, Request, Result, to_messages
from alignbeam.systems import answer_alone

__all__ = ["DEFAULT_ANCHOR", "DEFAULT_DRAFT", "JUDGE_METHODS", "AlignBeam", "Prompt", "Result", "to_messages"]

DEFAULT_DRAFT = "smollm2-135m"
DEFAULT_ANCHOR = "qwen2.5-coder-1.5b"

#: judge_method -> judge factory taking the loaded judge model: the LLM judges of judge.py, and the guard-model
#: prompt formats of guard.py (for a Llama Guard / ShieldGemma / Granite Guardian model loaded as the judge)
JUDGE_METHODS: dict[str, Callable[[Model], Judge]] = {
    **JUDGES,
    **{name: functools.partial(GuardJudge, format=name) for name in GUARD_FORMATS},
}


class AlignBeam:
    """Safety transfer at inference time: `AlignBeam(draft=..., anchor=..., judge=...).generate(prompt)`.

    The knobs start from the recommended settings (config.DEFAULT_PRESET: prompt gating, the anchor's check,
    the relapse cut, refusal when every candidate is unsafe); preset="paper" (or config=AlignBeamConfig()) runs
    the paper's method as published.
    draft, anchor and judge take a model name (embedded name, .gguf path, HF folder or hub id) or a loaded
    `Model`. judge="anchor" (default) reuses the anchor's loaded model; judge=None disables judging (the
    most likely mixed candidate is returned); a `Judge` instance plugs in any other scorer. judge_method picks
    the LLM judge: "safety" (default: request harm x response compliance), "rubric" (the paper's 1-5 rubric), or
    a guard model's prompt format ("llama_guard3", "shieldgemma", "granite_guardian"); a judge on a remote
    OpenAI-compatible endpoint is `judge=EndpointJudge(base_url, model)`.
    """

    def __init__(
        self,
        draft: str | Model = DEFAULT_DRAFT,
        anchor: str | Model | None = DEFAULT_ANCHOR,
        judge: str | Model | Judge | None = "anchor",
        config: AlignBeamConfig | None = None,
        engine: str = "auto",
        judge_method: str = "safety",
        preset: str | None = None,
        **config_overrides: Any,
    ) -> None:
        if preset is not None and config is not None:
            raise ConfigError("pass either preset= or config=, not both")
        base = config if config is not None else preset_config(preset or DEFAULT_PRESET)
        self.config = base.merged(**config_overrides)
        if judge_method not in JUDGE_METHODS:
            raise AlignBeamError(f"unknown judge_method {judge_method!r}: choose one of {', '.join(JUDGE_METHODS)}")
        make_judge = JUDGE_METHODS[judge_method]
        self.draft = load_model(draft, engine=engine)
        self.anchor = load_model(anchor, engine=engine) if anchor is not None else None
        if judge == "anchor":
            if self.anchor is None:
                raise AlignBeamError("judge='anchor' needs an anchor model; pass judge=None or another judge model")
            self.judge: Judge | None = make_judge(self.anchor)
        elif judge is None or isinstance(judge, Judge):
            self.judge = judge
        else:
            self.judge = make_judge(load_model(judge, engine=engine))
        self.pipeline = Pipeline(self.draft, self.anchor, self.judge)

    @classmethod
    def from_config(cls, path: str | Path, **config_overrides: Any) -> AlignBeam:
        """The pipeline a deployment config file describes: its models and its knobs (the operating point
        `alignbeam calibrate` wrote among them); `config_overrides` win over the file's knobs."""
        from alignbeam.configfile import load_config

        deployment = load_config(path)
        return deployment.model_options().build(**{**deployment.knobs, **config_overrides})

    def bridge(self, policy: str = "drop") -> Bridge:
        """The (anchor -> draft) bridge for a policy; the table behind it is built once per pair."""
        return self.pipeline.bridge(policy)

    def check_sessions(self, **overrides: Any) -> None:
        """Raise ConfigError now if these knobs need more sessions at once than the engines have slots (no
        tokenizing: a server checks this before a request queues)."""
        self.pipeline.check_sessions(self.config.merged(**overrides))

    def check_fits(self, prompt: Prompt, *, system: str | None = None, **overrides: Any) -> None:
        """Raise ContextOverflowError now if `generate(prompt, **overrides)` would: a server checks this before
        a stream starts, because a stream with full judging only raises at its very end."""
        self.pipeline.encode(Request(to_messages(prompt, system), self.config.merged(**overrides)))

    # -- generation -------------------------------------------------------------------------------
    def generate(self, prompt: Prompt, *, trace: bool = False, system: str | None = None, **overrides: Any) -> Result:
        """Generate one safe response. Any config field can be overridden for this call (alpha=0.3, k=5, ...)."""
        cfg = self.config.merged(**overrides)
        it = self.pipeline.run(Request(to_messages(prompt, system), cfg), trace)
        while True:
            try:
                next(it)
            except StopIteration as stop:
                return stop.value

    def stream(
        self, prompt: Prompt, *, trace: bool = False, system: str | None = None, **overrides: Any
    ) -> Iterator[str | Result]:
        """Yield the response as text deltas, then the `Result` as the last item.

        With `judge_after` set, the winner's continuation streams token by token as it is generated; with full
        judging (the paper), nothing can be shown before every candidate is finished and judged, so the chosen
        text arrives in token-sized pieces at the end.
        """
        cfg = self.config.merged(**overrides)
        it = self.pipeline.run(Request(to_messages(prompt, system), cfg, stream=True), trace)
        try:
            while True:
                try:
                    yield next(it)
                except StopIteration as stop:
                    yield stop.value
                    return
        finally:
            it.close()  # a consumer that stops early (a client gone) closes the generation's sessions now

    def generate_batch(
        self,
        prompts: Iterable[Prompt],
        *,
        trace: bool = False,
        progress: Callable[[int], None] | None = None,
        **overrides: Any,
    ) -> list[Result]:
        """Many prompts, same knobs. Candidates of one prompt are batched; prompts run one after another."""
        out = []
        for i, p in enumerate(prompts):
            out.append(self.generate(p, trace=trace, **overrides))
            if progress:
                progress(i + 1)
        return out

    def generate_draft(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int | None = None,
        system: str | None = None,
        ignore_eos: bool | None = None,
        stop: Sequence[str] = (),
    ) -> Result:
        """The draft alone, greedy: the baseline every result is compared with (`stop` strings end it)."""
        eos = self.config.ignore_eos if ignore_eos is None else ignore_eos
        n = max_new_tokens or self.config.max_new_tokens
        return answer_alone(self.draft, to_messages(prompt, system), n, eos, stop)

    def generate_anchor(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int | None = None,
        system: str | None = None,
        stop: Sequence[str] = (),
    ) -> Result:
        """The anchor alone, greedy, with its own chat template."""
        if self.anchor is None:
            raise AlignBeamError("no anchor model loaded")
        n = max_new_tokens or self.config.max_new_tokens
        return answer_alone(self.anchor, to_messages(prompt, system), n, self.config.ignore_eos, stop)
