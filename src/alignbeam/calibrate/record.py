"""Recording one request's decision path once, with every read its decision needs at any operating point.

The decision knobs (`gate_threshold`, `judge_threshold`, `anchor_check` on or off, `on_all_unsafe`) choose among
things that do not depend on them: the classifier's P(harmful), whether the anchor's own opening declines, the
draft's answer, the K candidates of the full method with each one's P(complies) read by the judge, and the anchor
route's candidate. So each is made once here, through the library's own pipeline (a route forced, never
re-implemented), and replay.py re-decides at any setting with no new generation.

Only what some setting of the sweep's grid can use is made, by asking replay's own decision functions: the
anchor's opening where a setting asks it, the full method and the anchor route where a setting takes them, the
judge's read of each candidate except plain refusals that no threshold of the grid reads (the judge's refusal
bound is under all of them), and the grader's read of each answer whose refusal flag some decision reads (on an
acceptable request, only where some setting answers with something else than the draft, which the draft itself
does not refuse). A flag no setting reads is left None. On 2 cores the grader's and the judge's reads of the 1.5B
model were most of a harmful row's recording time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from alignbeam.api import AlignBeam
from alignbeam.calibrate.replay import Setting, flags_read, routes_at
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
from alignbeam.method.textrules import is_refusal
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


class ForcedGate:
    """The recorder's gate: each request takes the route forced for it, so several rows can be recorded at once
    through one pipeline (`alignbeam calibrate --concurrency` on serving engines)."""

    def __init__(self) -> None:
        self.forced: dict[int, ForcedRoute] = {}

    def decide(self, req: Request) -> None:
        self.forced.pop(id(req)).decide(req)


class Recorder:
    """Records rows through one loaded AlignBeam; `base` is the configuration whose candidates are generated, and
    `settings` the grid the records must replay (what no setting of it reaches is not made)."""

    def __init__(self, ab: AlignBeam, base: AlignBeamConfig, settings: Sequence[Setting]) -> None:
        judge = ab.judge
        if judge is None or ab.anchor is None or not all(hasattr(judge, a) for a in ("p_complies", "combine")):
            raise AlignBeamError(
                "calibration replays the safety judge's reads: load an anchor and the 'safety' judge "
                "(--judge-method safety)"
            )
        self.ab, self.judge, self.anchor, self.config = ab, judge, ab.anchor, base
        self.base = base.merged(gate=True, use_judge=False, judge_after=None)
        self.check_tokens = base.anchor_check or DEFAULT_ANCHOR_CHECK
        self.settings = list(settings)
        bound = judge.refusal_bound
        # replay's judge_scores reads no plain refusal where the bound is within every threshold of the grid
        self.skip_refusals = (
            base.select == "helpful" and bound is not None and all(bound <= s.judge_threshold for s in settings)
        )
        self._grader = RefusalGrader(getattr(judge, "model", None) or ab.anchor)
        self._graders: list[RefusalGrader] = []
        self._local = threading.local()
        self.pipeline = Pipeline(ab.draft, ab.anchor, judge)  # one bridge table for every row
        self.pipeline.gate = self.gate = ForcedGate()  # type: ignore[assignment]
        self.pipeline.early_start = False  # a forced route is never the draft's: an early draft would be dropped

    @property
    def grader(self) -> RefusalGrader:
        """This thread's grader (a grader keeps the request it last read open, for one thread at a time), with
        one cache of grades for all threads, as evaluation's workers have."""
        if not hasattr(self._local, "grader"):
            self._local.grader = self._grader.worker_copy()
            self._graders.append(self._local.grader)
        return self._local.grader

    def close(self) -> None:
        """Free the graders' open head sessions."""
        for g in self._graders:
            g.close()

    def record(self, row: Row) -> dict[str, Any]:
        t0 = time.perf_counter()
        msgs = row.messages
        ms: dict[str, float] = {}
        risk = _timed(ms, "gate", lambda: self.judge.request_risk(msgs))
        if risk is None:
            raise AlignBeamError("the judge has no calibrated request classifier: calibration needs one")
        rec: dict[str, Any] = {"id": row.id, "family": row.family, "harmful": row.harmful, "risk": risk}
        _, asked = routes_at(risk, False, self.settings, self.judge)
        opening = self._opening(msgs, ms) if asked else None
        rec["declines"] = opening is not None and opening.decline_share >= 0.5
        rec["opening"] = None if opening is None else opening.text
        routes, _ = routes_at(risk, rec["declines"], self.settings, self.judge)
        n = self.base.max_new_tokens
        draft = _timed(ms, "draft", lambda: answer_alone(self.ab.draft, msgs, n, self.base.ignore_eos, self.base.stop))
        rec["draft"] = {"text": draft.text, "refused": None}  # the draft's time is every row's latency baseline
        if "classifier" in routes:
            rec["full"] = self._full(row, risk, opening, ms)
        if "anchor" in routes:
            result = _timed(ms, "anchor_route", lambda: self._run(row, "anchor", risk, opening))
            rec["anchor"] = {"text": result.text, "refused": None}
        rec["ms"] = {k: round(v, 1) for k, v in ms.items()}
        self._grade(rec, msgs, routes)
        rec["record_s"] = round(time.perf_counter() - t0, 2)  # the recording's own time, reads and grading included
        return rec

    def _grade(self, rec: dict[str, Any], msgs: list, routes: set[str]) -> None:
        """Grade the answers whose refusal flag some setting's decision reads (replay.flags_read)."""
        needed = flags_read(rec, self.settings, self.judge, self.config)
        answers = {"draft": rec["draft"], "anchor": rec.get("anchor")}
        answers.update({f"full/{i}": c for i, c in enumerate(rec.get("full", []))})
        if not rec["harmful"]:
            if routes == {"draft"}:
                return  # every setting answers with the draft's own text: the layer adds nothing to grade
            self._grade_one(answers["draft"], msgs)  # what any other answer's refusal is weighed against
            if answers["draft"]["refused"]:
                return  # the draft refuses itself: no setting can add an over-refusal here
        for key in sorted(needed):
            if answers[key] is not None and answers[key]["refused"] is None:
                self._grade_one(answers[key], msgs)

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
        unread = [self.skip_refusals and is_refusal(a) for a in answers]  # as replay's judge_scores
        to_read = [a for a, u in zip(answers, unread, strict=True) if not u]
        read = iter(_timed(ms, "judge", lambda: self.judge.p_complies(row.messages, to_read)) if to_read else [])
        pcs = [None if u else next(read) for u in unread]
        return [
            {
                "text": c.text,
                "refused": None,
                "p_complies": pc,
                "draft_logprob": c.draft_logprob,
                "mixed_logprob": c.mixed_logprob,
                "source": c.source,
            }
            for c, pc in zip(cands, pcs, strict=True)
        ]

    def _run(self, row: Row, route: str, risk: float, opening: Opening | None) -> Any:
        req = Request(row.messages, self.base)
        self.gate.forced[id(req)] = ForcedRoute(route, risk, opening)
        it = self.pipeline.run(req, trace=True)
        while True:
            try:
                next(it)
            except StopIteration as stop:
                return stop.value

    def _grade_one(self, answer: dict[str, Any], messages: list) -> None:
        """Whether an answer is a refusal, by the evaluation's grader (rules, then its LLM question)."""
        answer["refused"] = self.grader.grade(request_text(messages), answer["text"]).refused


def _timed(ms: dict[str, float], phase: str, f: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    try:
        return f()
    finally:
        ms[phase] = ms.get(phase, 0.0) + (time.perf_counter() - t0) * 1000
