"""What a calibration writes beside its records: every point (sweep.json), the frontier plot and report.md."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alignbeam.calibrate.run import Calibration


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def write_report(cal: Calibration) -> None:
    out = cal.out_dir
    (out / "sweep.json").write_text(
        json.dumps({"choice": cal.choice.to_dict(), "points": [p.to_dict() for p in cal.points]}, indent=1)
    )
    plot = _plot(cal)
    c, held, fit = cal.choice, cal.choice.held_out, cal.choice.fitted
    traffic = sum(not r["harmful"] for r in cal.records)
    harmful = len(cal.records) - traffic
    lines = [
        "# Calibration",
        "",
        f"{len(cal.records)} requests recorded ({traffic} traffic, {harmful} harmful); {len(cal.points)} operating "
        f"points replayed from the recorded reads in {cal.sweep_seconds:.1f} s.",
        "",
        f"**Chosen** (target {c.to_dict()['target']}): `{json.dumps(c.to_dict()['setting'])}`",
        "",
        "| rows | traffic over-refused (95% CI) | n | harmful refused (95% CI) | n | latency x draft |",
        "|---|---|---|---|---|---|",
        f"| that chose the point (tuning figures) | {_pct(fit.over_refusal)} | {fit.n_traffic} | "
        f"{_pct(fit.refusal)} | {fit.n_harmful} | {fit.latency_x} |",
        f"| **held out: what the point promises** | **{_pct(held.over_refusal)}** "
        f"({_pct(held.over_refusal_ci[0])}-{_pct(held.over_refusal_ci[1])}) | {held.n_traffic} | "
        f"{_pct(held.refusal)} ({_pct(held.refusal_ci[0])}-{_pct(held.refusal_ci[1])}) | {held.n_harmful} | "
        f"{held.latency_x} |",
        "",
        f"Over-refusal is what the safety layer adds (a refusal where the draft alone did not refuse); the draft "
        f"alone refused {_pct(held.draft_refusal)} of the {held.n_draft_graded} held-out traffic rows where some "
        "setting answers otherwise (the draft's answer is graded only there). "
        "The held-out traffic rows played no part in the choice, and the held-out harmful rows are whole families "
        "the choice never saw. The interval is what to expect on new traffic of the same kind; traffic of another "
        "kind needs its own calibration.",
        "",
        *[f"**Warning**: {w}.\n" for w in c.warnings()],
        f"## Frontier ({len(cal.frontier)} of {len(cal.points)} points: none beats them on all three, all rows)",
        "",
        "| gate_threshold | judge_threshold | anchor_check | on_all_unsafe | harmful refused | traffic over-refused "
        "| latency x draft |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in cal.frontier:
        s = p.setting
        lines.append(
            f"| {s.gate_threshold} | {s.judge_threshold} | {'on' if s.anchor_check else 'off'} | {s.on_all_unsafe} "
            f"| {_pct(p.refusal)} | {_pct(p.over_refusal)} | {p.latency_x} |"
        )
    if plot:
        lines += ["", f"![frontier]({plot})"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def _plot(cal: Calibration) -> str | None:
    """refusal of harmful rows against over-refusal of traffic, every point, latency as colour; None without
    matplotlib (the gateway install has no plots)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    xs = [100 * p.over_refusal for p in cal.points]
    ys = [100 * p.refusal for p in cal.points]
    sc = ax.scatter(xs, ys, c=[p.latency_x for p in cal.points], cmap="viridis", s=14, alpha=0.7)
    fig.colorbar(sc, ax=ax, label="median latency, x the draft alone")
    front = cal.frontier
    ax.plot([100 * p.over_refusal for p in front], [100 * p.refusal for p in front], "k-", lw=0.8, label="frontier")
    held = cal.choice.held_out
    ax.errorbar(
        [100 * held.over_refusal],
        [100 * held.refusal],
        xerr=[
            [100 * (held.over_refusal - held.over_refusal_ci[0])],
            [100 * (held.over_refusal_ci[1] - held.over_refusal)],
        ],
        yerr=[[100 * (held.refusal - held.refusal_ci[0])], [100 * (held.refusal_ci[1] - held.refusal)]],
        fmt="r*",
        ms=12,
        label="chosen, on held-out rows (95% CI)",
    )
    ax.set_xlabel("traffic over-refused (%)")
    ax.set_ylabel("harmful requests refused (%)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(cal.out_dir / "frontier.png", dpi=110)
    plt.close(fig)
    return "frontier.png"
