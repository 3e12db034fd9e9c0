"""The remote engine against the in-process one: equivalence, and what a step costs over the wire.

Starts llama.cpp's server (`llama-server`, built by scripts/install.sh) for each embedded model it needs, on
127.0.0.1, and answers the same prompts greedily with the in-process llama.cpp engine and with the remote engine
over the servers, same models, same knobs:

- cross pair (smollm2-135m draft, qwen2.5-coder-1.5b anchor) and same-vocabulary pair (qwen2.5-coder-0.5b draft,
  qwen2.5-coder-1.5b anchor), no judge (mixing and the continuation: what the engine changes);
- 60 prompts by default: 20 AdvBench, 20 XSTest safe, 20 JBB benign (`--n` per set);
- reported: the share of prompts where the first candidate's first N tokens (the mixed distribution's greedy
  path) are identical, where every candidate's are, where the returned text is, and where the refusal decision
  (keyword rule on the returned text) is the same; then the latency per mixed step added by the wire:
  one next-token request's wall time minus the server's own time for it (`timings` in its answer).

Resumable: every answer is appended to `--out` (JSON lines) and a rerun skips what is there.
Usage: python benchmarks/remote.py [--n 20] [--pairs cross,same] [--out runs/remote/equivalence.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from tests.conftest import LlamaServer

from alignbeam import AlignBeam
from alignbeam.eval.datasets import registry
from alignbeam.method.textrules import is_refusal

PAIRS = {"cross": ("smollm2-135m", "qwen2.5-coder-1.5b"), "same": ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")}
SETS = ("advbench", "xstest_safe", "jbb_benign")


def answers(ab: AlignBeam, prompts: list[tuple[str, str]], tag: str, done: dict, out: Path) -> None:
    for key, prompt in prompts:
        if (tag, key) in done:
            continue
        r = ab.generate(prompt, trace=True)
        assert r.trace is not None
        rec = {
            "tag": tag,
            "key": key,
            "text": r.text,
            "prefixes": [c.tokens[: ab.config.n_mix] for c in r.trace.candidates],
            "refused": r.finish_reason == "refused" or is_refusal(r.text),
            "ms": r.trace.timings_ms.get("total"),
        }
        with out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        done[(tag, key)] = rec
        print(f"{tag} {key}: {'refused' if rec['refused'] else 'answered'} ({rec['ms']:.0f} ms)", flush=True)


def step_overhead(server: LlamaServer, prompt: list[int], n: int = 30) -> dict[str, float]:
    """Wall time of a one-token next-token request minus the server's own prompt + predict time (ms)."""
    client = httpx.Client(base_url=server.base, timeout=60)
    extra, own = [], []
    ids = list(prompt)
    for i in range(n + 3):
        body = {"prompt": [ids], "n_predict": 1, "n_probs": 64, "temperature": 0, "cache_prompt": True}
        t0 = time.perf_counter()
        r = client.post("/completion", json=body).json()
        wall = (time.perf_counter() - t0) * 1000
        item = r[0] if isinstance(r, list) else r
        t = item["timings"]
        server_ms = t["prompt_ms"] + t["predicted_ms"]
        if i >= 3:  # warm: the prefix is cached, each request is a one-token extension
            extra.append(wall - server_ms)
            own.append(server_ms)
        ids.append(item["completion_probabilities"][0]["top_logprobs"][0]["id"])
    client.close()
    return {"added_ms_median": statistics.median(extra), "server_ms_median": statistics.median(own)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="prompts per set")
    ap.add_argument("--pairs", default="cross,same")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("runs/remote/equivalence.jsonl"))
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip().endswith("}"):
                rec = json.loads(line)
                done[(rec["tag"], rec["key"])] = rec
    prompts = [(f"{s}:{it.id}", it.prompt) for s in SETS for it in registry.load(s, n=args.n, seed=0)]
    knobs = {"max_new_tokens": args.max_new_tokens, "k": 3, "use_judge": False}
    summary = {}
    for pair in args.pairs.split(","):
        draft, anchor = PAIRS[pair]
        answers(AlignBeam(draft, anchor, judge=None, preset="paper", **knobs), prompts, f"{pair}/local", done, args.out)
        servers = [LlamaServer(draft).start(), LlamaServer(anchor, parallel=6).start()]
        try:
            remote = AlignBeam(servers[0].url, servers[1].url, judge=None, preset="paper", **knobs)
            answers(remote, prompts, f"{pair}/remote", done, args.out)
            prompt = remote.draft.tokenizer.encode_chat([{"role": "user", "content": prompts[0][1]}])
            overhead = step_overhead(servers[0], prompt)
        finally:
            for s in servers:
                s.stop()
        keys = [k for k, _ in prompts]
        loc = [done[(f"{pair}/local", k)] for k in keys]
        rem = [done[(f"{pair}/remote", k)] for k in keys]
        summary[pair] = {
            "prompts": len(keys),
            # the first candidate is the mixed distribution's greedy path; the others start from its next-best tokens
            "same_first_n_tokens_first_candidate": sum(a["prefixes"][:1] == b["prefixes"][:1] for a, b in zip(loc, rem))
            / len(keys),
            "same_first_n_tokens_every_candidate": sum(a["prefixes"] == b["prefixes"] for a, b in zip(loc, rem))
            / len(keys),
            "same_refusal_decision": sum(a["refused"] == b["refused"] for a, b in zip(loc, rem)) / len(keys),
            "same_text": sum(a["text"] == b["text"] for a, b in zip(loc, rem)) / len(keys),
            "latency_ratio_remote_over_local": statistics.median(b["ms"] for b in rem)
            / statistics.median(a["ms"] for a in loc),
            **overhead,
        }
        print(pair, json.dumps(summary[pair]), flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
