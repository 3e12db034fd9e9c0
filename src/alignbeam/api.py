"""AlignBeam: wires the draft, the anchor and the judge to the method, behind `generate()`.

Models are loaded once (and shared: the anchor doubles as the judge without a second copy); every call merges
its overrides into an immutable config, so one object serves calls with different knobs.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignbeam.config import DEFAULT_PRESET, AlignBeamConfig
from alignbeam.config import preset as preset_config
from alignbeam.engines import Model, load_model
from alignbeam.engines.base import Message, Snapshot, check_context
from alignbeam.engines.chat import validate_messages
from alignbeam.errors import AlignBeamError, ConfigError
from alignbeam.method.bridge import Bridge
from alignbeam.method.conversation import response_text
from alignbeam.method.guard import GUARD_FORMATS, GuardJudge
from alignbeam.method.judge import JUDGES, Judge
from alignbeam.method.opening import Opening, explore_opening
from alignbeam.method.readout import sigmoid
from alignbeam.method.search import CandidateSearch
from alignbeam.method.select import Selection, select
from alignbeam.method.textrules import declines_first, is_refusal, opening_declines, trim_stop
from alignbeam.method.trace import Candidate, Timer, Trace

DEFAULT_DRAFT = "smollm2-135m"
DEFAULT_ANCHOR = "qwen2.5-coder-1.5b"

Prompt = str | Sequence[Message]


@dataclass
class Result:
    text: str
    finish_reason: str  # "stop" (end of turn / stop string), "length" (max_new_tokens) or "refused"
    prompt_tokens: int
    completion_tokens: int
    trace: Trace | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
        }
        if self.trace is not None:
            d["trace"] = self.trace.to_dict()
        return d


def to_messages(prompt: Prompt, system: str | None = None) -> list[Message]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise AlignBeamError("the prompt is empty: pass some text or a list of chat messages")
        msgs = [{"role": "user", "content": prompt}]
    else:
        msgs = [dict(m) for m in prompt]
    if system is not None:
        msgs = [{"role": "system", "content": system}, *[m for m in msgs if m.get("role") != "system"]]
    return validate_messages(msgs)


def _numpy_seed(seed: int | None) -> int | None:
    """numpy's generators take seeds >= 0 only: any integer (negative, huge) maps onto one, deterministically."""
    return None if seed is None else seed % 2**64


#: judge_method -> judge factory taking the loaded judge model: the LLM judges of judge.py, and the guard-model
#: prompt formats of guard.py (for a Llama Guard / ShieldGemma / Granite Guardian model loaded as the judge)
JUDGE_METHODS: dict[str, Callable[[Model], Judge]] = {
    **JUDGES,
    **{name: functools.partial(GuardJudge, format=name) for name in GUARD_FORMATS},
}


