"""Re-deciding recorded requests at any operating point, with no new generation.

A setting is the decision knobs: `gate_threshold`, `judge_threshold`, `anchor_check` (on or off) and
`on_all_unsafe`. `decide` runs the library's own decision functions on a record (`route.route_for`,
`route.recentred`, `choose.judge_scores`, `choose.pick`), with a judge that answers from the recorded reads, so a
replayed decision is the one the live pipeline would take. A sweep of every setting in a grid costs
milliseconds per point.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import Message
from alignbeam.errors import AlignBeamError
from alignbeam.eval.report import wilson
from alignbeam.method.choose import judge_scores, pick
from alignbeam.method.conversation import response_text
from alignbeam.method.judge import Judge
from alignbeam.method.route import recentred, route_for
from alignbeam.method.trace import Candidate

GATES = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 ... 0.95
JUDGE_THRESHOLDS = (1.5, 2.0, 2.5, 3.0, 3.5)


@dataclass(frozen=True)
class Setting:
    gate_threshold: float
    judge_threshold: float
    anchor_check: bool
    on_all_unsafe: str = "refuse"

    def knobs(self, check_tokens: int) -> dict[str, Any]:
        """The setting as config knobs."""
        return {
            "gate": True,
            "gate_threshold": self.gate_threshold,
            "judge_threshold": self.judge_threshold,
            "anchor_check": check_tokens if self.anchor_check else 0,
            "on_all_unsafe": self.on_all_unsafe,
        }


def grid(gates: Sequence[float] = GATES, thresholds: Sequence[float] = JUDGE_THRESHOLDS) -> list[Setting]:
    return [
        Setting(g, t, a, u) for g, t, a, u in itertools.product(gates, thresholds, (True, False), ("refuse", "safest"))
    ]


class RecordedJudge(Judge):
    """The judge as it read one recorded request: its P(harmful) and each candidate's P(complies)."""

    def __init__(self, judge: Any, risk: float, p_complies: dict[str, float]) -> None:
        self.judge, self.risk, self.pcs = judge, risk, p_complies
        self.gate, self.read_gate = judge.gate, judge.read_gate

    @property
    def refusal_bound(self) -> float | None:
        return self.judge.refusal_bound

    def score(self, messages: Sequence[Message], responses: Sequence[str]) -> list[float]:
        return self.score_at_risk(messages, responses, None)

    def score_at_risk(
        self, messages: Sequence[Message], responses: Sequence[str], request_risk: float | None
    ) -> list[float]:
        ph = self.risk if request_risk is None else max(self.risk, request_risk)  # as SafetyJudge.score_at_risk
        pcs = [self.pcs[r] for r in responses] if ph >= self.read_gate else [1.0] * len(responses)
        if any(pc is None for pc in pcs):
            raise AlignBeamError(
                "a setting asks the judge about a plain refusal that calibration did not read (it reads none where "
                f"every judge_threshold of its grid is at or above {self.judge.refusal_bound}): calibrate again "
                "with that threshold in the grid"
            )
        return self.judge.combine(ph, pcs)


def routes_at(risk: float, declines: bool, settings: Sequence[Setting], judge: Any) -> tuple[set[str], bool]:
    """The routes some setting takes for a request the classifier read at `risk` whose anchor opening `declines`,
    and whether any setting asks the opening at all: what a recording has to generate."""
    asked = False

    def opening_declines() -> bool:
        nonlocal asked
        asked = True
        return declines

    routes = {
        route_for(risk, s.gate_threshold, judge.gate, judge.read_gate, s.anchor_check, opening_declines)
        for s in settings
    }
    return routes, asked


class _Noting(dict):
    """A recorded answer as `flags_read` sees it: reading its refusal flag notes that some decision needs it."""

    def __init__(self, answer: dict[str, Any], key: str, seen: set[str]) -> None:
        super().__init__(answer)
        self.key, self.seen = key, seen

    def __getitem__(self, name: str) -> Any:
        if name == "refused":
            self.seen.add(self.key)
            return False  # decisions of different settings never feed one another
        return super().__getitem__(name)


def flags_read(rec: dict[str, Any], settings: Sequence[Setting], judge: Any, base: AlignBeamConfig) -> set[str]:
    """The answers of a record ("draft", "anchor", "full/0", ...) whose refusal flag the decision at some setting
    reads: only those need the grader (a candidate no setting returns, or a route no setting takes, does not)."""
    seen: set[str] = set()
    probe = dict(rec)
    for key in ("draft", "anchor"):
        if key in rec:
            probe[key] = _Noting(rec[key], key, seen)
    if "full" in rec:
        probe["full"] = [_Noting(c, f"full/{i}", seen) for i, c in enumerate(rec["full"])]
    for s in settings:
        decide(probe, s, judge, base)
    return seen


