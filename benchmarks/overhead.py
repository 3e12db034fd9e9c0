"""AlignBeam's overhead over the draft alone, per phase, and against the floor of necessary work.

The same prompts (half harmful from AdvBench, half benign from JBB) go through the draft alone, AlignBeam with
full judging (the paper: all K candidates finished and judged), AlignBeam with early judging (judge_after=L) and
early judging with prompt gating (gate=True: a request the judge calls harmless goes to the draft alone),
interleaved in one process, for several repetitions. Two pairs: the embedded cross-vocabulary pair, and a
"paper-shaped" pair where the draft is the largest model (draft qwen2.5-coder-1.5b, anchor and judge
qwen2.5-coder-0.5b).

Work floor: after each full AlignBeam run, the same engine work is replayed in isolation with the recorded
tokens (draft and anchor prefill, N batched mixed steps of the K drafts and anchors, the batched continuation,
the judge's reads) and timed; work_floor_efficiency = AlignBeam end-to-end / that sum. It measures what the
method adds on top of the model calls it cannot avoid (bridge, re-sync, mixing, Python glue).

Equal length: by default every response is exactly --tokens long (ignore_eos: the end-of-turn token is masked, as in
vLLM's benchmarks), so a ratio compares the same amount of output. With --natural responses end where the models
end them; a ratio then also measures how long each system chose to answer (a refusal of 12 tokens against a
256-token story), not only the method's cost.

Usage: python benchmarks/overhead.py [--pairs cross,paper] [--prompts 4] [--reps 2] [--tokens 256] [--judge-after 32]
       [--natural] [--engine auto|llamacpp|hf] [--device cpu|cuda] [--draft M --anchor M] [--data DIR]
The last line is one JSON object; its top-level keys describe the paper-shaped pair (or the --draft/--anchor pair).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from alignbeam import AlignBeam
from alignbeam.engines.loader import load_model
from alignbeam.method.judge import SafetyJudge

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = {"cross": ("smollm2-135m", "qwen2.5-coder-1.5b"), "paper": ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")}


def prompts(n: int, data: Path = DATA) -> list[str]:
    with open(data / "advbench" / "harmful_behaviors.csv", newline="") as f:
        harmful = [r["goal"] for r in csv.DictReader(f)][200 : 200 + n // 2]
    with open(data / "jbb_behaviors" / "benign-behaviors.csv", newline="") as f:
        benign = [r["goal"] for r in csv.DictReader(f)][: n - n // 2]
    out = []
    for h, b in zip(harmful, benign, strict=False):
        out += [h, b]
    return out


def replay_floor(ab: AlignBeam, prompt: str, res, n_mix: int) -> float:
    """Time the model work of one AlignBeam run, replayed with its recorded tokens and no method code."""
    msgs = [{"role": "user", "content": prompt}]
    cands = res.trace.candidates
    d, a = ab.draft, ab.anchor
    t0 = time.perf_counter()
    d0 = d.session(d.tokenizer.encode_chat(msgs))
    a_prompt = a.tokenizer.encode_chat(msgs)
    a0 = a.session(a_prompt)
    ds = [d0] + [d0.fork() for _ in cands[1:]]
    anchors = [a0] + [a0.fork() for _ in cands[1:]]
    a_toks = [a.tokenizer.encode(d.tokenizer.decode(c.tokens[: n_mix - 1])) for c in cands]
    longest = max(len(c.tokens) for c in cands)
    for i in range(longest):
        live = [(s, c.tokens[i]) for s, c in zip(ds, cands, strict=True) if i < len(c.tokens)]
        if live:
            d.step([s for s, _ in live], [[t] for _, t in live])
        if i < n_mix - 1:
            al = [(s, t[i]) for s, t in zip(anchors, a_toks, strict=True) if i < len(t)]
            if al:
                a.step([s for s, _ in al], [[t] for _, t in al])
    for s in ds + anchors:
        s.close()
    ab.judge.score(msgs, [c.text for c in cands if not c.stopped_early])
    return time.perf_counter() - t0


def model_mb(path: str) -> float:
    p = Path(path)
    files = [f for f in p.rglob("*") if f.suffix in (".safetensors", ".bin", ".gguf")] if p.is_dir() else [p]
    return sum(f.stat().st_size for f in files) / 2**20


def run_pair(name: str, pair: tuple[str, str], ps: list[str], a: argparse.Namespace) -> dict:
    draft, anchor = pair
    reps, tokens, judge_after, k, n_mix = a.reps, a.tokens, a.judge_after, a.k, a.n_mix
    opts = {"device": a.device} if a.device else {}
    anchor_model = load_model(anchor, a.engine, **opts)
    ab = AlignBeam(
        draft=load_model(draft, a.engine, **opts),
        anchor=anchor_model,
        # --judge-reads-all: the judge reads every candidate even of a request it finds harmless (random-weight
        # twins classify requests at random, and a skipped read would make the judge look free)
        judge=SafetyJudge(anchor_model, gate=0.0) if a.judge_reads_all else "anchor",
        engine=a.engine,
        preset="paper",
        k=k,
        n_mix=n_mix,
        max_new_tokens=tokens,
        ignore_eos=not a.natural,
    )
    # prompt gating needs a judge whose request classifier was calibrated (the embedded Qwen-1.5B)
    can_gate = bool(getattr(ab.judge, "calibrated", False))
    # warm-up at full length on a prompt outside the set: bridge table, first-call allocations, and on a GPU the
    # kernels each new sequence length selects (measured: the first 256-token draft run took 3x the later ones)
    for _ in range(1 + int(bool(a.device and a.device.startswith("cuda")))):
        ab.generate_draft("Hello, how are you?")
        ab.generate("Hello, how are you?", judge_after=judge_after)
    rows = []
    for rep in range(reps):
        for p in ps:
            t0 = time.perf_counter()
            dr = ab.generate_draft(p)
            t_draft = time.perf_counter() - t0
            t0 = time.perf_counter()
            full = ab.generate(p, trace=True)
            t_full = time.perf_counter() - t0
            t0 = time.perf_counter()
            early = ab.generate(p, trace=True, judge_after=judge_after)
            t_early = time.perf_counter() - t0
            t0 = time.perf_counter()
            gated = ab.generate(p, trace=True, judge_after=judge_after, gate=True) if can_gate else None
            t_gated = time.perf_counter() - t0 if can_gate else float("nan")
            floor = replay_floor(ab, p, full, n_mix)
            rows.append(
                {
                    "rep": rep,
                    "prompt": p[:50],
                    "draft_s": t_draft,
                    "full_s": t_full,
                    "early_s": t_early,
                    "gated_s": t_gated,
                    "gated": bool(gated and gated.trace.gated),
                    "floor_s": floor,
                    "draft_tokens": dr.completion_tokens,
                    "full_tokens": full.completion_tokens,
                    "early_tokens": early.completion_tokens,
                    "phases_full": full.trace.timings_ms,
                    "phases_early": early.trace.timings_ms,
                }
            )
            print(
                f"[{name}] rep {rep} draft {t_draft:5.1f}s ({dr.completion_tokens} tok)  full {t_full:5.1f}s "
                f"({full.completion_tokens})  early {t_early:5.1f}s ({early.completion_tokens})  gated+early "
                f"{f'{t_gated:5.1f}s' if can_gate else '  n/a'}"
                f"{' (draft alone)' if gated and gated.trace.gated else ''}"
                f"  floor {floor:5.1f}s"
                f"  {p[:40]}",
                flush=True,
            )
    tot = {k2: sum(r[k2] for r in rows) for k2 in ("draft_s", "full_s", "early_s", "gated_s", "floor_s")}
    per_prompt_full = [r["full_s"] / r["draft_s"] for r in rows]
    per_prompt_early = [r["early_s"] / r["draft_s"] for r in rows]
    phases: dict[str, list[float]] = {}
    for r in rows:
        for ph, ms in r["phases_full"].items():
            phases.setdefault(ph, []).append(ms)
    bridge_calls = 1 + (n_mix - 1) * k  # priming once, then one translation per beam per mixed step
    return {
        "pair": name,
        "draft": draft,
        "anchor": anchor,
        "n_runs": len(rows),
        "max_new_tokens": tokens,
        "k": k,
        "n_mix": n_mix,
        "judge_after": judge_after,
        "equal_length": not a.natural,
        "engine": type(ab.draft).__name__,
        "device": a.device or "default",
        "ratio_full": round(tot["full_s"] / tot["draft_s"], 3),
        "ratio_early": round(tot["early_s"] / tot["draft_s"], 3),
        # prompt gating on top of early judging: harmless-looking requests go to the draft alone
        "ratio_gated_early": round(tot["gated_s"] / tot["draft_s"], 3) if can_gate else None,
        "gated_fraction": round(sum(r["gated"] for r in rows) / len(rows), 3) if can_gate else None,
        "ratio_full_median_per_prompt": round(statistics.median(per_prompt_full), 3),
        "ratio_early_median_per_prompt": round(statistics.median(per_prompt_early), 3),
        "ratio_full_spread": [round(min(per_prompt_full), 2), round(max(per_prompt_full), 2)],
        "ratio_early_spread": [round(min(per_prompt_early), 2), round(max(per_prompt_early), 2)],
        "work_floor_efficiency": round(tot["full_s"] / tot["floor_s"], 3),
        "phase_median_ms": {ph: round(statistics.median(v), 1) for ph, v in phases.items()},
        "bridge_ms": round(statistics.median(phases.get("bridge", [0.0])) / max(1, bridge_calls), 4),
        "resync_ms": round(statistics.median(phases.get("resync", [0.0])) / max(1, (n_mix - 1) * k), 4),
        "draft_tokens_mean": round(float(np.mean([r["draft_tokens"] for r in rows])), 1),
        "full_tokens_mean": round(float(np.mean([r["full_tokens"] for r in rows])), 1),
        "early_tokens_mean": round(float(np.mean([r["early_tokens"] for r in rows])), 1),
        "model_files_mb": round(
            sum(
                model_mb(m.info.path)
                for m in {id(ab.draft): ab.draft, id(ab.anchor): ab.anchor, id(ab.judge.model): ab.judge.model}.values()
            )
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="cross,paper", help="embedded pairs: cross, paper (comma-separated)")
    ap.add_argument("--draft", help="a pair of your own (with --anchor): model names, .gguf paths or HF folders")
    ap.add_argument("--anchor")
    ap.add_argument("--engine", default="auto", choices=("auto", "llamacpp", "hf"))
    ap.add_argument("--device", help="hf engine only: cpu | cuda")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared benchmark data folder")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--judge-after", type=int, default=32)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--n-mix", type=int, default=6)
    ap.add_argument("--natural", action="store_true", help="let responses end at end-of-turn (default: equal length)")
    ap.add_argument("--judge-reads-all", action="store_true", help="never skip reading a harmless request's candidates")
    a = ap.parse_args()
    if bool(a.draft) != bool(a.anchor):
        ap.error("--draft and --anchor go together")
    pairs = {"custom": (a.draft, a.anchor)} if a.draft else {n: PAIRS[n] for n in a.pairs.split(",") if n in PAIRS}
    unknown = [n for n in a.pairs.split(",") if n not in PAIRS]
    if not a.draft and (unknown or not pairs):
        ap.error(f"unknown pair(s) {unknown}: choose from {', '.join(PAIRS)}")
    if not (a.data / "advbench").is_dir():
        ap.error(f"no benchmark data under {a.data}: pass --data pointing at the shared data folder")
    results = {}
    if len(pairs) > 1:  # one subprocess per pair, so that peak RSS is that pair's alone
        rest, argv = [], iter(sys.argv[1:])
        for x in argv:
            if x == "--pairs":
                next(argv, None)
            elif not x.startswith("--pairs="):
                rest.append(x)
        for name in pairs:
            cmd = [sys.executable, __file__, *rest, "--pairs", name]
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
                assert proc.stdout is not None
                last = ""
                for line in proc.stdout:
                    print(line, end="", flush=True)  # the pair's progress lines, live
                    last = line
            if proc.returncode:
                sys.exit(f"the {name} pair failed (exit {proc.returncode})")
            results[name] = json.loads(last)["pairs"][name]
    else:
        name, pair = next(iter(pairs.items()))
        results[name] = run_pair(name, pair, prompts(a.prompts, a.data), a)
        results[name]["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
        print(json.dumps(results[name]), flush=True)
    main_pair = results.get("paper") or next(iter(results.values()))
    out = {
        key: main_pair[key]
        for key in ("ratio_full", "ratio_early", "ratio_gated_early", "work_floor_efficiency", "bridge_ms", "resync_ms")
    }
    out["equal_length"] = main_pair["equal_length"]
    out["peak_rss_mb"] = main_pair["peak_rss_mb"]
    out["model_files_mb"] = main_pair["model_files_mb"]
    out["pairs"] = results
    print(json.dumps(out))


if __name__ == "__main__":
    main()
