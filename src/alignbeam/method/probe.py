"""The request probe: a trained linear read-out of the judge's logits at the request classifier's answer slot.

The zero-shot classifier reads log P(UNSAFE) - log P(SAFE) there: one fixed direction of the model's final state.
The logits are a linear map of that state, so a logistic regression on them is a linear probe on the state itself
and can use whatever the model encodes about the request. It is trained per judge model and per classifier prompt
(benchmarks/request_probe.py) and stored as one vector over the vocabulary; at inference it costs one dot product
on logits the classifier has already computed. A probe whose prompt fingerprint no longer matches is not used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignbeam.errors import AlignBeamError

PROBE_DIR = Path(__file__).resolve().parent / "probes"


def probe_path(model_name: str) -> Path:
    return PROBE_DIR / f"{model_name}.npz"


@dataclass
class RequestProbe:
    """score(logits) = logits . weights + bias, a log-odds that the request is harmful; `threshold` is the score
    the operating point was fitted at (P(harmful) = 0.5 there after the judge's calibration), `scale` its width."""

    weights: np.ndarray
    bias: float
    threshold: float
    model_name: str
    prompt_fingerprint: str
    scale: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        x = np.asarray(logits, dtype=np.float32)
        if x.shape[-1] != self.weights.shape[0]:
            raise AlignBeamError(
                f"the request probe for {self.model_name} expects {self.weights.shape[0]} logits, the model gave "
                f"{x.shape[-1]}: it was trained on another model under this name; retrain it with "
                "benchmarks/request_probe.py --write, or pass request_probe=False to the judge"
            )
        return x @ self.weights + self.bias

    def score(self, logits: np.ndarray) -> float:
        return float(self.scores(logits[None, :])[0])

    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {
            "bias": self.bias,
            "threshold": self.threshold,
            "scale": self.scale,
            "model_name": self.model_name,
            "prompt_fingerprint": self.prompt_fingerprint,
            "meta": meta if meta is not None else self.meta,
        }
        with path.open("wb") as f:
            np.savez_compressed(f, weights=self.weights.astype(np.float32), info=np.array(json.dumps(info)))

    @classmethod
    def load(cls, path: Path) -> RequestProbe:
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = z["weights"].astype(np.float32)
                info = json.loads(str(z["info"]))
        except (OSError, KeyError, ValueError) as e:
            raise AlignBeamError(f"cannot read the request probe {path}: {e}; retrain it or delete the file") from e
        return cls(
            weights,
            float(info["bias"]),
            float(info["threshold"]),
            str(info["model_name"]),
            str(info["prompt_fingerprint"]),
            float(info.get("scale", 1.0)),
            dict(info.get("meta", {})),
        )


def prompt_fingerprint_of(system: str, prompt: str) -> str:
    """Names a classifier prompt (its system and user texts): a trained probe, and a benchmark's cached read-outs,
    are only valid for the prompt they saw, so they are stored under this name and checked against it."""
    return hashlib.sha1(repr((system, prompt)).encode()).hexdigest()[:10]


def find_probe(model_name: str, prompt_fingerprint: str) -> RequestProbe | None:
    """The packaged probe for this judge model, if one exists and was trained with this classifier prompt."""
    path = probe_path(model_name)
    if not path.exists():
        return None
    probe = RequestProbe.load(path)
    return probe if probe.prompt_fingerprint == prompt_fingerprint else None


def fpr_threshold(benign_scores: np.ndarray, max_fpr: float) -> float:
    """A threshold that flags at most `max_fpr` of these harmless requests (request_classifier.py's rule).

    It is the score of the harmless row at the ceil(n * (1 - max_fpr)) position of the sorted scores, so with
    distinct scores it flags max(0, floor(n * max_fpr) - 1) rows: one row inside the budget, a margin that the
    earlier thresholds (3.14, 1.93, 1.24, 1.49) were all set with; kept so that they reproduce."""
    s = np.sort(np.asarray(benign_scores, dtype=np.float64))
    return float(s[min(len(s) - 1, int(np.ceil(len(s) * (1 - max_fpr))))])


def retarget(probe: RequestProbe, benign_scores: np.ndarray, max_fpr: float, **meta: Any) -> RequestProbe:
    """The same probe at another operating point: the threshold that flags at most `max_fpr` of these harmless
    requests' scores. Moving the operating point needs no refit, and refits are not bit-reproducible (the fit is
    nearly separable, so the weights move with the solver's path): keeping the weights keeps every earlier
    measurement of the ranking valid."""
    if not 0.0 <= max_fpr < 1.0:
        raise AlignBeamError(f"max_fpr is a share of harmless requests in [0, 1), got {max_fpr!r}")
    return RequestProbe(
        probe.weights,
        probe.bias,
        fpr_threshold(benign_scores, max_fpr),
        probe.model_name,
        probe.prompt_fingerprint,
        probe.scale,
        {**probe.meta, **meta},
    )


@dataclass
class ProbeFit:
    weights: np.ndarray  # over the vocabulary
    bias: float
    oof: np.ndarray  # out-of-fold scores of the training rows, with the chosen regularisation
    cv_report: dict[str, float]


def fit_probe(
    x: np.ndarray, y: np.ndarray, seed: int = 0, cs: tuple[float, ...] = (1.0, 1e2, 1e3, 1e4, 1e5), folds: int = 5
) -> ProbeFit:
    """L2 logistic regression on logits (n x vocab), in the span of the training rows.

    Centred rows are rotated onto their principal axes first (an n x n eigenproblem instead of n x vocab): L2 is
    invariant under that rotation and the optimum lies in the rows' span, so this is the same model, fitted in n
    dimensions. C is chosen by stratified k-fold AUROC; the out-of-fold scores come from the chosen C.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold
    except ImportError as e:  # training only; inference needs numpy alone
        raise AlignBeamError("training a request probe needs scikit-learn: pip install 'alignbeam[dev]'") from e
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=bool)
    mu = x.mean(axis=0)
    xc = x - mu
    gram = (xc.astype(np.float64) @ xc.T.astype(np.float64)) if len(xc) < 4096 else None
    if gram is None:
        raise AlignBeamError("fit_probe works in the span of the rows: use fewer than 4096 training requests")
    lam, u = np.linalg.eigh(gram)
    keep = lam > lam.max() * 1e-9
    lam, u = lam[keep], u[:, keep]
    z = u * np.sqrt(lam)  # coordinates on the principal axes
    z /= np.sqrt(lam.max())  # one overall scale, so the C grid means the same for any model's logit range
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    report: dict[str, float] = {}
    best: tuple[float, float, np.ndarray] | None = None
    for c in cs:
        oof = np.zeros(len(y))
        for tr, te in skf.split(z, y):
            m = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(z[tr], y[tr])
            oof[te] = m.decision_function(z[te])
        a = float(roc_auc_score(y, oof))
        report[f"C={c:g}"] = round(a, 4)
        if best is None or a > best[0]:
            best = (a, c, oof)
    assert best is not None
    _, c, oof = best
    m = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(z, y)
    # back to the vocabulary: score = z . coef + b, z = xc . v with v = xc^T u / sqrt(lam) / sqrt(lam_max)
    v_coef = (u / np.sqrt(lam)) @ m.coef_[0] / np.sqrt(lam.max())
    weights = (xc.T.astype(np.float64) @ v_coef).astype(np.float32)
    bias = float(m.intercept_[0] - mu.astype(np.float64) @ weights)
    report["chosen C"] = c
    return ProbeFit(weights, bias, oof, report)
