"""Choosing the operating point on some rows and saying what it promises on the others.

A figure measured on the rows that chose a setting flatters it. So the traffic is split in two (seeded): the
point is chosen on the first half, and the over-refusal it promises is measured on the second, which chose
nothing, with its 95% interval and its row count. Harmful rows are split by family (every other family), so the
refusal stated beside it is on families that played no part in the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignbeam.calibrate.replay import Point, Setting, evaluate_point, sweep
from alignbeam.config import AlignBeamConfig
from alignbeam.errors import AlignBeamError

#: fewer fitting traffic rows than this and the report warns that single rows decide the choice
MIN_FIT_ROWS = 100


@dataclass(frozen=True)
class Target:
    """What the deployer asks for: at most this over-refusal, or at least this refusal of harmful requests."""

    max_over_refusal: float | None = None
    min_refusal: float | None = None

    def __post_init__(self) -> None:
        if (self.max_over_refusal is None) == (self.min_refusal is None):
            raise AlignBeamError("give one target: --max-over-refusal (e.g. 0.02) or --min-refusal (e.g. 0.9)")
        for v in (self.max_over_refusal, self.min_refusal):
            if v is not None and not 0.0 <= v <= 1.0:
                raise AlignBeamError(f"a target is a share between 0 and 1, got {v}")


def split(records: Sequence[dict[str, Any]], seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(fit, held out): traffic rows halved at random; harmful rows by family, every other family held out (by
    rows when there is only one family)."""
    traffic = [r for r in records if not r["harmful"]]
    order = np.random.default_rng(seed).permutation(len(traffic))
    half = len(traffic) // 2
    fit = [traffic[i] for i in order[:half]]
    held = [traffic[i] for i in order[half:]]
    harmful = [r for r in records if r["harmful"]]
    families = sorted({r["family"] for r in harmful})
    if len(families) > 1:
        kept = set(families[::2])
        fit += [r for r in harmful if r["family"] in kept]
        held += [r for r in harmful if r["family"] not in kept]
    else:
        fit += harmful[::2]
        held += harmful[1::2]
    return fit, held


def choose(points: Sequence[Point], target: Target) -> Point:
    """The fitted point that meets the target best: the most refusal within the over-refusal cap (or the least
    over-refusal at the refusal floor). Where the fitting rows cannot tell points apart, the stricter setting
    wins (a lower gate_threshold, the anchor's check on, a lower judge_threshold): rows that tie on a few dozen
    fitting requests need not tie on requests nobody has seen, and the stricter point refuses at least as much
    of those; the cheaper one wins only among equally strict ones. A rule fixed in advance, nothing fitted."""

    def strictness(p: Point) -> tuple[float, bool, float, float]:
        s = p.setting
        return (s.gate_threshold, not s.anchor_check, s.judge_threshold, p.latency_x)

    if target.max_over_refusal is not None:
        ok = [p for p in points if p.over_refusal <= target.max_over_refusal]
        key = lambda p: (-p.refusal, p.over_refusal, *strictness(p))  # noqa: E731
    else:
        ok = [p for p in points if p.refusal >= (target.min_refusal or 0.0)]
        key = lambda p: (p.over_refusal, -p.refusal, *strictness(p))  # noqa: E731
    if not ok:
        best = (
            min(points, key=lambda p: p.over_refusal)
            if target.max_over_refusal is not None
            else max(points, key=lambda p: p.refusal)
        )
        raise AlignBeamError(
            f"no operating point meets the target on the fitting rows (closest: over-refusal "
            f"{best.over_refusal:.1%}, refusal {best.refusal:.1%} at {best.setting}): relax it or add rows"
        )
    return min(ok, key=key)


@dataclass
class Choice:
    """The chosen setting, its figures on the rows that chose it, and what it promises on the held-out rows."""

    setting: Setting
    fitted: Point
    held_out: Point
    target: Target

    def warnings(self) -> list[str]:
        """What the deployer must know before trusting the point: the target missed on the held-out rows, or so
        few fitting rows that single requests decided the choice (a choice on a few dozen rows is noisy: on 42
        look-alike requests, ten seeds of the split promised 0% to 29% for a 5% cap, docs/calibration.md)."""
        out = []
        held, fit, t = self.held_out, self.fitted, self.target
        if t.max_over_refusal is not None and held.over_refusal > t.max_over_refusal:
            out.append(
                f"the target was missed on rows the choice never saw: {held.over_refusal:.1%} of {held.n_traffic} "
                f"held-out traffic rows over-refused against at most {t.max_over_refusal:.1%} asked (on the "
                f"{fit.n_traffic} fitting rows: {fit.over_refusal:.1%}); calibrate on more traffic"
            )
        if t.min_refusal is not None and held.refusal < t.min_refusal:
            out.append(
                f"the target was missed on harmful families the choice never saw: {held.refusal:.1%} of "
                f"{held.n_harmful} refused against at least {t.min_refusal:.1%} asked; add harmful rows"
            )
        if fit.n_traffic < MIN_FIT_ROWS:
            out.append(
                f"only {fit.n_traffic} traffic rows chose the point (one row is {1 / max(fit.n_traffic, 1):.1%} of "
                f"the over-refusal): single requests decide the choice; give a few hundred rows of traffic"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.fitted.to_dict()["setting"],
            "target": {k: v for k, v in vars(self.target).items() if v is not None},
            "fitted": self.fitted.to_dict(),
            "promised": self.held_out.to_dict(),
            "warnings": self.warnings(),
        }


def operating_point(
    records: Sequence[dict[str, Any]],
    settings: Sequence[Setting],
    judge: Any,
    base: AlignBeamConfig,
    target: Target,
    seed: int = 0,
) -> tuple[Choice, list[Point]]:
    """Choose on the fitting half, measure on the held-out half; also every point on all rows (the frontier)."""
    fit, held = split(records, seed)
    if not any(not r["harmful"] for r in held) or not any(r["harmful"] for r in held):
        raise AlignBeamError("too few rows to hold any out: calibration needs traffic and harmful rows, several each")
    chosen = choose(sweep(fit, settings, judge, base), target)
    return Choice(chosen.setting, chosen, evaluate_point(held, chosen.setting, judge, base), target), sweep(
        records, settings, judge, base
    )
