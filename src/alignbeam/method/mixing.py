"""P_mix = alpha * P~_anchor + (1 - alpha) * P_draft, in probability space over the draft vocabulary."""

from __future__ import annotations

import numpy as np

from alignbeam.method.bridge import Translation
from alignbeam.method.readout import softmax


def mix(draft_logits: np.ndarray, tr: Translation | None, alpha: float, support: str = "union") -> np.ndarray:
    """The mixed next-token distribution (float64, sums to 1).

    With no translation (alpha == 0, or the bridge kept nothing) the draft's own distribution is returned, so
    a fallback step is exactly a draft step. `support="anchor"` is the paper's literal variant: the mixture is
    restricted to the translated anchor support and renormalised.
    """
    p_d = softmax(draft_logits)
    if tr is None or tr.fallback or alpha == 0.0:
        return p_d
    if support == "anchor":
        out = np.zeros_like(p_d)
        out[tr.ids] = alpha * tr.probs + (1.0 - alpha) * p_d[tr.ids]
        return out / out.sum()
    out = (1.0 - alpha) * p_d
    out[tr.ids] += alpha * tr.probs
    return out


def anchor_share(token: int, tr: Translation | None, alpha: float, p_draft: float) -> float:
    """The anchor's share of the mixed probability of `token` (0: the draft alone chose it, 1: the anchor alone):
    alpha * P~_anchor(t) / (alpha * P~_anchor(t) + (1 - alpha) * P_draft(t)), the same under either support (the
    renormalisation of `support="anchor"` cancels). What a reader of the trace sees shaded per prefix token."""
    if tr is None or tr.fallback or alpha == 0.0:
        return 0.0
    q = float(tr.probs[tr.ids == token].sum())
    pulled = alpha * q
    total = pulled + (1.0 - alpha) * p_draft
    return pulled / total if total > 0 else 0.0
