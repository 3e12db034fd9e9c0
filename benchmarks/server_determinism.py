"""Does a llama-server give the same greedy answer, with the same log-probabilities, to the same request whatever
else it is doing? (#36: `eval --concurrency` must make the same decisions as one at a time.)

    flock /tmp/model.lock python benchmarks/server_determinism.py --model qwen2.5-coder-1.5b [--no-cache] [-- FLAGS]

Starts one llama-server as tests/slim/check_gateway.py does (16 slots, one thread, FLAGS added), and sends N
XSTest-safe requests (chat-formatted, greedy, 8 new tokens, the top 3 log-probabilities at each) four times: one
at a time, one at a time again, all at once, all at once again. Prints, for each pair of passes, how many answers
have the same text and the same log-probabilities (to 6 decimals), and the largest log-probability difference
between answers of the same text; the last line is JSON. `--no-cache`: each request with `cache_prompt: false`
(the request's field wins over the server's --no-cache-prompt).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.slim.check_gateway import free_port, start  # noqa: E402

from alignbeam import store  # noqa: E402
from alignbeam.eval.datasets import registry  # noqa: E402

Answer = tuple[str, list[list[float]]]


def compare(a: list[Answer], b: list[Answer]) -> dict:
    """Same texts, same log-probabilities, and the largest difference between answers of the same text (where the
    texts part, the positions after it hold other tokens)."""
    same = [(x, y) for x, y in zip(a, b) if x[0] == y[0]]
    diffs = [abs(u - v) for x, y in same for p, q in zip(x[1], y[1]) for u, v in zip(p, q)]
    return {
        "same_text": sum(x[0] == y[0] for x, y in zip(a, b)),
        "same_logprobs": sum(x[1] == y[1] for x, y in zip(a, b)),
        "max_logprob_diff": round(max(diffs, default=0.0), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--no-cache", action="store_true", help="cache_prompt: false in every request")
    ap.add_argument("--llama-server", default=str(ROOT / ".venv/bin/llama-server"))
    ap.add_argument("flags", nargs="*", help="more llama-server flags (after --)")
    args = ap.parse_args()
    port, tmp = free_port(), Path(tempfile.mkdtemp(prefix="alignbeam-determinism-"))
    argv = [args.llama_server, "-m", store.resolve(args.model).path, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["-np", "16", "-c", str(2048 * 16), "-t", "1", "-tb", "1", "--no-warmup", *args.flags]
    proc = start(argv, tmp / "llama.log", f"http://127.0.0.1:{port}/health")
    items = registry.load("xstest_safe", n=args.n, seed=1)
    prompts = [f"<|im_start|>user\n{it.prompt}<|im_end|>\n<|im_start|>assistant\n" for it in items]
    body = {"n_predict": 8, "temperature": 0.0, "top_k": 0, "min_p": 0.0, "n_probs": 3, "post_sampling_probs": False}
    body["cache_prompt"] = not args.no_cache

    def answer(prompt: str) -> Answer:
        r = httpx.post(f"http://127.0.0.1:{port}/completion", json={**body, "prompt": prompt}, timeout=600).json()
        steps = r["completion_probabilities"]
        return r["content"], [[round(t["logprob"], 6) for t in c["top_logprobs"]] for c in steps]

    try:
        one, again = [answer(p) for p in prompts], [answer(p) for p in prompts]
        with ThreadPoolExecutor(len(prompts)) as pool:
            many, many_again = list(pool.map(answer, prompts)), list(pool.map(answer, prompts))
    finally:
        proc.kill()
        proc.wait(10)
    out = {
        "model": args.model,
        "flags": args.flags,
        "cache_prompt": not args.no_cache,
        "requests": len(prompts),
        "one_vs_one_again": compare(one, again),
        "one_vs_all_at_once": compare(one, many),
        "all_at_once_vs_again": compare(many, many_again),
    }
    for k, v in out.items():
        print(f"{k}: {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
