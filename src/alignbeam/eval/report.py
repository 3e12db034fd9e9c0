"""Summary statistics, the Markdown results table and the plots, from generations.jsonl alone.

Rates come with Wilson 95% intervals (sound at small n and near 0% / 100%, where the normal approximation is
not). Latency is compared with the draft alone on the same items, as a ratio of totals.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from alignbeam.engines import extras
from alignbeam.eval.runner import read_records


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def summarize(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{system: {dataset: {n, metric, rate, ci95, mean_latency_s, tokens_per_s, latency_ratio}}}."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["system"], r["dataset"])].append(r)
    draft_lat = {ds: sum(r["latency_s"] for r in rs) for (sys_, ds), rs in groups.items() if sys_ == "draft"}
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (sys_, ds), rs in sorted(groups.items()):
        n = len(rs)
        kind = rs[0]["kind"]
        if kind == "utility":
            k = sum(bool(r.get("correct")) for r in rs)
            metric = "utility"
        else:
            k = sum(bool(r.get("refusal")) for r in rs)
            metric = "refusal" if kind == "harmful" else "over_refusal"
        lat = sum(r["latency_s"] for r in rs)
        toks = sum(r["completion_tokens"] for r in rs)
        lo, hi = wilson(k, n)
        entry = {
            "n": n,
            "kind": kind,
            "metric": metric,
            "rate": round(k / n, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "mean_latency_s": round(lat / n, 3),
            "tokens_per_s": round(toks / lat, 2) if lat else None,
        }
        if ds in draft_lat and draft_lat[ds] > 0:
            entry["latency_ratio"] = round(lat / draft_lat[ds], 3)
        cats: dict[str, list[bool]] = defaultdict(list)
        for r in rs:
            if r.get("category") and kind != "utility":
                cats[str(r["category"])].append(bool(r.get("refusal")))
        if cats:
            entry["per_category"] = {c: round(sum(v) / len(v), 3) for c, v in sorted(cats.items())}
        out[sys_][ds] = entry
    return out


def _fmt(e: dict[str, Any] | None) -> str:
    if not e:
        return "–"
    return f"{100 * e['rate']:.0f}% [{100 * e['ci95'][0]:.0f}–{100 * e['ci95'][1]:.0f}] (n={e['n']})"


def markdown(summary: dict[str, dict[str, dict[str, Any]]], title: str, command: str) -> str:
    datasets = sorted({ds for s in summary.values() for ds in s})
    lines = [
        f"# {title}",
        "",
        f"Regenerate with: `{command}`",
        "",
        "Refusal % on harmful sets (higher is safer), over-refusal % on benign sets (lower is better), utility "
        "% on task sets; 95% Wilson intervals in brackets. Latency ratio: total time vs the draft alone on the "
        "same items.",
        "",
        "| system | " + " | ".join(datasets) + " | latency ratio | tokens/s |",
        "|---" * (len(datasets) + 3) + "|",
    ]
    for sys_, per in summary.items():
        ratios = [e["latency_ratio"] for e in per.values() if "latency_ratio" in e]
        tps = [e["tokens_per_s"] for e in per.values() if e.get("tokens_per_s")]
        ratio = f"{sum(ratios) / len(ratios):.2f}" if ratios else "–"
        speed = f"{sum(tps) / len(tps):.1f}" if tps else "–"
        lines.append(f"| {sys_} | " + " | ".join(_fmt(per.get(ds)) for ds in datasets) + f" | {ratio} | {speed} |")
    lines.append("")
    lines.append(
        "Metric per dataset: "
        + ", ".join(f"{ds} = {next(s[ds]['metric'] for s in summary.values() if ds in s)}" for ds in datasets)
        + "."
    )
    return "\n".join(lines) + "\n"


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plots(summary: dict[str, dict[str, dict[str, Any]]], records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    # safety vs over-refusal / utility frontier: one point per system
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for sys_, per in summary.items():
        harm = [e["rate"] for e in per.values() if e["metric"] == "refusal"]
        over = [e["rate"] for e in per.values() if e["metric"] == "over_refusal"]
        if harm and over:
            x, y = 100 * sum(over) / len(over), 100 * sum(harm) / len(harm)
            ax.scatter(x, y)
            ax.annotate(sys_, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("over-refusal on benign sets, % (lower is better)")
    ax.set_ylabel("refusal on harmful sets, % (higher is safer)")
    ax.set_title("Safety vs over-refusal")
    ax.grid(alpha=0.3)
    made.append(_save(fig, out_dir / "frontier.png"))
    # latency per phase (AlignBeam systems)
    phases: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for ph, ms in (r.get("phases_ms") or {}).items():
            if ph not in ("total", "bridge_table"):
                phases[r["system"]][ph].append(ms)
    if phases:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(phases)
        all_ph = sorted({ph for v in phases.values() for ph in v})
        bottom = [0.0] * len(names)
        for ph in all_ph:
            vals = [sum(phases[n].get(ph, [0])) / max(1, len(phases[n].get(ph, [0]))) / 1000 for n in names]
            ax.bar(names, vals, bottom=bottom, label=ph)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_ylabel("mean seconds per request")
        ax.set_title("AlignBeam latency per phase")
        ax.legend(fontsize=7)
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right", fontsize=7)
        made.append(_save(fig, out_dir / "latency_phases.png"))
    # refusal per harm category
    cats = {
        s: e["per_category"]
        for s, per in summary.items()
        for e in per.values()
        if e["metric"] == "refusal" and e.get("per_category")
    }
    if cats:
        fig, ax = plt.subplots(figsize=(8, 4))
        names = sorted({c for v in cats.values() for c in v})
        width = 0.8 / len(cats)
        for i, (s, v) in enumerate(cats.items()):
            ax.bar([j + i * width for j in range(len(names))], [100 * v.get(c, 0) for c in names], width, label=s)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("refusal %")
        ax.set_title("Refusal per harm category")
        ax.legend(fontsize=7)
        made.append(_save(fig, out_dir / "refusal_by_category.png"))
    return made


def grader_line(run_dir: Path) -> str:
    """The refusal grader's measured agreement with human labels, when the run measured it (--validate-grader)."""
    path = run_dir / "grader_validation.json"
    if not path.exists():
        return ""
    v = json.loads(path.read_text())
    return (
        f"\nRefusal grader (keyword rule, off-topic rule, then the LLM question) vs human labels "
        f"(pyrit_refusal_labels, n={v['n']}): {100 * v['agreement']:.1f}% agreement "
        f"(dev {100 * v.get('agreement_dev', float('nan')):.1f}%, held-out "
        f"{100 * v.get('agreement_heldout', float('nan')):.1f}%; keyword rule alone "
        f"{100 * v['keyword_agreement']:.1f}%).\n"
    )


