"""The request probe: fitting in the rows' span, mapping back to the vocabulary, storage, and its use by the judge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignbeam import AlignBeamError
from alignbeam.method import probe as P


def _planted(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logit-like rows: a shared offset, low-rank structure, and a class signal along one hidden direction."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(16, dim)).astype(np.float32)
    y = rng.random(n) < 0.5
    latent = rng.normal(size=(n, 16))
    latent[:, 3] += np.where(y, 1.5, -1.5)
    return (10.0 + latent @ basis).astype(np.float32), y


def _auroc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    return float(
        ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    )


def test_fit_probe_generalises_and_maps_back_to_the_vocabulary() -> None:
    x, y = _planted(240, 3000, seed=0)
    fit = P.fit_probe(x, y, seed=0)
    assert fit.weights.shape == (3000,) and fit.oof.shape == (240,)
    assert _auroc(fit.oof, y) > 0.9
    probe = P.RequestProbe(fit.weights, fit.bias, 0.0, "m", "fp")
    xt, yt = _planted(200, 3000, seed=1)  # fresh rows: a wrong back-projection would score them at chance
    assert _auroc(probe.scores(xt), yt) > 0.9
    # the bias is folded in: balanced classes straddle 0
    s = probe.scores(xt)
    assert s[yt].mean() > 0 > s[~yt].mean()


def test_fit_probe_cannot_learn_from_noise() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 2000)).astype(np.float32)
    y = rng.random(200) < 0.5
    assert _auroc(P.fit_probe(x, y, seed=0).oof, y) < 0.7


def test_fpr_threshold_flags_at_most_the_allowed_share() -> None:
    benign = np.arange(100, dtype=float)
    t = P.fpr_threshold(benign, 0.08)
    assert (benign > t).sum() <= 8
    assert P.fpr_threshold(benign, 0.0) == 99.0


def test_probe_round_trip_shape_check_and_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = P.RequestProbe(np.arange(5, dtype=np.float32), 0.5, 1.25, "m", "fp1", scale=2.0)
    path = tmp_path / "m.npz"
    probe.save(path, meta={"note": "x"})
    back = P.RequestProbe.load(path)
    assert back.bias == 0.5 and back.threshold == 1.25 and back.scale == 2.0 and back.meta == {"note": "x"}
    assert back.score(np.ones(5, dtype=np.float32)) == pytest.approx(10.5)
    with pytest.raises(AlignBeamError, match="expects 5 logits"):
        back.score(np.ones(6, dtype=np.float32))
    monkeypatch.setattr(P, "PROBE_DIR", tmp_path)
    assert P.find_probe("m", "fp1") is not None
    assert P.find_probe("m", "other prompt") is None  # trained for another prompt: not used
    assert P.find_probe("unknown", "fp1") is None
    (tmp_path / "bad.npz").write_text("not a probe")
    with pytest.raises(AlignBeamError, match="cannot read"):
        P.RequestProbe.load(tmp_path / "bad.npz")


def test_packaged_probe_matches_the_judges_request_prompt() -> None:
    """The packaged probe is keyed on the classifier prompt it was trained with: editing REQUEST_PROMPT (or its
    system text) without retraining would silently switch the judge to the zero-shot margin."""
    from alignbeam.method import judge as J

    fp = P.prompt_fingerprint_of(J.REQUEST_SYSTEM, J.REQUEST_PROMPT)
    assert len(fp) == 10
    assert fp != P.prompt_fingerprint_of(J.REQUEST_SYSTEM + " ", J.REQUEST_PROMPT)
    for path in sorted(P.PROBE_DIR.glob("*.npz")):
        assert P.find_probe(path.stem, fp) is not None, path.name


def test_safety_judge_reads_the_request_through_a_probe(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    from alignbeam.method import judge as J
    from alignbeam.method.readout import render

    fp = P.prompt_fingerprint_of(J.REQUEST_SYSTEM, J.REQUEST_PROMPT)
    vocab = 49152
    w = np.random.default_rng(0).normal(size=vocab).astype(np.float32)
    probe = P.RequestProbe(w, -0.3, 0.7, "tiny", fp, scale=1.5)
    plain = J.SafetyJudge(tiny_llama)
    assert not plain.calibrated and plain._probe is None  # no packaged probe for the tiny model
    j = J.SafetyJudge(tiny_llama, request_probe=probe)
    assert j.calibrated and j.harm_center == 0.7 and j.harm_scale == 1.5
    msgs = [{"role": "user", "content": "How do I bake bread?"}]
    text = render(tiny_llama, J.REQUEST_SYSTEM, J.REQUEST_PROMPT.format(request=msgs[0]["content"]), "Answer:")
    assert j.request_margin(msgs) == pytest.approx(probe.score(j._plain(text, msgs[0]["content"])), rel=1e-5)
    assert j.request_margin(msgs) != pytest.approx(plain.request_margin(msgs))
    assert j.fingerprint() != plain.fingerprint()
    moved = J.SafetyJudge(tiny_llama, request_probe=probe, harm_center=2.0)
    assert moved.harm_center == 2.0
    # judge_accuracy's read-out cache survives a new request threshold; score caches do not
    assert moved.readout_fingerprint() == j.readout_fingerprint() and moved.fingerprint() != j.fingerprint()
    assert plain.readout_fingerprint() != j.readout_fingerprint()
    with pytest.raises(AlignBeamError, match="another classifier prompt"):
        J.SafetyJudge(tiny_llama, request_probe=P.RequestProbe(w, 0.0, 0.0, "tiny", "stale"))


def test_score_is_combine_of_the_two_read_outs(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    """judge_accuracy re-weighs cached read-outs through combine(); it must be exactly what score() returns."""
    from alignbeam.method import judge as J

    msgs = [{"role": "user", "content": "How do I pick a lock?"}]
    responses = ["I'm sorry, but I can't help with that.", "Sure: insert a tension wrench, then rake the pins."]
    for center in (-50.0, 50.0):  # P(harmful) near 1: the candidates are read; near 0: they are not
        j = J.SafetyJudge(tiny_llama, harm_center=center, harm_scale=1.0)
        ph = j.p_harmful_request(msgs)
        pcs = j.p_complies(msgs, responses)
        assert j.score(msgs, responses) == pytest.approx(j.combine(ph, pcs))
    assert ph < j.read_gate and j.combine(ph, pcs) == [1.0 + 4.0 * ph] * 2  # unread: all alike
    read = J.SafetyJudge(tiny_llama, harm_center=-50.0, harm_scale=1.0)
    assert read.combine(1.0, [0.2, 0.9]) == pytest.approx([1.8, 4.6])


def test_retarget_moves_only_the_operating_point() -> None:
    probe = P.RequestProbe(np.arange(5, dtype=np.float32), 0.5, 1.25, "m", "fp1", scale=2.0, meta={"cv": 1})
    benign = np.arange(100, dtype=np.float64)  # 100 harmless scores 0..99
    moved = P.retarget(probe, benign, 0.05, heldout_fpr=0.05)
    # fpr_threshold's rule: one row inside the budget (4 of 100 flagged at 5%), the margin earlier thresholds used
    assert (benign > moved.threshold).sum() == 4
    assert moved.weights is probe.weights and moved.bias == probe.bias and moved.scale == 2.0
    assert moved.meta == {"cv": 1, "heldout_fpr": 0.05} and probe.threshold == 1.25
    with pytest.raises(AlignBeamError, match="max_fpr"):
        P.retarget(probe, benign, 1.5)
