"""The gate: which way one request goes, and why (config `gate`, the recommended preset).

The judge's request classifier reads the request first. A request it flags (P(harmful) at or above the gate) gets
the full method: K mixed candidates, judged. One it calls harmless is answered by the draft alone, exactly as
without AlignBeam (no anchor, no candidates, no judge), unless `anchor_check` is set and the anchor, answering
the request itself, opens by declining: the safety-aligned model objects to what the classifier missed (a
rewording into the past tense, a fictional frame, a harm category the classifier never learned), so the request
is answered by the mix, which opens with the anchor's refusal. The anchor's opening has nothing fitted in it,
which is why it holds on requests nobody tuned for; its cost is the anchor's own over-refusal (docs/results.md).

The routes, as `Request.route` (and the trace) names them:
  draft         passed: the draft alone
  classifier    flagged by the classifier: the full method
  anchor        passed by the classifier, declined by the anchor's opening: one mixed candidate that must decline
  prefill       the conversation ends in an assistant prefill (the classifier reads requests): the full method
  uncalibrated  a judge without a calibrated classifier: nothing can be trusted to pass a request: the full method
  None          no gate (the paper): the full method
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import Model, check_context
from alignbeam.method.judge import Judge
from alignbeam.method.opening import Opening, explore_opening
from alignbeam.method.readout import sigmoid
from alignbeam.method.request import Request


class Gate:
    """Decides each request's route for one anchor and judge; warns once when the judge cannot classify."""

    def __init__(self, anchor: Model | None, judge: Judge | None) -> None:
        self.anchor = anchor
        self.judge = judge
        self._warned_uncalibrated = False

    def decide(self, req: Request) -> None:
        """Write the route, what it read, the config it runs with and the risk its judge scores at into `req`."""
        self._route(req)
        req.judged_risk = judged_risk(req, self.judge)

    def _route(self, req: Request) -> None:
        cfg, judge = req.cfg, self.judge
        if not (cfg.gate and judge is not None and cfg.use_judge):
            return
        with req.timer.phase("gate"):
            req.risk = risk = judge.request_risk(req.messages)
        if risk is None:
            self._warn_uncalibrated()
            req.route, req.reason = "uncalibrated", "the judge has no calibrated request classifier: the full method"
            return
        if req.messages and req.messages[-1]["role"] == "assistant":
            # an assistant prefill is text the answer continues: the classifier cannot read it
            req.route, req.reason = "prefill", "the conversation ends in an assistant prefill: the full method"
            return
        threshold = cfg.gate_threshold if cfg.gate_threshold is not None else judge.gate
        opening: Opening | None = None

        def anchor_declines() -> bool:
            nonlocal opening
            opening = self._anchor_check(req, judge)
            return opening.decline_share >= 0.5  # greedy: 1 when it declines, else 0

        asks_anchor = bool(cfg.anchor_check) and self.anchor is not None
        req.route = route_for(risk, threshold, judge.gate, judge.read_gate, asks_anchor, anchor_declines)
        if opening is not None:  # the anchor's state after the prompt: its route (or the full method) starts there
            req.anchor_state = opening.prompt_state if req.route != "draft" else None
        req.cfg = narrowed(cfg, req.route)
        req.reason = reason_for(req.route, risk, threshold, judge.gate, judge.read_gate, opening is not None)

    def _anchor_check(self, req: Request, judge: Judge) -> Opening:
        """The anchor's own greedy opening of its answer; the prompt it encodes is kept for the mix."""
        cfg = req.cfg
        assert self.anchor is not None
        with req.timer.phase("anchor_check"):
            req.anchor_ids = ids = self.anchor.tokenizer.encode_chat(req.messages)
            check_context(self.anchor, len(ids), cfg.anchor_check, role="anchor")
            opening = explore_opening(self.anchor, ids, cfg.anchor_check, keep_prompt=True)  # its greedy opening
        req.anchor_opening, req.anchor_refusal = opening.text, opening.decline_share
        return opening

    def _warn_uncalibrated(self) -> None:
        """No calibrated classifier: nothing can be trusted to call a request harmless, so every request gets the
        full method (safe, slower); said once, with the fixes."""
        if self._warned_uncalibrated:
            return
        self._warned_uncalibrated = True
        name = getattr(getattr(self.judge, "model", None), "name", type(self.judge).__name__)
        warnings.warn(
            f"prompt gating needs a judge with a calibrated request classifier and {name} has none, so "
            "every request gets the full method (slower). Use the 'safety' judge on qwen2.5-coder-1.5b, "
            "SafetyJudge(model, harm_center=...) fitted on your data, or a request probe trained with "
            "benchmarks/request_probe.py; or set gate=False",
            stacklevel=6,
        )


