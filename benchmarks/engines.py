"""Engine throughput: load time, prefill and decode tokens/s, batched decode tokens/s and peak RSS.

Each (engine, model) runs in its own subprocess so that peak RSS is that model's alone.
Usage: python benchmarks/engines.py [--engines llamacpp,hf] [--models smollm2-135m,...] [--decode 64]
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

PROMPT = (
    "You are reviewing a pull request. Summarise the change below in three bullet points and point out one risk.\n"
    + "def merge(a, b):\n    out = dict(a)\n    for k, v in b.items():\n        out[k] = out.get(k, 0) + v\n"
    "    return out\n" * 6
)


def one(engine: str, model: str, n_decode: int, batch: int) -> dict:
    from alignbeam import load_model

    t0 = time.perf_counter()
    m = load_model(model, engine=engine)
    load_s = time.perf_counter() - t0
    ids = m.tokenizer.encode_chat([{"role": "user", "content": PROMPT}])
    # warm-up (first-call allocations)
    with m.session(ids[:16]) as s:
        s.extend([int(np.argmax(s.logits()))])
    t0 = time.perf_counter()
    s = m.session(ids)
    prefill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(n_decode):
        s.extend([int(np.argmax(s.logits()))])
    decode_s = time.perf_counter() - t0
    forks = [s.fork() for _ in range(batch)]
    t0 = time.perf_counter()
    for _ in range(n_decode):
        m.step(forks, [[int(np.argmax(f.logits()))] for f in forks])
    batch_s = time.perf_counter() - t0
    return {
        "engine": engine,
        "model": model,
        "load_s": round(load_s, 2),
        "prefill_tokens": len(ids),
        "prefill_tok_s": round(len(ids) / prefill_s, 1),
        "decode_tok_s": round(n_decode / decode_s, 1),
        f"batch{batch}_decode_total_tok_s": round(batch * n_decode / batch_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="llamacpp,hf")
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--decode", type=int, default=48)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], a.one[1], a.decode, a.batch)))
        return
    rows = []
    for engine in a.engines.split(","):
        for model in a.models.split(","):
            cmd = [sys.executable, __file__, "--one", engine, model, "--decode", str(a.decode), "--batch", str(a.batch)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{engine} {model}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(row)
            print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print(json.dumps({"engines": rows}))


if __name__ == "__main__":
    main()