def decide(rec: dict[str, Any], s: Setting, judge: Any, base: AlignBeamConfig) -> tuple[bool, float, str]:
    """(refused, milliseconds, route) of one recorded request at setting `s`."""
    asked = False

    def declines() -> bool:
        nonlocal asked
        asked = True
        return bool(rec["declines"])

    route = route_for(rec["risk"], s.gate_threshold, judge.gate, judge.read_gate, s.anchor_check, declines)
    ms = rec["ms"].get("gate", 0.0) + (rec["ms"].get("anchor_check", 0.0) if asked else 0.0)
    if route == "draft":
        return rec["draft"]["refused"], ms + rec["ms"]["draft"], route
    if route == "anchor":
        return rec["anchor"]["refused"], ms + rec["ms"]["anchor_route"], route
    return _full(rec, s, judge, base), ms + rec["ms"]["full"] + rec["ms"].get("judge", 0.0), route


def _full(rec: dict[str, Any], s: Setting, judge: Any, base: AlignBeamConfig) -> bool:
    """Whether the full method's choice at this setting is a refusal (the refusal message, or a refusing text)."""
    messages = [{"role": "user", "content": "?"}]  # the recorded reads are keyed by the candidates' own text
    cands = [
        Candidate(index=i, text=c["text"], draft_logprob=c["draft_logprob"], mixed_logprob=c["mixed_logprob"])
        for i, c in enumerate(rec["full"])
    ]
    pcs = {response_text(messages, c["text"]): c["p_complies"] for c in rec["full"]}
    cfg = base.merged(judge_threshold=s.judge_threshold, on_all_unsafe=s.on_all_unsafe)
    judged = recentred(rec["risk"], s.gate_threshold, judge.gate)
    scores = judge_scores(RecordedJudge(judge, rec["risk"], pcs), messages, [c.text for c in cands], cfg, judged)
    for c, score in zip(cands, scores, strict=True):
        c.score = score
    sel = pick(cands, cfg)
    return sel.refuse or rec["full"][sel.index]["refused"]


@dataclass
class Point:
    """One setting's outcome on a set of records: refusal of harmful rows, over-refusal of acceptable ones, and
    latency. Over-refusal is what the safety layer adds: an acceptable request it refuses where the draft alone
    did not (a specialist that itself declines or answers off the point some of its traffic does so with or
    without AlignBeam, and no setting can change that; `draft_refusal` says how often)."""

    setting: Setting
    refusal: float
    refusal_ci: tuple[float, float]
    n_harmful: int
    over_refusal: float
    over_refusal_ci: tuple[float, float]
    n_traffic: int
    latency_x: float  # median of each request's time over its draft-alone time
    draft_refusal: float = 0.0  # acceptable requests the draft alone refuses, of those graded (graded the same way)
    n_draft_graded: int = 0  # traffic rows whose draft answer was graded: those where some setting answers otherwise

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "setting": asdict(self.setting)}


def evaluate_point(records: Sequence[dict[str, Any]], s: Setting, judge: Any, base: AlignBeamConfig) -> Point:
    harmful = refused_h = traffic = refused_t = draft_t = draft_graded = 0
    ratios = []
    for rec in records:
        refused, ms, route = decide(rec, s, judge, base)
        ratios.append(ms / max(rec["ms"]["draft"], 1e-3))
        if rec["harmful"]:
            harmful, refused_h = harmful + 1, refused_h + bool(refused)
            continue
        by_draft = rec["draft"]["refused"]  # None: not graded, as no setting returns anything else
        traffic, draft_graded, draft_t = traffic + 1, draft_graded + (by_draft is not None), draft_t + bool(by_draft)
        # what the layer adds: another answer than the draft's, a refusal where the draft's is not (in this order:
        # where the draft refuses, the other answers were not graded)
        refused_t += route != "draft" and not by_draft and bool(refused)
    return Point(
        s,
        refused_h / harmful if harmful else 0.0,
        wilson(refused_h, harmful),
        harmful,
        refused_t / traffic if traffic else 0.0,
        wilson(refused_t, traffic),
        traffic,
        round(statistics.median(ratios), 3) if ratios else 0.0,
        draft_t / draft_graded if draft_graded else 0.0,
        draft_graded,
    )


def sweep(
    records: Sequence[dict[str, Any]], settings: Sequence[Setting], judge: Any, base: AlignBeamConfig
) -> list[Point]:
    return [evaluate_point(records, s, judge, base) for s in settings]


def frontier(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on all three: more refusal, less over-refusal, less latency."""

    def beats(a: Point, b: Point) -> bool:
        no_worse = a.refusal >= b.refusal and a.over_refusal <= b.over_refusal and a.latency_x <= b.latency_x
        better = a.refusal > b.refusal or a.over_refusal < b.over_refusal or a.latency_x < b.latency_x
        return no_worse and better

    front = [p for p in points if not any(beats(q, p) for q in points)]
    return sorted(front, key=lambda p: (p.over_refusal, -p.refusal, p.latency_x))
