"""Growing the candidates to their end and choosing one: the paper's way, early judging, or the one answer.

Three shapes, picked by what the request's config asks for:
- one candidate and nothing to judge (the draft alone, K=1 mixing): it is the answer, and it streams as it grows;
- the paper's: every candidate is finished, then the judge scores all of them and `select` picks one;
- early judging (`judge_after`): the judge scores K partial candidates, only the winner is finished, and it
  streams as it grows (its score stays the early one, so what was streamed is never contradicted).
On the anchor route the chosen candidate must decline (`Request.must_decline`): one the draft's share of the mix
turned away from declining ("In the 1990s, when people wanted to make ...") is not returned, the refusal message
is; it is decided on the whole candidate, so that route does not stream as it grows.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from alignbeam.config import AlignBeamConfig
from alignbeam.engines.base import Message
from alignbeam.method.conversation import response_text
from alignbeam.method.emitter import Emitter
from alignbeam.method.judge import Judge
from alignbeam.method.request import Request
from alignbeam.method.search import CandidateSearch
from alignbeam.method.select import Selection, select
from alignbeam.method.textrules import is_refusal, opening_declines
from alignbeam.method.trace import Candidate

Chosen = Generator[str, None, tuple[list[Candidate], Selection]]


def numpy_seed(seed: int | None) -> int | None:
    """numpy's generators take seeds >= 0 only: any integer (negative, huge) maps onto one, deterministically."""
    return None if seed is None else seed % 2**64


def grow_and_choose(req: Request, search: CandidateSearch, judge: Judge | None, emitter: Emitter) -> Chosen:
    """Finish the started search and choose a candidate; yields text deltas when the request streams."""
    cfg = req.cfg
    rng = np.random.default_rng(numpy_seed(cfg.seed))
    judge = judge if cfg.use_judge else None
    if req.stream and judge is None and len(search.candidates) == 1 and not req.must_decline:
        only = search.candidates[0]
        yield from emitter.feed(only.tokens)
        for _ in search.iter_continue(req.timer, rng):
            yield from emitter.feed(only.tokens)
        cands = search.finish()
        return cands, pick(cands, cfg)
    if judge is None or cfg.judge_after is None or len(search.candidates) <= 1:
        search.continue_all(req.timer, rng)
        cands = search.finish()
        if judge is not None:
            with req.timer.phase("judge"):
                scores = judge_scores(judge, req.messages, [c.text for c in cands], cfg, req.judged_risk)
            for c, s in zip(cands, scores, strict=True):
                c.score = s
        sel = pick(cands, cfg)
        if req.must_decline and not sel.refuse and not opening_declines(cands[sel.index].text):
            sel = Selection(sel.index, sel.all_unsafe, True)
        return cands, sel
    return (yield from _judge_early(req, search, judge, emitter, rng))


def _judge_early(
    req: Request, search: CandidateSearch, judge: Judge, emitter: Emitter, rng: np.random.Generator
) -> Chosen:
    """Judge the K candidates after `judge_after` continuation tokens, finish only the winner."""
    cfg = req.cfg
    search.continue_all(req.timer, rng, limit=cfg.n_mix + (cfg.judge_after or 0))
    with req.timer.phase("judge"):
        scores = judge_scores(judge, req.messages, search.partial_texts(), cfg, req.judged_risk)
    for c, s in zip(search.candidates, scores, strict=True):
        c.score = s
    sel = pick(search.candidates, cfg)
    search.prune_to(sel.index)
    if req.stream and not sel.refuse:
        winner = search.candidates[sel.index]
        yield from emitter.feed(winner.tokens)
        for _ in search.iter_continue(req.timer, rng):
            yield from emitter.feed(winner.tokens)
    else:
        search.continue_all(req.timer, rng)
    return search.finish(), sel


def pick(cands: list[Candidate], cfg: AlignBeamConfig) -> Selection:
    """`select` with the request's selection knobs."""
    return select(cands, cfg.judge_threshold, cfg.tie_epsilon, cfg.on_all_unsafe, cfg.select)


def judge_scores(
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