def narrowed(cfg: AlignBeamConfig, route: str | None) -> AlignBeamConfig:
    """The config a route generates with. The anchor route: the anchor objects, so its refusal stands: one mixed
    candidate opens in the anchor's words (K beams and the judge would only confirm it), the relapse cut keeps it
    a refusal, and a candidate the draft's share of the mix turned away from declining gets the refusal message
    (choose.py). The draft route: clearly harmless, the draft alone, exactly as without AlignBeam."""
    if route == "anchor":
        return cfg.merged(k=1, use_judge=False, include_draft=False)
    if route == "draft":
        return cfg.merged(alpha=0.0, k=1, use_judge=False, include_draft=False)
    return cfg


def route_for(
    risk: float,
    threshold: float,
    gate: float,
    read_gate: float,
    anchor_check: bool,
    anchor_declines: Callable[[], bool],
) -> str:
    """The route of a request the classifier read at `risk`: the one decision, for the live gate and for
    calibration's replay of recorded reads (calibrate/replay.py). `anchor_declines` is asked only where the anchor's
    opening decides: the classifier is unsure (at or above `read_gate`, under `gate`).

    A request under the judge's own gate that a stricter `threshold` flags is still shown to the anchor first:
    where the anchor declines, its refusal stands as it would at the judge's gate, so a stricter gate never
    refuses less than the default (its full method can pick a complying candidate scored just under
    judge_threshold, where the anchor route cannot). Below read_gate the classifier is confident, and the anchor's
    objections there are its over-refusals (docs/results.md#generalization)."""
    flagged = risk >= threshold
    if flagged and risk >= gate:
        return "classifier"
    if anchor_check and risk >= read_gate and anchor_declines():
        return "anchor"
    return "classifier" if flagged else "draft"


def reason_for(route: str, risk: float, threshold: float, gate: float, read_gate: float, asked: bool) -> str:
    """The route's reason in words, with the numbers that decided it (the trace's `route_reason`)."""
    p = f"P(harmful) {risk:.2f}"
    if route == "classifier":
        at = f"the gate {threshold:.2f}" if threshold < gate else f"the gate {gate:.2f}"
        looked = ", and the anchor's opening did not decline" if asked else ""
        return f"{p} is at or above {at}{looked}: the full method"
    if route == "anchor":
        return f"{p} is under the gate {gate:.2f} but the classifier is unsure, and the anchor's own opening declines"
    if asked:
        return f"{p} is under the gate {threshold:.2f}, and the anchor's own opening does not decline: the draft alone"
    below = f"under the read gate {read_gate:.2f}" if risk < read_gate else f"under the gate {threshold:.2f}"
    return f"{p} is {below}: the draft alone"


def judged_risk(req: Request, judge: Judge | None) -> float | None:
    """The risk the judge scores this request's candidates at, where it is not the judge's own read (None): a
    gate_threshold below the judge's own gate re-centres the judge's reading of the request on it (`recentred`)."""
    gate = judge.gate if judge is not None else None
    return recentred(req.risk, req.cfg.gate_threshold, gate)


def recentred(risk: float | None, threshold: float | None, gate: float | None) -> float | None:
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
