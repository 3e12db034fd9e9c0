"""Recording one request's decision path once, with every read its decision needs at any operating point.

The decision knobs (`gate_threshold`, `judge_threshold`, `anchor_check` on or off, `on_all_unsafe`) choose among
things that do not depend on them: the classifier's P(harmful), whether the anchor's own opening declines, the
draft's answer, the K candidates of the full method with each one's P(complies) read by the judge, and the anchor
route's candidate. So each is made once here, through the library's own pipeline (a route forced, never
re-implemented), and replay.py re-decides at any setting with no new generation. Each part is generated only
where some setting of the sweep can reach it (the full method only at P(harmful) at or above the lowest gate of
the sweep; the anchor route only where the anchor declines).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from alignbeam.api import AlignBeam
from alignbeam.calibrate.rows import Row
from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import check_context
from alignbeam.errors import AlignBeamError
from alignbeam.eval.grader import RefusalGrader
from alignbeam.method.conversation import request_text, response_text
from alignbeam.method.opening import Opening, explore_opening
from alignbeam.method.pipeline import Pipeline
from alignbeam.method.request import Request
from alignbeam.method.route import narrowed
from alignbeam.systems import answer_alone

#: the anchor check's length when the configuration has it off (a sweep still weighs turning it on)
DEFAULT_ANCHOR_CHECK = 12


class ForcedRoute:
    """A gate that sends the request down one given route, with what the real gate would have read."""

    def __init__(self, route: str, risk: float, opening: Opening | None) -> None:
        self.route, self.risk, self.opening = route, risk, opening

    def decide(self, req: Request) -> None:
        req.route, req.risk, req.reason = self.route, self.risk, f"forced by calibration ({self.route})"
        if self.opening is not None:
            req.anchor_opening, req.anchor_refusal = self.opening.text, self.opening.decline_share
            req.anchor_state = self.opening.prompt_state
        req.cfg = narrowed(req.cfg, self.route)


class Recorder:
    """Records rows through one loaded AlignBeam; `base` is the configuration whose candidates are generated."""

    def __init__(self, ab: AlignBeam, base: AlignBeamConfig, min_gate: float) -> None:
        judge = ab.judge
        if judge is None or ab.anchor is None or not all(hasattr(judge, a) for a in ("p_complies", "combine")):
            raise AlignBeamError(
                "calibration replays the safety judge's reads: load an anchor and the 'safety' judge "
                "(--judge-method safety)"
            )
        self.ab, self.judge, self.anchor = ab, judge, ab.anchor
        self.base = base.merged(gate=True, use_judge=False, judge_after=None)
        self.check_tokens = base.anchor_check or DEFAULT_ANCHOR_CHECK
        self.min_gate = min_gate
        self.grader = RefusalGrader(getattr(judge, "model", None) or ab.anchor)
        self.pipeline = Pipeline(ab.draft, ab.anchor, judge)  # one bridge table for every row

    def close(self) -> None:
        """Free the grader's open head session."""
        self.grader.close()

    def record(self, row: Row) -> dict[str, Any]:
        msgs = row.messages
        ms: dict[str, float] = {}
        risk = _timed(ms, "gate", lambda: self.judge.request_risk(msgs))
        if risk is None:
            raise AlignBeamError("the judge has no calibrated request classifier: calibration needs one")
        rec: dict[str, Any] = {"id": row.id, "family": row.family, "harmful": row.harmful, "risk": risk}
        opening = self._opening(msgs, ms) if risk >= self.judge.read_gate else None  # no setting asks it below
        rec["declines"] = opening is not None and opening.decline_share >= 0.5
        rec["opening"] = None if opening is None else opening.text
        n = self.base.max_new_tokens
        draft = _timed(ms, "draft", lambda: answer_alone(self.ab.draft, msgs, n, self.base.ignore_eos, self.base.stop))
        rec["draft"] = self._answer(msgs, draft.text)
        if risk >= self.min_gate:
            rec["full"] = self._full(row, risk, opening, ms)
        if rec["declines"] and risk >= self.judge.read_gate:
            result = _timed(ms, "anchor_route", lambda: self._run(row, "anchor", risk, opening))
            rec["anchor"] = self._answer(msgs, result.text)
        rec["ms"] = {k: round(v, 1) for k, v in ms.items()}
        return rec

    def _opening(self, msgs: list, ms: dict[str, float]) -> Opening:
        """The anchor's own greedy opening (the anchor check), read only where some setting would ask for it:
        at or above the judge's read gate (route.route_for)."""
        ids = self.anchor.tokenizer.encode_chat(msgs)
        check_context(self.anchor, len(ids), self.check_tokens, role="anchor")
        check = self.check_tokens
        return _timed(ms, "anchor_check", lambda: explore_opening(self.anchor, ids, check, keep_prompt=True))

    def _full(self, row: Row, risk: float, opening: Opening | None, ms: dict[str, float]) -> list[dict[str, Any]]:
        """The full method's candidates (the classifier route), each with the judge's P(complies)."""
        result = _timed(ms, "full", lambda: self._run(row, "classifier", risk, opening))
        assert result.trace is not None
        cands = result.trace.candidates
        answers = [response_text(row.messages, c.text) for c in cands]
        pcs = _timed(ms, "judge", lambda: self.judge.p_complies(row.messages, answers))
        return [
            {
                **self._answer(row.messages, c.text),
                "p_complies": pc,
                "draft_logprob": c.draft_logprob,
                "mixed_logprob": c.mixed_logprob,
                "source": c.source,
            }
            for c, pc in zip(cands, pcs, strict=True)
        ]

    def _run(self, row: Row, route: str, risk: float, opening: Opening | None) -> Any:
        self.pipeline.gate = ForcedRoute(route, risk, opening)  # type: ignore[assignment]
        it = self.pipeline.run(Request(row.messages, self.base), trace=True)
        while True:
            try:
                next(it)
            except StopIteration as stop:
                return stop.value

    def _answer(self, messages: list, text: str) -> dict[str, Any]:
        """A text and whether it is a refusal, by the evaluation's grader (rules, then its LLM question)."""
        g = self.grader.grade(request_text(messages), text)
        return {"text": text, "refused": g.refused}


def _timed(ms: dict[str, float], phase: str, f: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    try:
        return f()
    finally:
        ms[phase] = ms.get(phase, 0.0) + (time.perf_counter() - t0) * 1000
