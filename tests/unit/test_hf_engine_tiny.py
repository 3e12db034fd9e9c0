"""HF engine logic (padded batching, fork, truncate) on a tiny random Llama with SmolLM2's real tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignbeam.engines.hf import HFModel
from alignbeam.errors import AlignBeamError, ContextOverflowError


@pytest.fixture(scope="module")
def tiny(smollm2_tokenizer_folder: Path) -> HFModel:
    from tests.conftest import build_tiny_llama

    return build_tiny_llama(smollm2_tokenizer_folder, 128)


def test_batched_step_with_unequal_lengths_matches_single(tiny: HFModel) -> None:
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [11], [12, 13, 14, 15]]
    singles = [tiny.session(p) for p in prompts]
    batched = [tiny.session(p) for p in prompts]
    for step in range(4):
        toks = [[100 + step + i] for i in range(len(prompts))]
        for s, t in zip(singles, toks):
            s.extend(t)
        tiny.step(batched, toks)
        for a, b in zip(batched, singles):
            np.testing.assert_allclose(a.logits(), b.logits(), atol=1e-4)
            assert a.tokens == b.tokens
    # the per-session caches were split back to each session's own length, without padding
    assert [s.cache.get_seq_length() for s in batched] == [len(s.tokens) for s in batched]


def test_fork_extend_truncate_equals_fresh(tiny: HFModel) -> None:
    base = tiny.session([5, 6, 7, 8])
    child = base.fork()
    child.extend([9, 10, 11])
    fresh = tiny.session([5, 6, 7, 8, 9, 10, 11])
    np.testing.assert_allclose(child.logits(), fresh.logits(), atol=1e-4)
    child.truncate(5)
    np.testing.assert_allclose(child.logits(), tiny.session([5, 6, 7, 8, 9]).logits(), atol=1e-4)
    # the parent is untouched by what the fork did
    np.testing.assert_allclose(base.logits(), tiny.session([5, 6, 7, 8]).logits(), atol=1e-4)
    child.truncate(0)
    child.extend([5])
    np.testing.assert_allclose(child.logits(), tiny.session([5]).logits(), atol=1e-4)


def test_context_overflow_and_closed_session(tiny: HFModel) -> None:
    s = tiny.session([1] * 100)
    with pytest.raises(ContextOverflowError, match="context"):
        s.extend([1] * 50)
    s.close()
    with pytest.raises(AlignBeamError, match="closed"):
        s.logits()
    with pytest.raises(AlignBeamError, match="empty session"):
        tiny.session().logits()


def test_head_cache_restores_the_head_and_reads_what_a_fresh_session_reads(tiny: HFModel) -> None:
    from alignbeam.method.readout import HeadCache

    head = [1, 2, 3, 4, 5, 6]
    cache = HeadCache(tiny, head)
    for ids in ([*head, 7, 8], [*head, 9], [9, *head, 7], head):
        np.testing.assert_allclose(cache.logits(ids), tiny.session(ids).logits(), atol=1e-4)
    assert cache._snap is not None and cache._snap.tokens == head  # the head itself is never extended
    restored = tiny.restore(cache._snap)
    assert restored.tokens == head
    np.testing.assert_allclose(restored.logits(), tiny.session(head).logits(), atol=1e-4)
