"""llama.cpp thread counts on an idle host and next to a busy process: the evidence behind the default.

llama.cpp's worker threads spin while they wait for each other. With one thread per core and another process
busy on one of the cores, every step waits for the thread that was descheduled, and decoding can slow by two
orders of magnitude. This times the same work (a prompt prefill and greedy decoding) for each thread count, first
on an idle host, then with `--busy` processes spinning, each setting in a fresh process so nothing is shared.

Settings: a number of threads (decode and prefill), "all" (every core for both: the old default) or "default"
(what the engine picks when none is given: engines.llamacpp.default_threads, every core but one).

Usage: python benchmarks/threads.py [--model smollm2-135m] [--threads 1,2,all,default] [--busy 1] [--tokens 16]
The last line is one JSON object: seconds per setting, idle and busy, and the ratio of each to the best.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

_CHILD = r"""
import json, sys, time
from alignbeam.engines import load_model
name, threads, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
import os
opts = {} if threads == "default" else {"n_threads": os.cpu_count() if threads == "all" else int(threads)}
m = load_model(name, **opts)
prompt = m.tokenizer.encode_chat([{"role": "user", "content": "Explain how a bicycle gear works. " * 12}])
m.generate_greedy(prompt[:32], 2)  # warm up
t0 = time.perf_counter()
with m.session(prompt) as s:
    s.logits()
prefill = time.perf_counter() - t0
t0 = time.perf_counter()
m.generate_greedy(prompt, tokens, ignore_eos=True)
print(json.dumps({"prefill_s": round(prefill, 3), "decode_s": round(time.perf_counter() - t0 - prefill, 3)}))
"""


def run(model: str, threads: str, tokens: int, timeout: float) -> dict[str, float] | None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, model, threads, str(tokens)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return None  # slower than the timeout: reported as such
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", default="1,all,default")
    ap.add_argument("--busy", type=int, default=1, help="spinning processes in the busy phase")
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    settings = args.threads.split(",")
    results: dict[str, dict[str, dict[str, float] | None]] = {"idle": {}, "busy": {}}
    for t in settings:
        results["idle"][t] = run(args.model, t, args.tokens, args.timeout)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(0.5)
        for t in settings:
            results["busy"][t] = run(args.model, t, args.tokens, args.timeout)
    finally:
        for p in spinners:
            p.kill()
    print(f"cores: {os.cpu_count()}, model {args.model}, {args.tokens} tokens, {args.busy} busy process(es)")
    for phase, per in results.items():
        for t, r in per.items():
            shown = "timeout" if r is None else f"prefill {r['prefill_s']:.3f} s, decode {r['decode_s']:.3f} s"
            print(f"{phase:5} threads={t:8} {shown}")
    print(json.dumps({"cores": os.cpu_count(), "model": args.model, "tokens": args.tokens, **results}))


if __name__ == "__main__":
    main()