@dataclass(frozen=True)
class Route:
    """What prompt gating decided for one request (AlignBeam._gate): the config it is generated with, the
    classifier's P(harmful request), the path's name (see Trace.route) and the anchor's opening, if one was read."""

    cfg: AlignBeamConfig
    risk: float | None = None
    name: str | None = None
    anchor_opening: str | None = None
    anchor_refusal: float | None = None
    #: the anchor's state after the prompt, when the anchor route mixes from the prompt the check already read
    anchor_state: Snapshot | None = None
    #: P(harmful) of the request restated without its framing, when config `restate` read it
    restated_risk: float | None = None


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
        self._warned_uncalibrated = False
        self._bridges: dict[str, Bridge] = {}
        self._bridge_lock = threading.Lock()

    # -- helpers ----------------------------------------------------------------------------------
    def bridge(self, policy: str = "drop") -> Bridge:
        """The (anchor -> draft) bridge for a policy; the table behind it is built once per pair."""
        if self.anchor is None:
            raise AlignBeamError("no anchor model: mixing needs one")
        with self._bridge_lock:  # requests may run at once (remote engines): build the table once
            if policy not in self._bridges:
                base = next(iter(self._bridges.values()), None)
                self._bridges[policy] = (
                    base.with_policy(policy) if base else Bridge(self.anchor.tokenizer, self.draft.tokenizer, policy)
                )
            return self._bridges[policy]

    def _encode(self, messages: list[Message], cfg: AlignBeamConfig) -> tuple[list[int], list[int] | None]:
        """The conversation in the draft's and (when it mixes) the anchor's tokens, after the one context check:
        every error about length is raised here, before any session opens."""
        self._check_sessions(cfg)
        d_prompt = self.draft.tokenizer.encode_chat(messages)
        check_context(self.draft, len(d_prompt), cfg.max_new_tokens, beams=cfg.k + int(cfg.include_draft))
        if not self._mixes(cfg):
            return d_prompt, None
        assert self.anchor is not None
        a_prompt = self.anchor.tokenizer.encode_chat(messages)
        check_context(self.anchor, len(a_prompt), cfg.n_mix, role="anchor")
        return d_prompt, a_prompt

    def _check_sessions(self, cfg: AlignBeamConfig) -> None:
        """Refuse, before anything opens, a request that needs more sessions at once than a model has slots for.

        The peak is per loaded model, over the two phases that hold sessions together: the mixed prefix (K draft
        beams, plus the draft's own, and K anchor beams) and judging (one session per candidate plus the shared
        head on the judge's model, with the draft beams still open under early judging)."""
        beams = cfg.k + int(cfg.include_draft)
        judge_model = getattr(self.judge, "model", None) if (self.judge is not None and cfg.use_judge) else None
        prefix: list[tuple[Model | None, int]] = [
            (self.draft, beams),
            (self.anchor if self._mixes(cfg) else None, cfg.k),
        ]
        judging = [(judge_model, beams + 1), (self.draft, beams if cfg.judge_after is not None else 0)]
        for phase in (prefix, judging):
            need: dict[int, tuple[Model, int]] = {}
            for model, n in phase:
                if model is not None and n:
                    need[id(model)] = (model, need.get(id(model), (model, 0))[1] + n)
            for model, n in need.values():
                cap = model.max_sessions
                if cap is not None and n > cap:
                    raise ConfigError(
                        f"k is {cfg.k}, too many for {model.name}: it needs {n} sessions at once and the model was "
                        f"loaded with {cap} sequence slots; lower k, or load it with more slots "
                        f"(load_model({model.name!r}, n_seq_max=...))"
                    )

    def _mixes(self, cfg: AlignBeamConfig) -> bool:
        return self.anchor is not None and cfg.alpha > 0 and cfg.n_mix > 0

    def check_sessions(self, **overrides: Any) -> None:
        """Raise ConfigError now if these knobs need more sessions at once than the engines have slots (no
        tokenizing: a server checks this before a request queues)."""
        self._check_sessions(self.config.merged(**overrides))

    def check_fits(self, prompt: Prompt, *, system: str | None = None, **overrides: Any) -> None:
        """Raise ContextOverflowError now if `generate(prompt, **overrides)` would: a server checks this before
        a stream starts, because a stream with full judging only raises at its very end."""
        self._encode(to_messages(prompt, system), self.config.merged(**overrides))

    # -- generation -------------------------------------------------------------------------------
    def generate(self, prompt: Prompt, *, trace: bool = False, system: str | None = None, **overrides: Any) -> Result:
        """Generate one safe response. Any config field can be overridden for this call (alpha=0.3, k=5, ...)."""
        it = self._generate(prompt, trace, system, overrides, stream=False)
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
        it = self._generate(prompt, trace, system, overrides, stream=True)
        try:
            while True:
                try:
                    yield next(it)
                except StopIteration as stop:
                    yield stop.value
                    return
        finally:
            it.close()  # a consumer that stops early (a client gone) closes the generation's sessions now

    def _generate(
        self, prompt: Prompt, trace: bool, system: str | None, overrides: dict[str, Any], stream: bool
    ) -> Generator[str, None, Result]:
        """One response, in named steps: gate, candidates, choose. Yields text deltas when streaming."""
        cfg = self.config.merged(**overrides)
        messages = to_messages(prompt, system)
        timer = Timer()
        t_start = time.perf_counter()
        route = self._gate(messages, cfg, timer)
        cfg = route.cfg
        d_prompt, a_prompt = self._encode(messages, cfg)
        bridge = None
        if a_prompt is not None:
            with timer.phase("bridge_table"):
                bridge = self.bridge(cfg.bridge)
        search = CandidateSearch(self.draft, self.anchor if bridge is not None else None, bridge, cfg)
        emitter = _Emitter(self.draft.tokenizer.decode, cfg.stop, hold_relapse=cfg.relapse_cut)
        try:
            search.start(d_prompt, a_prompt, timer, route.anchor_state)
            # on the restated route the judge scores at the restatement's risk, which flagged the request; a
            # gate_threshold below the judge's own gate re-centres the judge's reading of the request on it
            raised = route.restated_risk if route.name == "restated" else None
            gate = self.judge.gate if self.judge is not None else None
            strict = _recentred(route.risk if raised is None else raised, cfg.gate_threshold, gate)
            raised = strict if strict is not None else raised
            # the anchor route exists to let the anchor's refusal stand, so its one candidate must decline too
            must_decline = route.name == "anchor"
            cands, sel = yield from self._candidates_and_choice(
                search, messages, cfg, timer, emitter, stream, raised, must_decline
            )
        finally:
            search.close()
        chosen = cands[sel.index]
        timings = timer.ms()
        timings["total"] = round((time.perf_counter() - t_start) * 1000, 2)
        identity = bool(bridge and bridge.identity)
        tr = (
            Trace(
                cands,
                sel.index,
                sel.all_unsafe,
                sel.refuse,
                timings,
                cfg.to_dict(),
                identity,
                route.risk,
                route.name == "draft",
                route.name,
                route.anchor_opening,
                route.anchor_refusal,
                route.restated_risk,
            )
            if trace
            else None
        )
        if sel.refuse:
            if stream:
                yield cfg.refusal_message
            return Result(cfg.refusal_message, "refused", len(d_prompt), len(chosen.tokens), tr)
        if stream:
            yield from emitter.feed(chosen.tokens, final_text=chosen.text)
        return Result(chosen.text, "stop" if chosen.finished else "length", len(d_prompt), len(chosen.tokens), tr)

    def _gate(self, messages: list[Message], cfg: AlignBeamConfig, timer: Timer) -> Route:
        """Prompt gating decides what a request costs, from two signals that read different things.

        The judge's request classifier reads the request's wording; a request it flags gets the full method. A
        request it passes goes to the draft alone, unless `anchor_check` is set and the anchor, answering the
        request itself, opens by declining: the safety-aligned model objects to what the classifier missed (a
        rewording into the past tense, a fictional frame, a harm category the classifier never learned), so the
        request is answered by the mix, which opens with the anchor's refusal. The anchor's opening has nothing
        fitted in it, which is why it holds on requests nobody tuned for; its cost is the anchor's own
        over-refusal (docs/results.md). With `restate`, a request both let through is read a third way: the judge
        model restates it without its framing and the classifier reads that (method/restate.py); a flagged
        restatement gets the full method, scored at the restatement's risk.
        """
        if not (cfg.gate and self.judge is not None and cfg.use_judge):
            return Route(cfg)
        with timer.phase("gate"):
            risk = self.judge.request_risk(messages)
        if risk is None:
            # no calibrated classifier: nothing can be trusted to call a request harmless, so every request gets
            # the full method (safe, slower); said once, with the fixes
            if not self._warned_uncalibrated:
                self._warned_uncalibrated = True
                name = getattr(getattr(self.judge, "model", None), "name", type(self.judge).__name__)
                warnings.warn(
                    f"prompt gating needs a judge with a calibrated request classifier and {name} has none, so "
                    "every request gets the full method (slower). Use the 'safety' judge on qwen2.5-coder-1.5b, "
                    "SafetyJudge(model, harm_center=...) fitted on your data, or a request probe trained with "
                    "benchmarks/request_probe.py; or set gate=False",
                    stacklevel=4,
                )
            return Route(cfg, None, "uncalibrated")
        threshold = cfg.gate_threshold if cfg.gate_threshold is not None else self.judge.gate
        # an assistant prefill is text the answer continues, and the classifier reads requests, not answers: a
        # conversation that ends in one always gets the full method
        if messages and messages[-1]["role"] == "assistant":
            return Route(cfg, risk, "prefill")
        flagged = risk >= threshold
        if flagged and risk >= self.judge.gate:
            return Route(cfg, risk, "classifier")
        # a request under the judge's own gate that a stricter gate_threshold flags is still shown to the anchor
        # first: where the anchor declines, its refusal stands as it would at the judge's gate, so a stricter
        # gate never refuses less than the default (its full method can pick a complying candidate scored just
        # under judge_threshold, where the anchor route cannot)
        opening = None
        # the anchor is asked where the classifier is unsure (between the judge's read_gate and the gate): below
        # read_gate the classifier is confident, and the anchor's objections there are its over-refusals
        # (docs/results.md#generalization)
        if cfg.anchor_check and self.anchor is not None and risk >= self.judge.read_gate:
            with timer.phase("anchor_check"):
                ids = self.anchor.tokenizer.encode_chat(messages)
                check_context(self.anchor, len(ids), cfg.anchor_check, role="anchor")
                opening = explore_opening(self.anchor, ids, cfg.anchor_check, cfg.anchor_openings, keep_prompt=True)
            if opening.decline_share >= cfg.anchor_refusal:
                # the anchor objects: its refusal stands. One mixed candidate opens in the anchor's words (K beams
                # and the judge would only confirm it: every candidate that follows the anchor declines, and the
                # judge reads a request the classifier passed as harmless), and the relapse cut keeps it a refusal;
                # a candidate the draft's share of the mix turned away from declining gets the refusal message
                anchor_route = cfg.merged(k=1, use_judge=False, include_draft=False)
                return Route(anchor_route, risk, "anchor", opening.text, opening.decline_share, opening.prompt_state)
        if flagged:  # the full method may start from the anchor's state the check saved
            state = opening.prompt_state if opening is not None else None
            return Route(cfg, risk, "classifier", *_opened(opening), state)
        restated = None
        if cfg.restate and risk >= self.judge.read_gate:
            # the second read: the request restated without its framing, classified again (method/restate.py)
            with timer.phase("restate"):
                restated = self.judge.restated_risk(messages)
            if restated is not None and restated >= threshold:
                # the mix may start from the anchor's state the check saved, as on the anchor route
                state = opening.prompt_state if opening is not None else None
                return Route(cfg, risk, "restated", *_opened(opening), state, restated)
        # clearly harmless: the draft alone, exactly as without AlignBeam
        draft_alone = cfg.merged(alpha=0.0, k=1, use_judge=False, include_draft=False)
        return Route(draft_alone, risk, "draft", *_opened(opening), None, restated)

    def _candidates_and_choice(
        self,
        search: CandidateSearch,
        messages: list[Message],
        cfg: AlignBeamConfig,
        timer: Timer,
        emitter: _Emitter,
        stream: bool,
        request_risk: float | None = None,
        must_decline: bool = False,
    ) -> Generator[str, None, tuple[list[Candidate], Selection]]:
        """Grow the candidates and choose one: the paper's way (finish all K, then judge), or with early judging
        (judge K partial candidates, finish only the winner, streaming it as it grows).

        must_decline (the anchor route): the anchor declined this request, and its refusal is to stand. The mixed
        candidate usually opens in the anchor's words, but the draft's share of the mix can turn its first token
        elsewhere ("In the 1990s, when people wanted to make ..."); such a candidate is not returned, the refusal
        message is. It is decided on the whole candidate, so this route does not stream as it grows."""
        rng = np.random.default_rng(_numpy_seed(cfg.seed))
        judge = self.judge if cfg.use_judge else None

        def pick(cands: list[Candidate]) -> Selection:
            return select(cands, cfg.judge_threshold, cfg.tie_epsilon, cfg.on_all_unsafe, cfg.select)

        if stream and judge is None and len(search.candidates) == 1 and not must_decline:
            # one candidate and nothing to judge (a request gated to the draft alone, K=1 mixing): it is the
            # answer, so it streams as it grows
            only = search.candidates[0]
            yield from emitter.feed(only.tokens)
            for _ in search.iter_continue(timer, rng):
                yield from emitter.feed(only.tokens)
            cands = search.finish()
            return cands, pick(cands)
        if judge is None or cfg.judge_after is None or len(search.candidates) <= 1:
            search.continue_all(timer, rng)
            cands = search.finish()
            if judge is not None:
                with timer.phase("judge"):
                    scores = _judge_scores(judge, messages, [c.text for c in cands], cfg, request_risk)
                for c, s in zip(cands, scores, strict=True):
                    c.score = s
            sel = pick(cands)
            if must_decline and not sel.refuse and not opening_declines(cands[sel.index].text):
                sel = Selection(sel.index, sel.all_unsafe, True)
            return cands, sel
        # Early judging: its score stays the early one, so what was streamed is never contradicted afterwards.
        search.continue_all(timer, rng, limit=cfg.n_mix + cfg.judge_after)
        with timer.phase("judge"):
            scores = _judge_scores(judge, messages, search.partial_texts(), cfg, request_risk)
        for c, s in zip(search.candidates, scores, strict=True):
            c.score = s
        sel = pick(search.candidates)
        search.prune_to(sel.index)
        if stream and not sel.refuse:
            winner = search.candidates[sel.index]
            yield from emitter.feed(winner.tokens)
            for _ in search.iter_continue(timer, rng):
                yield from emitter.feed(winner.tokens)
        else:
            search.continue_all(timer, rng)
        return search.finish(), sel

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
    ) -> Result:
        """The draft alone, greedy: the baseline every result is compared with."""
        return self._alone(self.draft, prompt, max_new_tokens, system, ignore_eos)

    def generate_anchor(
        self, prompt: Prompt, *, max_new_tokens: int | None = None, system: str | None = None
    ) -> Result:
        """The anchor alone, greedy, with its own chat template."""
        if self.anchor is None:
            raise AlignBeamError("no anchor model loaded")
        return self._alone(self.anchor, prompt, max_new_tokens, system)

    def _alone(
        self,
        model: Model,
        prompt: Prompt,
        max_new_tokens: int | None,
        system: str | None,
        ignore_eos: bool | None = None,
    ) -> Result:
        # no mixing here, so n_mix may exceed max_new_tokens: only the length matters
        n = max_new_tokens or self.config.max_new_tokens
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"max_new_tokens must be an integer >= 1, got {n!r}")
        ids = model.tokenizer.encode_chat(to_messages(prompt, system))
        check_context(model, len(ids), n)
        out = model.generate_greedy(ids, n, ignore_eos=self.config.ignore_eos if ignore_eos is None else ignore_eos)
        finished = len(out) < n
        return Result(model.tokenizer.decode(out), "stop" if finished else "length", len(ids), len(out))


