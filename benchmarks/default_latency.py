"""Latency of the default configuration against the draft alone, on the paper-shaped pair, at natural length.

The paper's setting is a large specialist draft and a small safety anchor: here draft qwen2.5-coder-1.5b, anchor
qwen2.5-coder-0.5b, and the judge on the draft's own loaded model (qwen2.5-coder-1.5b, the model the packaged request
probe was trained for, so prompt gating is calibrated; no second copy is loaded). Each prompt is answered by the
draft alone and by each configuration, interleaved, one after another in one process, so every ratio compares
the same prompts under the same machine load. Responses end where the models end them (at most --tokens), so a
ratio also measures how long each system chose to answer: a refusal is short.

Prompts: harmless from JBB benign and XSTest safe, harmful from AdvBench and HarmBench's past-tense rewording
(eval/datasets/transforms.py), none of them rows of the benchmarks that fitted the request probe's threshold
(docs/results.md says which sets shaped what). Reported per kind: the median over prompts of (configuration
latency / draft latency on the same prompt), the pooled ratio (sum / sum), and which route each request took.

Usage: python benchmarks/default_latency.py [--per-kind 6] [--tokens 256] [--configs recommended,paper]
       [--draft M --anchor M --judge M] [--out runs/default_latency.jsonl]
Rows are appended to --out as they finish (an interrupted run resumes); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from alignbeam import AlignBeam
from alignbeam.engines.loader import load_model
from alignbeam.eval import datasets as D
from alignbeam.eval.datasets.transforms import reword


def prompts(per_kind: int) -> list[tuple[str, str, str]]:
    """(kind, set, prompt), harmless and harmful alternating."""
    half = max(1, per_kind // 2)
    harmless = [
        ("harmless", s, it.prompt) for s in ("jbb_benign", "xstest_safe") for it in D.sample(D.load(s), half, 3)
    ]
    harmful = [("harmful", "advbench", it.prompt) for it in D.sample(D.load("advbench"), half, seed=3)]
    harmful += [
        ("harmful", "harmbench~past_tense", reword("past_tense", it.prompt))
        for it in D.sample(D.load("harmbench"), per_kind - half, seed=3)
    ]
    harmless = harmless[:per_kind]
    out = []
    for a, b in zip(harmless, harmful, strict=False):
        out += [a, b]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draft", default="qwen2.5-coder-1.5b")
    ap.add_argument("--anchor", default="qwen2.5-coder-0.5b")
    ap.add_argument("--judge", default=None, help="default: the draft's loaded model")
    ap.add_argument("--per-kind", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--configs", default="recommended", help="presets to compare with the draft (comma-separated)")
    ap.add_argument("--out", type=Path, default=Path("runs") / "default_latency.jsonl")
    a = ap.parse_args()
    draft = load_model(a.draft)
    judge = draft if a.judge in (None, a.draft) else load_model(a.judge)
    ab = AlignBeam(draft=draft, anchor=load_model(a.anchor), judge=judge, preset="paper")
    configs = [c for c in a.configs.split(",") if c]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if a.out.exists():
        for line in a.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["system"], r["prompt"])] = r
    ab.generate_draft("Say hello.", max_new_tokens=4)  # warm-up: first-call allocations
    from alignbeam.config import preset

    with a.out.open("a") as f:
        for kind, name, p in prompts(a.per_kind):
            for system in ["draft", *configs]:
                if (system, p) in done:
                    continue
                t0 = time.perf_counter()
                if system == "draft":
                    r = ab.generate_draft(p, max_new_tokens=a.tokens)
                    route = None
                else:
                    cfg = preset(system, max_new_tokens=a.tokens).to_dict()
                    r = ab.generate(p, trace=True, **cfg)
                    route = r.trace.route
                rec = {
                    "system": system,
                    "kind": kind,
                    "set": name,
                    "prompt": p,
                    "latency_s": round(time.perf_counter() - t0, 3),
                    "tokens": r.completion_tokens,
                    "route": route,
                    "text": r.text[:200],
                }
                f.write(json.dumps(rec) + "\n")
                f.flush()
                done[(system, p)] = rec
                print(system, kind, route, rec["latency_s"], rec["tokens"], flush=True)
    summary: dict[str, Any] = {"draft": a.draft, "anchor": a.anchor, "judge": judge.name, "tokens": a.tokens}
    for system in configs:
        for kind in ("harmless", "harmful"):
            pairs = [
                (done[(system, p)]["latency_s"], done[("draft", p)]["latency_s"])
                for k, _, p in prompts(a.per_kind)
                if k == kind and (system, p) in done and ("draft", p) in done
            ]
            if not pairs:
                continue
            routes: dict[str, int] = {}
            for k, _, p in prompts(a.per_kind):
                if k == kind and (system, p) in done:
                    rt = str(done[(system, p)]["route"])
                    routes[rt] = routes.get(rt, 0) + 1
            summary[f"{system}/{kind}"] = {
                "n": len(pairs),
                "median_ratio": round(statistics.median(x / y for x, y in pairs), 2),
                "pooled_ratio": round(sum(x for x, _ in pairs) / sum(y for _, y in pairs), 2),
                "draft_s_median": round(statistics.median(y for _, y in pairs), 2),
                "routes": routes,
            }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
