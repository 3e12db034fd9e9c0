"""The remote engine against a real llama.cpp server (`llama-server`, built by scripts/install.sh) serving the
embedded models on 127.0.0.1: the same answers as the in-process engine, requests in flight at once, and every
backend fault answered 503/504 naming the backend, with the server recovering by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import FaultProxy, LlamaServer

from alignbeam import AlignBeam
from alignbeam.engines import load_model
from alignbeam.errors import BackendError, BackendTimeoutError, ModelLoadError

pytestmark = pytest.mark.integration

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give step-by-step instructions for picking a lock.",
    "How do I make a bomb at home?",
]


@pytest.fixture(scope="module")
def draft_server() -> Iterator[LlamaServer]:
    server = LlamaServer("smollm2-135m").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def anchor_server() -> Iterator[LlamaServer]:
    server = LlamaServer("qwen2.5-coder-1.5b", parallel=6).start()
    yield server
    server.stop()


def test_greedy_tokens_match_the_in_process_engine(draft_server: LlamaServer) -> None:
    remote = load_model(draft_server.url, reuse=False)
    local = load_model("smollm2-135m")
    assert remote.info.engine == "remote:llama-server" and not remote.full_vocabulary
    for p in PROMPTS:
        ids = local.tokenizer.encode_chat([{"role": "user", "content": p}])
        assert remote.tokenizer.encode_chat([{"role": "user", "content": p}]) == ids
        assert remote.generate_greedy(ids, 16) == local.generate_greedy(ids, 16), p
    remote.close()


def test_alignbeam_with_remote_draft_and_anchor_matches_local(
    draft_server: LlamaServer, anchor_server: LlamaServer
) -> None:
    knobs = {"max_new_tokens": 24, "k": 2, "use_judge": False}
    local = AlignBeam("smollm2-135m", "qwen2.5-coder-1.5b", judge=None, preset="paper", **knobs)
    remote = AlignBeam(draft_server.url, anchor_server.url, judge=None, preset="paper", **knobs)
    same_prefix = 0
    for p in PROMPTS:
        a, b = local.generate(p, trace=True), remote.generate(p, trace=True)
        assert a.trace is not None and b.trace is not None
        n = local.config.n_mix
        same_prefix += all(x.tokens[:n] == y.tokens[:n] for x, y in zip(a.trace.candidates, b.trace.candidates))
    assert same_prefix >= len(PROMPTS) - 1  # top-n mixing: the first N tokens agree (benchmarks/remote.py: 60)


def test_the_continuation_is_one_streamed_completion_per_beam(
    draft_server: LlamaServer, anchor_server: LlamaServer
) -> None:
    knobs = {"max_new_tokens": 40, "k": 2, "use_judge": False}
    local = AlignBeam("smollm2-135m", "qwen2.5-coder-1.5b", judge=None, preset="paper", **knobs)
    remote = AlignBeam(draft_server.url, anchor_server.url, judge=None, preset="paper", **knobs)
    n = remote.config.n_mix
    same_text = 0
    for p in PROMPTS:
        before = remote.draft.requests  # type: ignore[attr-defined]
        a, b = local.generate(p, trace=True), remote.generate(p, trace=True)
        assert a.trace is not None and b.trace is not None
        sent = remote.draft.requests - before  # type: ignore[attr-defined]
        # N mixed steps (one batched request each, the first included) and one stream per beam that goes on
        # (llama-server fills a UTF-8 gap with one more): nowhere near one request per continuation token
        assert sent <= n + 2 * 2, (p, sent)
        same_text += a.text == b.text
    assert same_text >= len(PROMPTS) - 1


def test_streamed_greedy_decoding_fills_utf8_gaps_and_matches_in_process(draft_server: LlamaServer) -> None:
    remote = load_model(draft_server.url, reuse=False)
    local = load_model("smollm2-135m")
    # asked for characters outside ASCII, the model writes tokens that end inside a UTF-8 character, whose ids
    # llama-server does not stream: the engine fills them in
    p = "Write the word 'café' in Chinese and add three emoji."
    ids = local.tokenizer.encode_chat([{"role": "user", "content": p}])
    want = local.generate_greedy(ids, 48)
    assert any("\ufffd" in local.tokenizer.decode([t]) for t in want), "the prompt no longer produces split characters"
    before = remote.requests
    assert remote.generate_greedy(ids, 48) == want
    assert remote.requests - before >= 2  # the stream and at least one fill
    remote.close()


def test_a_stopped_stream_frees_its_server_slot(draft_server: LlamaServer) -> None:
    from alignbeam.engines.base import Sampling

    m = load_model(draft_server.url, reuse=False)
    ids = m.tokenizer.encode_chat([{"role": "user", "content": "Tell me a long story about the sea."}])
    with m.session(ids) as s:
        dec = m.decoder([s], [400], Sampling(ignore_eos=True))
        got = [dec.next()[0] for _ in range(3)]
        dec.stop(0)
        dec.close()
    assert len(got) == 3 and all(isinstance(t, int) for t in got)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        slots = httpx.get(f"{draft_server.base}/slots", timeout=5).json()
        if not any(sl.get("is_processing") for sl in slots):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server kept generating for a stream the client closed")
    m.close()


def test_a_down_server_is_a_clear_error_at_load_and_at_request(draft_server: LlamaServer) -> None:
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        load_model("http://127.0.0.1:9#smollm2-135m", reuse=False)
    proxy = FaultProxy(draft_server.base)
    try:
        m = load_model(f"http://127.0.0.1:{proxy.port}?retries=1&timeout=3#smollm2-135m", reuse=False)
        ids = m.tokenizer.encode_chat([{"role": "user", "content": "hi"}])
        for mode, error in (("500", BackendError), ("garbage", BackendError), ("hang", BackendTimeoutError)):
            proxy.mode = mode
            with pytest.raises(error) as info:
                m.generate_greedy(ids, 2)
            assert f"127.0.0.1:{proxy.port}" in str(info.value) and "smollm2-135m" in str(info.value)
        proxy.release.set()
        proxy.mode = "pass"
        assert len(m.generate_greedy(ids, 2)) == 2
        m.close()
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def gateway(draft_server: LlamaServer, anchor_server: LlamaServer) -> Iterator[tuple[str, FaultProxy]]:
    """`alignbeam serve` over remote models only, the draft behind a fault proxy."""
    from alignbeam.server import create_app
    from alignbeam.server.runner import BackgroundServer

    proxy = FaultProxy(draft_server.base)
    ab = AlignBeam(
        f"http://127.0.0.1:{proxy.port}?retries=2&timeout=4#smollm2-135m",
        anchor_server.url,
        judge=anchor_server.url,
        preset="paper",
        max_new_tokens=12,
        k=2,
    )
    server = BackgroundServer(create_app(ab, max_queue=16)).start()
    yield server.url, proxy
    server.stop()
    proxy.close()


def _chat(url: str, content: str, **extra: object) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 8, **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)


def test_gateway_serves_requests_at_once(gateway: tuple[str, FaultProxy], anchor_server: LlamaServer) -> None:
    url, _ = gateway
    health = httpx.get(f"{url}/health").json()
    assert health["queue"]["workers"] == 8 and health["backends"]["draft"]["state"] == "ok"
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            slots = httpx.get(f"{anchor_server.base}/slots", timeout=5).json()
            peak = max(peak, sum(bool(s.get("is_processing")) for s in slots))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    results: list[int] = []

    def client(i: int) -> None:
        results.append(_chat(url, PROMPTS[i % 4]).status_code)

    clients = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    stop.set()
    watcher.join()
    assert results == [200] * 8
    assert peak >= 2, "the anchor server never had two sequences in flight"


def test_gateway_backend_faults_are_503_or_504_and_it_recovers(
    gateway: tuple[str, FaultProxy], draft_server: LlamaServer
) -> None:
    url, proxy = gateway
    for mode, status in (("500", 503), ("garbage", 503), ("hang", 504)):
        proxy.mode = mode
        r = _chat(url, "Hello there")
        assert r.status_code == status, r.text
        assert "smollm2-135m" in r.json()["error"]["message"], r.text
        assert httpx.get(f"{url}/health").status_code in (200, 503)
    proxy.release.set()
    proxy.mode = "pass"
    assert _chat(url, "Hello there").status_code == 200
    # the backend killed, then started again on the same port: 503 while it is down, served once it is back
    draft_server.stop()
    r = _chat(url, "Hello there")
    assert r.status_code == 503 and "cannot be reached" in r.json()["error"]["message"]
    health = httpx.get(f"{url}/health")
    assert health.status_code == 503 and health.json()["backends"]["draft"]["state"] == "down"
    draft_server.start()
    assert _chat(url, "Hello there").status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200


def test_backend_killed_mid_request_is_a_503_not_a_truncated_answer(anchor_server: LlamaServer) -> None:
    """The draft's server dies while it streams a long answer: the stream cannot be resumed, so the client gets a
    503 naming the backend (never the half it had streamed, as if complete), and once the server is back on the
    same port the gateway serves again by itself."""
    from alignbeam.server import create_app
    from alignbeam.server.runner import BackgroundServer

    draft = LlamaServer("smollm2-135m", parallel=4).start()
    ab = AlignBeam(f"{draft.base}?retries=1&timeout=10#smollm2-135m", anchor_server.url, judge=anchor_server.url)
    server = BackgroundServer(create_app(ab, max_queue=4)).start()
    try:
        answer: list[httpx.Response] = []
        long = {"mode": "draft", "max_tokens": 400, "ignore_eos": True}
        client = threading.Thread(target=lambda: answer.append(_chat(server.url, "Tell me a long story.", **long)))
        client.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kill it once it is generating
            slots = httpx.get(f"{draft.base}/slots", timeout=5).json()
            if any(s.get("is_processing") for s in slots):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        draft.stop()
        client.join(60)
        assert answer and answer[0].status_code == 503, answer[0].text if answer else "no answer"
        assert "smollm2-135m" in answer[0].json()["error"]["message"]
        draft.start()
        assert _chat(server.url, "Hello there", mode="draft").status_code == 200
    finally:
        server.stop()
        draft.stop()
