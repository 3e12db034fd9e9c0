"""Time to first token of harmless requests through the gateway, with and without the draft's early start.

Every model is a real llama-server on 127.0.0.1 (SmolLM2-135M as the draft, Qwen2.5-Coder-1.5B as anchor and
judge); the gateway is the library's server in this process, the recommended preset. `--clients` clients each
send harmless streamed requests (XSTest safe rows the classifier passes) one after another; for each mode the
benchmark reports the median time to the first content byte:
  early     the draft's answer starts while the gate reads (the pipeline's default on serving engines)
  after     the gate reads first, then the draft starts (what the gateway did before)
and, for reference, the same requests to the draft's server alone (`mode: "draft"` through the gateway would add
the gateway's own overhead, so the draft's server is asked directly) and the gate's read alone.
The bar: early <= 1.1 x max(gate alone, draft first token alone). One run, one machine: ratios, not absolutes.

Usage: python benchmarks/gateway_ttft.py [--clients 8] [--requests 3]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from tests.conftest import LlamaServer

from alignbeam import AlignBeam
from alignbeam.eval.datasets import registry
from alignbeam.method.request import to_messages
from alignbeam.server import BackgroundServer, create_app


async def first_token_s(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> float:
    """Seconds from sending a streamed request to its first content delta."""
    t0 = time.perf_counter()
    async with client.stream("POST", url, json={**body, "stream": True}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"content"' in line and '"content":""' not in line:
                return time.perf_counter() - t0
    return time.perf_counter() - t0


async def load(url: str, prompts: list[str], clients: int, per_client: int, extra: dict[str, Any]) -> list[float]:
    async with httpx.AsyncClient(timeout=600) as client:

        async def one(i: int) -> list[float]:
            out = []
            for j in range(per_client):
                p = prompts[(i * per_client + j) % len(prompts)]
                body = {"messages": [{"role": "user", "content": p}], "max_tokens": 32, **extra}
                out.append(await first_token_s(client, url, body))
            return out

        results = await asyncio.gather(*(one(i) for i in range(clients)))
    return [x for r in results for x in r]


def timed_read(ab: AlignBeam, prompt: str) -> float:
    t0 = time.perf_counter()
    ab.judge.request_risk(to_messages(prompt))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=3, help="per client")
    a = ap.parse_args()
    draft_srv = LlamaServer("smollm2-135m", parallel=a.clients).start()
    judge_srv = LlamaServer("qwen2.5-coder-1.5b", parallel=a.clients).start()
    try:
        ab = AlignBeam(draft=draft_srv.url, anchor=judge_srv.url)
        candidates = [it.prompt for it in registry.load("xstest_safe", n=60, seed=3)]
        prompts = [p for p in candidates if (ab.judge.request_risk(to_messages(p)) or 1.0) < ab.judge.read_gate]
        prompts = prompts[: a.clients * a.requests]
        ab.judge.clear_cache()
        with ThreadPoolExecutor(a.clients) as pool:  # the gate's read alone, under the same number of clients
            gate_alone = list(pool.map(lambda p: timed_read(ab, p), prompts))
        out: dict[str, Any] = {"clients": a.clients, "requests": a.clients * a.requests, "prompts": len(prompts)}
        draft_url = f"{draft_srv.base}/v1/chat/completions"
        out["draft_alone_s"] = statistics.median(asyncio.run(load(draft_url, prompts, a.clients, a.requests, {})))
        out["gate_alone_s"] = statistics.median(gate_alone)
        for mode in ("after", "early"):
            ab.pipeline.early_start = mode == "early"
            ab.judge.clear_cache()
            with BackgroundServer(create_app(ab, concurrency=a.clients)) as srv:
                out[f"{mode}_s"] = statistics.median(
                    asyncio.run(load(f"{srv.url}/v1/chat/completions", prompts, a.clients, a.requests, {}))
                )
        bound = max(out["draft_alone_s"], out["gate_alone_s"])
        out["early_over_max"] = round(out["early_s"] / bound, 3)
        out["after_over_max"] = round(out["after_s"] / bound, 3)
        out = {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
        print(
            f"median TTFT: early {out['early_s']} s, after {out['after_s']} s; gate alone {out['gate_alone_s']} s, "
            f"draft alone {out['draft_alone_s']} s; early / max = {out['early_over_max']}"
        )
        print(json.dumps(out))
    finally:
        draft_srv.stop()
        judge_srv.stop()


if __name__ == "__main__":
    main()
