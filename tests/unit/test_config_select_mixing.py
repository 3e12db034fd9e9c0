from __future__ import annotations

import numpy as np
import pytest

from alignbeam.config import AlignBeamConfig
from alignbeam.errors import ConfigError
from alignbeam.method.bridge import Translation
from alignbeam.method.mixing import mix
from alignbeam.method.readout import softmax
from alignbeam.method.select import select
from alignbeam.method.trace import Candidate


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 1.5}, "alpha must be between 0 and 1"),
        ({"alpha": -0.1}, "alpha"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"n_mix": 300, "max_new_tokens": 256}, "n_mix"),
        ({"bridge": "fuzzy"}, "bridge must be one of"),
        ({"support": "both"}, "support"),
        ({"on_all_unsafe": "panic"}, "on_all_unsafe"),
        ({"judge_threshold": 7}, "1-5"),
        ({"temperature": -1}, "temperature"),
        ({"top_b": 0}, "top_b"),
        ({"judge_after": -2}, "judge_after"),
    ],
)
def test_config_validation_messages(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AlignBeamConfig(**kwargs)


def test_merged_overrides_and_rejects_unknown() -> None:
    c = AlignBeamConfig()
    d = c.merged(alpha=0.2, k=None)
    assert d.alpha == 0.2 and d.k == c.k and c.alpha == 0.5
    with pytest.raises(ConfigError, match="unknown option"):
        c.merged(beta=1)
    assert AlignBeamConfig(stop="###").stop == ("###",)


def test_mix_union_and_anchor_support() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=100).astype(np.float32)
    tr = Translation(np.array([3, 7, 50]), np.array([0.5, 0.3, 0.2]), 0.9, False)
    p_d = softmax(logits)
    np.testing.assert_allclose(mix(logits, tr, 0.0), p_d)
    u = mix(logits, tr, 0.4)
    assert abs(u.sum() - 1) < 1e-9
    np.testing.assert_allclose(u[3], 0.4 * 0.5 + 0.6 * p_d[3])
    a = mix(logits, tr, 0.4, support="anchor")
    assert abs(a.sum() - 1) < 1e-9 and set(np.flatnonzero(a)) == {3, 7, 50}
    np.testing.assert_allclose(mix(logits, Translation(np.empty(0, int), np.empty(0), 0.0, True), 0.7), p_d)
    np.testing.assert_allclose(mix(logits, tr, 1.0)[[3, 7, 50]], [0.5, 0.3, 0.2])


def _c(i: int, score: float | None, lp: float) -> Candidate:
    return Candidate(index=i, score=score, mixed_logprob=lp)


def test_select_lowest_score_ties_and_all_unsafe() -> None:
    assert select([_c(0, 3.0, -1), _c(1, 1.2, -9), _c(2, 2.0, -0.5)], 2.5, 0.05, "safest").index == 1
    # within 0.05 of the best: higher mixed log-likelihood wins
    assert select([_c(0, 1.20, -5), _c(1, 1.24, -1), _c(2, 1.5, 0)], 2.5, 0.05, "safest").index == 1
    s = select([_c(0, 4.0, -1), _c(1, 3.0, -2)], 2.5, 0.05, "safest")
    assert s.index == 1 and s.all_unsafe and not s.refuse
    assert select([_c(0, 4.0, -1), _c(1, 3.0, -2)], 2.5, 0.05, "refuse").refuse
    assert select([_c(0, None, -3), _c(1, None, -1)], 2.5, 0.05, "safest").index == 1


def _cand(i: int, score: float, mixed: float, draft: float) -> Candidate:
    c = Candidate(index=i, score=score, mixed_logprob=mixed)
    c.draft_logprob = draft
    return c


def test_select_helpful_prefers_the_drafts_favourite_among_safe_candidates() -> None:
    # 0: refusal (safest, anchor-like: high mixed likelihood), 1: safe answer the draft likes, 2: unsafe answer
    cands = [_cand(0, 1.0, -1.0, -9.0), _cand(1, 2.0, -3.0, -1.0), _cand(2, 4.5, -2.0, -0.5)]
    assert select(cands, 2.5, 0.05, "safest").index == 0
    assert select(cands, 2.5, 0.05, "safest", "helpful").index == 1
    # nothing safe: "helpful" falls back to the paper's rule, and on_all_unsafe still applies
    unsafe = [_cand(0, 3.0, -1.0, -9.0), _cand(1, 4.0, -3.0, -1.0)]
    s = select(unsafe, 2.5, 0.05, "refuse", "helpful")
    assert s.index == 0 and s.all_unsafe and s.refuse


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"select": "nicest"}, "select must be one of"), ({"gate_threshold": 1.5}, "gate_threshold")],
)
def test_new_option_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AlignBeamConfig(**kwargs)


def test_log_prob_matches_log_softmax() -> None:
    from alignbeam.method.search import log_prob

    lg = np.random.default_rng(0).normal(size=1000).astype(np.float32) * 5
    assert abs(log_prob(lg, 17) - float(np.log(softmax(lg)[17]))) < 1e-4


def test_the_default_preset_is_recommended_and_paper_is_the_field_defaults() -> None:
    from alignbeam.config import DEFAULT_PRESET, PRESETS, AlignBeamConfig, markdown_table, preset

    assert DEFAULT_PRESET == "recommended"
    d = preset(DEFAULT_PRESET)
    assert d.gate and d.anchor_check > 0 and d.relapse_cut and d.on_all_unsafe == "refuse"
    assert preset("paper") == AlignBeamConfig() and PRESETS["paper"] == {}
    # the README table shows the default's value and, where it differs, the paper's
    row = next(r for r in markdown_table().splitlines() if r.startswith("| mixing | `alpha`"))
    assert row.startswith("| mixing | `alpha` | 0.8 | 0.5 |")
    with pytest.raises(ConfigError, match="anchor_check must be an integer >= 0"):
        AlignBeamConfig(anchor_check=-1)
    with pytest.raises(ConfigError, match="k must be at most 64"):  # a serving engine has no slots to refuse it
        AlignBeamConfig(k=10**9)
    for retired in ("restate", "anchor_openings", "adaptive_window"):  # measured not to pay (docs/method.md)
        with pytest.raises(ConfigError, match="unknown option"):
            AlignBeamConfig().merged(**{retired: 1})
