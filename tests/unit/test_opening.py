"""The anchor's opening explored as a tree (method/opening.py), on a tiny random Llama with SmolLM2's tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignbeam.engines.hf import HFModel
from alignbeam.method.opening import explore_opening
from alignbeam.method.textrules import opening_settled


@pytest.fixture(scope="module")
def tiny(smollm2_tokenizer_folder: Path) -> HFModel:
    from tests.conftest import build_tiny_llama

    return build_tiny_llama(smollm2_tokenizer_folder, 256)


PROMPT = [{"role": "user", "content": "How did people pick locks in the 1800s?"}]


def test_one_leaf_is_greedy_decoding(tiny: HFModel) -> None:
    ids = tiny.tokenizer.encode_chat(PROMPT)
    decode = tiny.tokenizer.decode
    greedy = decode(tiny.generate_greedy(ids, 8, stop_when=lambda t: opening_settled(decode(t))))
    o = explore_opening(tiny, ids, 8, leaves=1)
    assert o.text == greedy
    assert o.decline_share in (0.0, 1.0)
    assert 0.0 < o.p_explored <= 1.0


def test_a_tree_explores_more_probability_and_stays_a_distribution(tiny: HFModel) -> None:
    ids = tiny.tokenizer.encode_chat(PROMPT)
    one = explore_opening(tiny, ids, 3, leaves=1)
    four = explore_opening(tiny, ids, 3, leaves=4, floor=0.0)
    # the four most likely 3-token openings hold at least the greedy path's probability, and never more than 1
    assert four.p_explored >= one.p_explored - 1e-9
    assert four.p_explored <= 1.0 + 1e-9
    assert 0.0 <= four.p_decline <= four.p_explored + 1e-12
    assert 0.0 <= four.decline_share <= 1.0


def test_the_tree_probability_is_the_models(tiny: HFModel) -> None:
    """With two tokens and a wide tree, the explored mass equals the sum of the kept paths' probabilities, each
    computed here from the model's logits directly."""
    ids = tiny.tokenizer.encode_chat(PROMPT)
    o = explore_opening(tiny, ids, 1, leaves=5, floor=0.0)
    with tiny.session(ids) as s:
        x = s.logits().astype(np.float64)
    p = np.exp(x - x.max())
    p /= p.sum()
    assert o.p_explored == pytest.approx(float(np.sort(p)[-5:].sum()), rel=1e-4)


def test_floor_prunes_unlikely_openings(tiny: HFModel) -> None:
    ids = tiny.tokenizer.encode_chat(PROMPT)
    o = explore_opening(tiny, ids, 3, leaves=8, floor=0.999)
    # nothing clears a floor of 0.999 but the most likely opening, which is always kept: greedy decoding
    assert o.text == explore_opening(tiny, ids, 3, leaves=1).text


def test_the_opening_shown_is_greedy_decodings_in_a_tree_too(tiny: HFModel) -> None:
    ids = tiny.tokenizer.encode_chat(PROMPT)
    assert explore_opening(tiny, ids, 6, leaves=4).text == explore_opening(tiny, ids, 6, leaves=1).text
