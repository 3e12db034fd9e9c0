"""Bridge and text sync on the real SmolLM2, Qwen and Gemma tokenizers (property tests)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import require_embedded

from alignbeam import load_model
from alignbeam.method.bridge import MULTI, PARTIAL, Bridge, BridgeTable
from alignbeam.method.sync import TextSync

NAMES = ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"]
PAIRS = [(a, d) for a in NAMES for d in NAMES if a != d]


@pytest.fixture(scope="module")
def toks():
    for n in NAMES:
        require_embedded(n)
    return {n: load_model(n).tokenizer for n in NAMES}


@pytest.fixture(scope="module")
def bridges(toks):
    return {(a, d): Bridge(toks[a], toks[d], "drop") for a, d in PAIRS}


logit_seeds = st.integers(min_value=0, max_value=2**32 - 1)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _peaky_logits(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).astype(np.float32)
    hot = rng.choice(n, size=60, replace=False)
    x[hot] += rng.uniform(4, 12, size=60).astype(np.float32)
    return x


@pytest.mark.parametrize(("anchor", "draft"), PAIRS)
@SETTINGS
@given(seed=logit_seeds)
def test_translation_is_a_distribution_over_kept_mass(bridges, toks, anchor, draft, seed) -> None:
    br = bridges[(anchor, draft)]
    logits = _peaky_logits(toks[anchor].vocab_size, seed)
    masses = {}
    for policy in ("exact", "drop", "first"):
        tr = br.with_policy(policy).translate(logits, 50, context=[])
        masses[policy] = tr.kept_mass
        if tr.fallback:
            assert tr.kept_mass == 0 and len(tr.ids) == 0
            continue
        assert abs(tr.probs.sum() - 1) < 1e-9
        assert (tr.probs > 0).all() and len(np.unique(tr.ids)) == len(tr.ids)
        assert tr.ids.max() < toks[draft].vocab_size and 0 < tr.kept_mass <= 1 + 1e-9
    assert masses["exact"] <= masses["drop"] + 1e-12 <= masses["first"] + 2e-12


@pytest.mark.parametrize(("anchor", "draft"), PAIRS)
def test_table_maps_are_faithful_and_exact_subset_of_first(bridges, toks, anchor, draft) -> None:
    tb = bridges[(anchor, draft)].table
    a, d = toks[anchor], toks[draft]
    texts = a.token_texts()
    exact_ids = np.flatnonzero(tb.exact >= 0)
    first_ids = set(np.flatnonzero((tb.exact >= 0) | (tb.exact == MULTI)).tolist())
    assert set(exact_ids.tolist()) <= first_ids
    rng = np.random.default_rng(1)
    for i in rng.choice(exact_ids, size=300, replace=False):
        if i in a.eog_ids:
            continue
        assert d.decode([int(tb.exact[i])]) == texts[i]
    for e in a.eog_ids:
        assert tb.exact[e] == d.eot_id
    for s in a.special_ids() - a.eog_ids:
        assert tb.exact[s] < 0 or s >= len(texts)
    assert not any(t for i, t in enumerate(texts) if tb.exact[i] == PARTIAL and "\ufffd" not in t)


def test_identity_bridge_for_same_tokenizer() -> None:
    require_embedded("qwen2.5-coder-1.5b")
    a, d = load_model("qwen2.5-coder-1.5b").tokenizer, load_model("qwen2.5-coder-0.5b").tokenizer
    br = Bridge(a, d, "drop")
    assert br.identity and br.table is None
    logits = _peaky_logits(a.vocab_size, 3)
    tr = br.translate(logits, 50)
    # the anchor's top 50 (less any more than 12 nats below the best), already draft ids, renormalised
    x = logits.astype(np.float64)
    top = np.array([t for t in np.argsort(-x)[:50] if x[t] >= x.max() - 12])
    assert sorted(tr.ids.tolist()) == sorted(t for t in top.tolist() if t < d.vocab_size)
    assert abs(tr.probs.sum() - 1) < 1e-9 and 0 < tr.kept_mass <= 1 + 1e-9
    assert tr.ids[int(np.argmax(tr.probs))] == top[0]


def test_translate_b50_is_fast(bridges, toks) -> None:
    """A loose functional guard (the figures live in benchmarks/bridge.py): well under a millisecond."""
    br = bridges[("qwen2.5-coder-0.5b", "smollm2-135m")]
    logits = _peaky_logits(toks["qwen2.5-coder-0.5b"].vocab_size, 5)
    br.translate(logits, 50, context=[])
    t0 = time.perf_counter()
    for _ in range(50):
        br.translate(logits, 50, context=[])
    assert (time.perf_counter() - t0) / 50 < 0.02


def test_bridge_table_disk_cache_round_trip(toks, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNBEAM_CACHE", str(tmp_path))
    a, d = toks["smollm2-135m"], toks["gemma3-270m"]
    t1 = BridgeTable.load_or_build(a, d)
    assert list((tmp_path / "bridge").glob("*.npz"))
    t2 = BridgeTable.load_or_build(a, d)
    np.testing.assert_array_equal(t1.exact, t2.exact)
    np.testing.assert_array_equal(t1.first, t2.first)


unicode_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Co", "Cn"), exclude_characters="\ufffd"),
        st.sampled_from(list("🙂🚀👩‍👧日本語中文한국어 \n\téàü—“”")),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize(("anchor", "draft"), PAIRS)
@SETTINGS
@given(text=unicode_text)
def test_sync_invariant_anchor_holds_the_draft_text(toks, anchor, draft, text) -> None:
    a, d = toks[anchor], toks[draft]
    sync = TextSync(a, d, identity=False)
    ids = d.encode(text)
    held: list[int] = []
    for n in range(1, len(ids) + 1):
        keep, feed = sync.plan(held, ids[:n])
        held = held[:keep] + feed
        expected = sync.response_text(ids[:n])
        assert "\ufffd" not in expected[-1:]
        assert a.decode(held) == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefiltered_top_b_equals_full_top_b(bridges, toks, seed) -> None:
    """The windowed float32 path picks the true top-B and gives exactly their renormalised distribution, for
    peaked and flat distributions; kept_mass (a diagnostic) is their mass within the window of TAIL_NATS."""
    from alignbeam.method.bridge import TAIL_NATS

    br = bridges[("qwen2.5-coder-0.5b", "smollm2-135m")].with_policy("first")
    n = toks["qwen2.5-coder-0.5b"].vocab_size
    rng = np.random.default_rng(seed)
    for logits in (_peaky_logits(n, seed), rng.normal(size=n).astype(np.float32) * 0.01):
        tr = br.translate(logits, 50, context=None)
        p = np.exp(logits.astype(np.float64) - logits.max())
        p /= p.sum()
        x = logits.astype(np.float64)
        window = x >= x.max() - TAIL_NATS
        top = [t for t in np.argsort(-p)[:50] if window[t]]  # the top 50, less any more than 12 nats down
        code = br.table.exact[top]
        tgt = np.where(code == MULTI, br.table.first[top], code)
        kept = p[top][tgt >= 0]
        inside = p[window].sum()
        assert abs(tr.kept_mass - kept.sum() / inside) < 1e-5
        want: dict[int, float] = {}
        for t, q in zip(tgt[tgt >= 0], kept, strict=True):
            want[int(t)] = want.get(int(t), 0.0) + q / kept.sum()
        assert sorted(want) == tr.ids.tolist()
        assert np.allclose([want[i] for i in tr.ids.tolist()], tr.probs, atol=1e-5)
