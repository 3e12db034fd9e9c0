"""Every route of the gate, the candidate search, judging and selection, on scripted models (fake_engine.py).

The integration tests run the same paths on the real embedded models; these pin the decision logic itself, in
well under a second each, so it can be changed with a fast loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from fake_engine import HARMFUL, REFUSAL, scripted_pair

from alignbeam import AlignBeam, Result
from alignbeam.method.route import recentred
from alignbeam.method.textrules import is_refusal


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(tmp_path))  # the bridge table is cached on disk


def run(ab: AlignBeam, prompt: str | list[dict[str, str]], **kw) -> Result:
    """generate() and stream() must agree; every session must be closed afterwards."""
    r = ab.generate(prompt, trace=True, **kw)
    parts = list(ab.stream(prompt, **kw))
    final = parts[-1]
    assert isinstance(final, Result) and final.text == r.text
    assert "".join(p for p in parts[:-1] if isinstance(p, str)) == r.text
    assert ab.draft.open_sessions == 0 and (ab.anchor is None or ab.anchor.open_sessions == 0)
    return r


def routes(prompts: list[str], **kw) -> Iterator[str | None]:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    for p in prompts:
        tr = ab.generate(p, trace=True, **kw).trace
        assert tr is not None
        yield tr.route


def test_a_clearly_harmless_request_is_the_draft_alone() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    r = run(ab, "How do I bake a cake?")
    assert r.text == "Bake it at 180C for 30 minutes." and r.finish_reason == "stop"
    tr = r.trace
    assert tr is not None and tr.route == "draft" and tr.gated and tr.request_risk == 0.01
    assert tr.route_reason == "P(harmful) 0.01 is under the read gate 0.05: the draft alone"
    assert len(tr.candidates) == 1 and tr.anchor_opening is None
    assert judge.scored_at == [] and anchor.tokenizer.chat_calls == 0  # under read_gate: no anchor, no judge


def test_a_flagged_request_gets_the_full_method_and_a_refusal() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    r = run(ab, "How do I build a bomb?")
    tr = r.trace
    assert tr is not None and tr.route == "classifier" and not tr.gated
    assert len(tr.candidates) == 4 and [c.source for c in tr.candidates].count("draft") == 1  # K=3 + the draft's
    assert any(c.text == HARMFUL and c.score and c.score > 2.5 for c in tr.candidates)
    assert is_refusal(r.text) and r.finish_reason == "stop"
    assert judge.scored_at == [None, None]  # generate and stream: each judged once, at the judge's own read


def test_the_anchor_declines_what_the_classifier_passed() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    r = run(ab, "How do I open a lock I do not own?")
    tr = r.trace
    assert tr is not None and tr.route == "anchor" and tr.anchor_refusal == 1.0
    assert tr.anchor_opening is not None and tr.anchor_opening.startswith("I cannot")
    assert len(tr.candidates) == 1 and tr.candidates[0].text.startswith("I cannot") and not tr.refused_by_policy
    assert judge.scored_at == []  # one mixed candidate, no judge
    # the anchor's prompt is encoded once per generation: the check's encoding is the mix's prompt too
    assert anchor.tokenizer.chat_calls == 2


def test_the_anchor_route_returns_the_refusal_message_when_the_mix_does_not_decline() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    r = run(ab, "How do I open a lock I do not own?", alpha=0.3)  # the draft's share wins the first token
    tr = r.trace
    assert tr is not None and tr.route == "anchor" and tr.refused_by_policy
    assert r.text == ab.config.refusal_message and r.finish_reason == "refused"
    assert not tr.candidates[0].text.startswith("I'm")  # the trace keeps the candidate the message replaced


def test_an_anchor_that_answers_lets_the_request_through_with_its_opening_recorded() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    r = run(ab, "Tell me a story about a dragon.")
    tr = r.trace
    assert tr is not None and tr.route == "draft" and tr.anchor_opening and tr.anchor_opening.startswith("Once")
    assert tr.anchor_refusal == 0.0 and r.text == "A dragon story: once, a dragon slept."


def test_a_stricter_gate_judges_at_the_recentred_risk() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge, gate_threshold=0.2)
    r = run(ab, "I am unsure whether to ask this.")
    tr = r.trace
    assert tr is not None and tr.route == "classifier" and tr.anchor_opening is not None  # shown to the anchor first
    expected = recentred(0.3, 0.2, 0.5)
    assert expected is not None and expected > 0.5 and judge.scored_at == [expected, expected]
    assert list(routes(["I am unsure whether to ask this."], gate_threshold=1.0)) == ["draft"]


def test_a_conversation_ending_in_an_assistant_prefill_gets_the_full_method() -> None:
    convo = [{"role": "user", "content": "How do I bake a cake?"}, {"role": "assistant", "content": "Bake"}]
    assert list(routes([convo])) == ["prefill"]  # type: ignore[list-item]


def test_a_judge_without_a_classifier_warns_once_and_runs_the_full_method() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        a = ab.generate("nothing to classify", trace=True)
        b = ab.generate("nothing to classify either", trace=True)
    assert a.trace and b.trace and a.trace.route == b.trace.route == "uncalibrated"
    assert len([w for w in seen if "calibrated request classifier" in str(w.message)]) == 1


def test_without_a_gate_every_request_gets_the_paper_method() -> None:
    assert list(routes(["How do I bake a cake?", "How do I build a bomb?"], gate=False)) == [None, None]
    draft, anchor, judge = scripted_pair()
    r = run(AlignBeam(draft, anchor, judge, preset="paper"), "How do I bake a cake?")
    assert r.trace is not None and r.trace.route is None and len(r.trace.candidates) == 3
    assert judge.request_reads == 0


@pytest.mark.parametrize("cross", [True, False])
def test_alpha_one_follows_the_anchor_through_the_prefix(cross: bool) -> None:
    draft, anchor, judge = scripted_pair(cross)
    ab = AlignBeam(draft, anchor, judge, preset="paper")
    r = run(ab, "How do I build a bomb?", alpha=1.0, n_mix=8, k=1, use_judge=False)
    assert r.text.startswith(REFUSAL[:8]) and r.trace is not None
    assert r.trace.identity_bridge is (not cross)
    c = r.trace.candidates[0]
    assert c.n_mixed == 8 and len(c.anchor_shares) == 8 and all(s == pytest.approx(1.0) for s in c.anchor_shares)
    assert "".join(c.prefix_pieces) == r.text[:8] and len(c.prefix_pieces) == 8


def test_early_judging_finishes_only_the_winner() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge, preset="paper")
    r = run(ab, "How do I build a bomb?", judge_after=2)
    tr = r.trace
    assert tr is not None and len(tr.candidates) == 3
    losers = [c for i, c in enumerate(tr.candidates) if i != tr.chosen]
    assert all(c.stopped_early or c.finished for c in losers) and not tr.candidates[tr.chosen].stopped_early


def test_every_candidate_unsafe_refuses_or_returns_the_safest() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge, preset="paper")
    # without the anchor's pull the one candidate complies; "refuse" answers with the message
    r = run(ab, "How do I build a bomb?", alpha=0.0, k=1, on_all_unsafe="refuse")
    assert r.finish_reason == "refused" and r.trace is not None and r.trace.all_unsafe
    assert r.text == ab.config.refusal_message and r.trace.candidates[0].text == HARMFUL
    s = run(ab, "How do I build a bomb?", alpha=0.0, k=1)
    assert s.text == HARMFUL and s.trace is not None and s.trace.all_unsafe


def test_the_helpful_selection_does_not_read_plain_refusals() -> None:
    draft, anchor, judge = scripted_pair()
    read: list[str] = []
    score = judge.score_at_risk
    judge.score_at_risk = lambda m, rs, risk: read.extend(rs) or score(m, rs, risk)  # type: ignore[method-assign]
    r = AlignBeam(draft, anchor, judge).generate("How do I build a bomb?", trace=True)
    assert r.trace is not None and len(r.trace.candidates) == 4
    refusals = [c for c in r.trace.candidates if is_refusal(c.text)]
    assert refusals and all(c.score == judge.refusal_bound for c in refusals)
    assert not any(is_refusal(t) for t in read)


def test_stop_strings_end_the_answer_without_being_part_of_it() -> None:
    draft, anchor, judge = scripted_pair()
    r = run(AlignBeam(draft, anchor, judge), "How do I bake a cake?", stop=["180C"])
    assert r.text == "Bake it at " and r.finish_reason == "stop"


def test_candidate_search_grows_k_distinct_beams_and_closes_every_session() -> None:
    from alignbeam.config import AlignBeamConfig
    from alignbeam.method.bridge import Bridge
    from alignbeam.method.search import CandidateSearch
    from alignbeam.method.trace import Timer

    draft, anchor, _ = scripted_pair()
    cfg = AlignBeamConfig(k=3, n_mix=4, max_new_tokens=40)
    messages = [{"role": "user", "content": "How do I build a bomb?"}]
    search = CandidateSearch(draft, anchor, Bridge(anchor.tokenizer, draft.tokenizer), cfg)
    timer = Timer()
    search.start(draft.tokenizer.encode_chat(messages), anchor.tokenizer.encode_chat(messages), timer)
    firsts = [c.tokens[0] for c in search.candidates if c.tokens]
    assert len(search.candidates) == 3 and len(set(firsts)) == len(firsts)
    assert anchor.open_sessions == 0  # the anchor is only read during the mixed prefix
    assert all(c.n_mixed == 4 or c.finished for c in search.candidates)
    search.prune_to(0)
    search.continue_all(timer, np.random.default_rng(0))
    cands = search.finish()
    assert cands[0].text.startswith("I cannot") and all(c.stopped_early for c in cands[1:] if not c.finished)
    assert draft.open_sessions == 0
    assert {"draft_prefill", "anchor_prefill", "mixed_steps", "continuation"} <= set(timer.phases)


def test_a_search_abandoned_midway_closes_its_sessions() -> None:
    draft, anchor, judge = scripted_pair()
    ab = AlignBeam(draft, anchor, judge, preset="paper", judge_after=2)
    stream = ab.stream("How do I build a bomb?")
    next(stream)  # the winner starts streaming, then the client goes away
    stream.close()
    assert draft.open_sessions == 0 and anchor.open_sessions == 0


def test_the_trace_says_what_happened() -> None:
    draft, anchor, judge = scripted_pair()
    r = AlignBeam(draft, anchor, judge).generate("How do I build a bomb?", trace=True)
    d = r.to_dict()
    tr = d["trace"]
    assert tr["route"] == "classifier" and tr["request_risk"] == 0.9 and not tr["gated"]
    assert tr["route_reason"] == "P(harmful) 0.90 is at or above the gate 0.50: the full method"
    mixed = tr["candidates"][0]
    # the anchor's pull shades the prefix: at alpha 0.8 it chose the refusal's first tokens, the draft did not
    assert mixed["prefix_pieces"][0] == "I" and mixed["anchor_shares"][0] > 0.9
    assert tr["candidates"][-1]["source"] == "draft" and tr["candidates"][-1]["anchor_shares"] == []
    assert {"gate", "judge", "total"} <= set(tr["timings_ms"]) and tr["config"]["alpha"] == 0.8
    assert len(tr["candidates"]) == 4 and all("tokens" not in c and "n_tokens" in c for c in tr["candidates"])
    assert d["usage"]["completion_tokens"] == r.completion_tokens > 0


@pytest.mark.parametrize(
    "prompt", ["How do I bake a cake?", "How do I build a bomb?", "Tell me a story about a dragon."]
)
def test_on_a_serving_engine_the_draft_starts_while_the_gate_reads(
    prompt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same answers as in-process, the draft's first tokens made while the gate reads, and nothing of a flagged
    request's early draft answer sent (its sessions closed)."""
    import threading

    draft, anchor, judge = scripted_pair()
    reference = AlignBeam(draft, anchor, judge).generate(prompt, trace=True)
    draft.full_vocabulary = False  # the draft is a serving engine now
    started = threading.Event()
    seen_during_gate: list[bool] = []
    logits = draft.next_logits
    monkeypatch.setattr(draft, "next_logits", lambda tokens: (started.set(), logits(tokens))[1])
    risk = judge.request_risk

    def slow_gate(messages):  # type: ignore[no-untyped-def]
        seen_during_gate.append(started.wait(5))  # the draft's prefill runs meanwhile
        return risk(messages)

    monkeypatch.setattr(judge, "request_risk", slow_gate)
    ab = AlignBeam(draft, anchor, judge)
    assert ab.pipeline.speculates(ab.config)
    r = run(ab, prompt)  # generate and stream agree, every session closed
    assert seen_during_gate == [True, True]
    assert (r.text, r.trace and r.trace.route) == (reference.text, reference.trace and reference.trace.route)
    if reference.trace and reference.trace.route != "draft":
        assert not any(p.startswith("Sure") for p in ab.stream(prompt) if isinstance(p, str))
