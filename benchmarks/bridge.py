"""Bridge and re-sync cost per step, per tokenizer pair.

translate: top-B anchor tokens -> draft vocabulary (B=50), table already built, on the anchor's real next-token
logits over the first 8 tokens of an answer (translate_b50_ms), and on a synthetic flat distribution where no
tail can be skipped (translate_b50_flat_ms: the worst case).
resync: re-encode the draft's response text with the anchor tokenizer and plan the anchor's truncation, per
step, over a 64-token response. Also the one-off table build time (cold, no disk cache).
Usage: python benchmarks/bridge.py [--reps 2000]. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from alignbeam import load_model
from alignbeam.method.bridge import Bridge, BridgeTable
from alignbeam.method.sync import TextSync

NAMES = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"]
TEXT = (
    "I'm sorry, but I can't help with that. If you are interested in chemistry, here is a safe experiment: "
    "mix baking soda and vinegar — it fizzes (CO₂). 日本語もOK 🙂."
)


def real_logits(name: str, n: int = 8) -> list[np.ndarray]:
    """The model's next-token logits at the first n positions of its own greedy answer to a question."""
    m = load_model(name)
    out = []
    with m.session(m.tokenizer.encode_chat([{"role": "user", "content": "How do I pick a lock?"}])) as s:
        for _ in range(n):
            lg = s.logits()
            out.append(lg.copy())
            m.step([s], [[int(np.argmax(lg))]])
    return out


def time_translate(br: Bridge, logits: list[np.ndarray], ctx: list[int], reps: int) -> float:
    for lg in logits:
        br.translate(lg, 50, context=ctx)
    t0 = time.perf_counter()
    for i in range(reps):
        br.translate(logits[i % len(logits)], 50, context=ctx)
    return (time.perf_counter() - t0) * 1000 / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument(
        "--pairs",
        default="qwen2.5-coder-1.5b:smollm2-135m,smollm2-135m:qwen2.5-coder-0.5b,"
        "qwen2.5-coder-1.5b:gemma3-270m,gemma3-270m:smollm2-135m,qwen2.5-coder-1.5b:qwen2.5-coder-0.5b",
    )
    a = ap.parse_args()
    toks = {n: load_model(n).tokenizer for n in NAMES}
    rows = []
    rng = np.random.default_rng(0)
    for pair in a.pairs.split(","):
        an, dn = pair.split(":")
        at, dt = toks[an], toks[dn]
        t0 = time.perf_counter()
        table = None if at.fingerprint() == dt.fingerprint() else BridgeTable.build(at, dt)
        build_ms = (time.perf_counter() - t0) * 1000
        br = Bridge(at, dt, "drop", table=table)
        real = real_logits(an)
        flat = rng.normal(size=at.vocab_size).astype(np.float32)
        flat[rng.choice(at.vocab_size, 80, replace=False)] += 8
        ctx = at.encode("Sure, here is")
        tr_ms, flat_ms = (time_translate(br, lg, ctx, a.reps) for lg in (real, [flat]))
        sync = TextSync(at, dt, br.identity)
        resp = dt.encode(TEXT)[:64]
        held: list[int] = []
        t0 = time.perf_counter()
        for n in range(1, len(resp) + 1):
            keep, feed = sync.plan(held, resp[:n])
            held = held[:keep] + feed
        resync_ms = (time.perf_counter() - t0) * 1000 / len(resp)
        row = {
            "anchor": an,
            "draft": dn,
            "identity": br.identity,
            "table_build_ms": round(build_ms, 1),
            "translate_b50_ms": round(tr_ms, 4),
            "translate_b50_flat_ms": round(flat_ms, 4),
            "resync_ms_per_step": round(resync_ms, 4),
        }
        rows.append(row)
        print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print(
        json.dumps(
            {
                "pairs": rows,
                "bridge_ms": max(r["translate_b50_ms"] for r in rows),
                "resync_ms": max(r["resync_ms_per_step"] for r in rows),
            }
        )
    )


if __name__ == "__main__":
    main()