def _recentred(risk: float | None, threshold: float | None, gate: float | None) -> float | None:
    """The request's risk as the judge should score it when a stricter gate_threshold is set, else None (the
    judge's own read stands).

    A flagged request's candidates are scored 1 + 4 x P(harmful request) x P(complies), so a gate lowered from
    0.5 to 0.2 alone would only send more requests to the full method, where a request at P 0.3 still cannot
    score a complying candidate above the 2.5 threshold: more cost, no more refusal. Shifting the classifier's
    log-odds by logit(gate) - logit(threshold) makes the threshold its midpoint for scoring too, so the gate and
    the judge stay one decision. A gate_threshold above the judge's gate needs nothing: every request it flags
    is already above the midpoint."""
    if risk is None or threshold is None or gate is None or threshold >= gate:
        return None

    def logit(x: float) -> float:
        x = min(max(x, 1e-9), 1.0 - 1e-9)  # gate_threshold 0 flags everything: every request judged as harmful
        return math.log(x / (1.0 - x))

    return sigmoid(logit(risk) + logit(gate) - logit(threshold))


def _opened(opening: Opening | None) -> tuple[str | None, float | None]:
    """What a Route records of the anchor's opening: its text and decline share, if one was read."""
    return (None, None) if opening is None else (opening.text, opening.decline_share)