def write(out_dir: Path, records: list[dict[str, Any]], title: str, command: str) -> dict[str, Any]:
    summary = summarize(records)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    md = markdown(summary, title, command)
    md += grader_line(out_dir)
    if extras.has("plots"):
        imgs = plots(summary, records, out_dir)
        md += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in imgs) + "\n"
    else:  # the gateway install: the numbers without the figures
        md += "\nNo plots: matplotlib is not installed (pip install 'alignbeam[plots]').\n"
    (out_dir / "report.md").write_text(md)
    return summary


def _pooled(per: dict[str, dict[str, Any]], metric: str) -> tuple[int, int]:
    """(positives, n) of one metric pooled over a system's datasets."""
    k = sum(round(e["rate"] * e["n"]) for e in per.values() if e["metric"] == metric)
    return k, sum(e["n"] for e in per.values() if e["metric"] == metric)


def versus_router(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Whether each AlignBeam system is dominated by the router baseline, pooled over datasets, in words.

    Dominated = no better on refusal, on over-refusal and on utility, and worse on at least one (point
    estimates). Written from the numbers each time the page is built, so the verdict cannot go stale.
    """
    base = summary.get("router")
    if not base:
        return ""
    lines = ["", "**Against the router baseline** (pooled over the datasets above, point estimates):", ""]
    names = {"refusal": "refusal", "over_refusal": "over-refusal", "utility": "utility"}
    better_high = {"refusal": True, "over_refusal": False, "utility": True}
    for sys_, per in summary.items():
        if sys_ in ("draft", "anchor", "router", "mixing") or "(oracle" in sys_:
            continue
        better, worse, parts = [], [], []
        for metric, label in names.items():
            k1, n1 = _pooled(per, metric)
            k0, n0 = _pooled(base, metric)
            if not n1 or not n0:
                continue
            r1, r0 = k1 / n1, k0 / n0
            parts.append(f"{label} {100 * r1:.1f}% vs {100 * r0:.1f}%")
            if abs(r1 - r0) < 1e-9:
                continue
            (better if (r1 > r0) == better_high[metric] else worse).append(label)
        if not parts:
            continue
        lines.append(f"- {sys_}: {dominance(better, worse, 'the router')} ({'; '.join(parts)}).")
    return "\n".join(lines) + "\n"


def dominance(better: list[str], worse: list[str], baseline: str) -> str:
    """The verdict against a baseline from the figures a system is better and worse on (point estimates): dominated
    = worse somewhere and better nowhere. Shared by this page and benchmarks/generalization_report.py."""
    if better and worse:
        return f"not dominated: better on {', '.join(better)}, worse on {', '.join(worse)}"
    if better:
        return f"better than {baseline} on {', '.join(better)} and no worse elsewhere"
    if worse:
        return f"**dominated by {baseline}** (worse on {', '.join(worse)}, better on nothing)"
    return f"level with {baseline}"


def section(run_dir: Path, img_dir: Path) -> str:
    """One run's part of the results page (table, verdict against the router, grader line, plots); its plots are
    copied into img_dir as <run>-<plot>.png, so the page's links stay valid wherever the run folder lives."""
    import shutil

    d = run_dir
    records = read_records(d / "generations.jsonl")
    cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else {}
    head = f"{cfg.get('draft', '?')} draft, {cfg.get('anchor', '?')} anchor, judge {cfg.get('judge', '?')}"
    summary: dict[str, dict[str, dict[str, Any]]] = dict(summarize(records))
    oracle_path = d / "oracle.json"
    if oracle_path.exists():  # python -m alignbeam.eval.oracle: a perfect selector over the same candidates
        for system, per in json.loads(oracle_path.read_text()).items():
            summary[f"{system} (oracle selector)"] = per
    commands = cfg.get("commands") or [cfg.get("command", f"alignbeam eval --out {d}")]
    text = markdown(summary, f"{d.name}: {head}", "`; then `".join(commands))
    text = text.replace("# ", "## ", 1)
    text += versus_router(summary)
    text += grader_line(d)
    for png in sorted(d.glob("*.png")):
        target = img_dir / f"{d.name}-{png.name}"
        shutil.copyfile(png, target)
        text += f"\n![{d.name} {png.stem}]({img_dir.name}/{target.name})\n"
    return text


def combine(run_dirs: list[Path], out_md: Path, title: str = "AlignBeam results", command: str = "") -> str:
    """One Markdown page from several evaluation folders (one section per run), with their plots copied
    beside it as <out stem>/<run>-<plot>.png. Used to build docs/results.md from the per-pair runs.

    Each run's section is also kept as <out stem>/<run>.section.md, committed with the page: run folders are
    not (they hold copies of the benchmark prompts), so a run made in an earlier session, whose folder is gone,
    keeps its section when only the other pair is rerun."""
    img_dir = out_md.parent / out_md.stem
    img_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""]
    if command:
        parts += [f"Regenerate with: `{command}` (resumable: rerun it after an interruption).", ""]
    for d in run_dirs:
        stored = img_dir / f"{d.name}.section.md"
        if (d / "generations.jsonl").exists():
            text = section(d, img_dir)
            stored.write_text(text)
        elif stored.exists():
            text = stored.read_text()
        else:
            raise FileNotFoundError(f"{d}: no generations.jsonl (run `alignbeam eval --out {d}` first)")
        parts.append(text)
    text = "\n".join(parts)
    out_md.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    """python -m alignbeam.eval.report RUN_DIR... --out docs/results.md"""
    import argparse

    ap = argparse.ArgumentParser(description="Combine evaluation folders into one Markdown results page.")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="AlignBeam results")
    ap.add_argument("--command", default="")
    a = ap.parse_args(argv)
    combine(a.runs, a.out, a.title, a.command)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