def _judge_scores(
    judge: Judge,
    messages: list[Message],
    texts: Sequence[str],
    cfg: AlignBeamConfig,
    request_risk: float | None = None,
) -> list[float]:
    """The judge's scores of the candidates. With the `helpful` selection a candidate only has to be at or under
    `judge_threshold` to be eligible, and the draft's likelihood chooses among the eligible. A judge that bounds
    what it can score a plain refusal (the keyword rule, relapses excluded; the default judge: at most 1.4) need
    not read one when that bound is within the threshold: it is eligible whatever the read says, so it gets the
    bound and the choice is exactly the one reading would make. On a flagged request most candidates are
    refusals, and their reads were most of the judge's time (benchmarks/default_latency.py)."""
    answers = [response_text(messages, t) for t in texts]
    bound = judge.refusal_bound
    skip = cfg.select == "helpful" and bound is not None and bound <= cfg.judge_threshold
    unread = [skip and is_refusal(a) for a in answers]
    to_read = [a for a, u in zip(answers, unread, strict=True) if not u]
    read = judge.score_at_risk(messages, to_read, request_risk) if to_read else []
    it = iter(read)
    return [float(bound) if u else next(it) for u in unread]  # type: ignore[arg-type]


class _Emitter:
    """Turns a growing token list into text deltas that never need to be taken back.

    A trailing incomplete UTF-8 character is held back, and so is any tail that could still grow into a stop
    string; at the end the final (stop-trimmed) text settles what is left. With `hold_relapse` (config
    relapse_cut) nothing is sent before the first sentence is complete, and a response whose first sentence
    declines is sent only once complete: it may still be cut back to its refusal.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str], stop: Sequence[str], hold_relapse: bool = False) -> None:
        self._decode = decode
        self._stop = tuple(stop)
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._hold_relapse = hold_relapse
        self.sent = ""

    def feed(self, tokens: Sequence[int], final_text: str | None = None) -> Iterator[str]:
        if final_text is not None:
            text = final_text
        else:
            text = trim_stop(self._decode(tokens).rstrip("\ufffd"), self._stop)[0]
            if self._hold:
                text = text[: max(len(self.sent), len(text) - self._hold)]
            if self._hold_relapse and declines_first(text) is not False:
                text = self.sent
        if text.startswith(self.sent) and len(text) > len(self.sent):
            delta, self.sent = text[len(self.sent) :], text
            yield delta
