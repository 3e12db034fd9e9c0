"""The server's behaviour on a fake pipeline (no models, fast): queueing, fairness, 429, disconnects, streaming.

The integration tests drive the real models; these pin the concurrency rules deterministically, which real
generations (seconds long, timing-dependent) cannot: a job is held on the worker with an Event for exactly as
long as the test needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from alignbeam.api import Result, to_messages
from alignbeam.config import AlignBeamConfig
from alignbeam.method.textrules import trim_stop
from alignbeam.method.trace import Candidate, Trace
from alignbeam.server import BackgroundServer, GenerationQueue, QueueClosed, QueueFull, create_app


class FakeAlignBeam:
    """Just enough of AlignBeam's surface for the server: config, models' names/tokenizers/n_ctx, generate*."""

    def __init__(self) -> None:
        self.config = AlignBeamConfig()
        tok = SimpleNamespace(encode_chat=lambda msgs: [0] * sum(len(m["content"].split()) + 4 for m in msgs))
        self.draft = SimpleNamespace(name="fake-draft", n_ctx=200, tokenizer=tok)
        self.anchor = SimpleNamespace(name="fake-anchor", n_ctx=200, tokenizer=tok)
        self.judge = None
        self.gate: threading.Event | None = None  # when set, generation waits for it (holds the worker)
        self.calls: list[str] = []
        self.slow_tokens = 0
        self.streamed = 0

    def _result(self, prompt: Any, trace: bool, overrides: dict[str, Any]) -> Result:
        cfg = self.config.merged(**overrides)
        msgs = to_messages(prompt)
        n = len(self.draft.tokenizer.encode_chat(msgs))
        if n + cfg.max_new_tokens > self.draft.n_ctx:
            from alignbeam.errors import ContextOverflowError

            raise ContextOverflowError("too long")
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append(msgs[-1]["content"])
        text = " ".join(["ok"] * min(cfg.max_new_tokens, 3))
        cands = [Candidate(index=i, text=text, score=1.0) for i in range(min(cfg.k, 8))]
        tr = Trace(cands, 0, False, False, {"judge": 1.0, "total": 2.0}, cfg.to_dict(), False)
        return Result(text, "length", n, min(cfg.max_new_tokens, 3), tr if trace else None)

    def generate(self, prompt: Any, *, trace: bool = False, **overrides: Any) -> Result:
        return self._result(prompt, trace, overrides)

    def check_sessions(self, **overrides: Any) -> None:
        self.config.merged(**overrides)

    def check_fits(self, prompt: Any, **overrides: Any) -> None:
        cfg = self.config.merged(**overrides)
        if len(self.draft.tokenizer.encode_chat(to_messages(prompt))) + cfg.max_new_tokens > self.draft.n_ctx:
            from alignbeam.errors import ContextOverflowError

            raise ContextOverflowError("too long")

    def stream(self, prompt: Any, *, trace: bool = False, **overrides: Any) -> Iterator[str | Result]:
        if self.slow_tokens:  # a long, token-by-token stream (like judge_after) that a client may abandon
            for i in range(self.slow_tokens):
                time.sleep(0.05)
                self.streamed += 1
                yield f" t{i}"
        r = self._result(prompt, trace, overrides)
        for i, word in enumerate(r.text.split(" ")):
            yield word if i == 0 else " " + word
        yield r

    def generate_draft(
        self, prompt: Any, *, max_new_tokens: int | None = None, ignore_eos: bool | None = None, stop: Any = ()
    ) -> Result:
        text, cut = trim_stop("draft says hi\n\nmore", stop)
        return Result(text, "stop" if cut else "length", 5, 4)


@pytest.fixture
def fake() -> FakeAlignBeam:
    return FakeAlignBeam()


@pytest.fixture
def server(fake: FakeAlignBeam) -> Iterator[BackgroundServer]:
    app = create_app(fake, api_key="k", max_tokens_limit=50, max_queue=1, poll_interval_s=0.05)  # type: ignore[arg-type]
    with BackgroundServer(app) as srv:
        yield srv


H = {"Authorization": "Bearer k"}


def post(srv: BackgroundServer, body: Any, path: str = "/v1/chat/completions", **kw: Any) -> httpx.Response:
    return httpx.post(srv.url + path, json=body, headers=H, timeout=kw.pop("timeout", 20), **kw)


def body(text: str = "hi", **kw: Any) -> dict[str, Any]:
    return {"model": "alignbeam", "messages": [{"role": "user", "content": text}], **kw}


def wait_until(cond: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_chat_completion_trace_only_when_asked(server: BackgroundServer) -> None:
    r = post(server, body(max_tokens=8, k=2))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["object"] == "chat.completion" and d["choices"][0]["message"]["content"] == "ok ok ok"
    assert d["usage"]["completion_tokens"] == 3 and d["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + 3
    assert "alignbeam_trace" not in d
    d = post(server, body(max_tokens=8, k=2, return_trace=True)).json()
    assert len(d["alignbeam_trace"]["candidates"]) == 2 and d["alignbeam_trace"]["config"]["max_new_tokens"] == 8


def test_stream_chunks(server: BackgroundServer) -> None:
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json=body(stream=True, return_trace=True, stream_options={"include_usage": True}),
        headers=H,
        timeout=20,
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[len("data: ") :]) for ln in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "ok ok ok"
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(final) == 1 and final[0]["choices"][0]["finish_reason"] == "length" and "alignbeam_trace" in final[0]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_draft_mode_and_stop(server: BackgroundServer) -> None:
    d = post(server, {"prompt": "hi", "mode": "draft", "stop": ["\n\n"]}, path="/v1/completions").json()
    assert d["choices"][0]["text"] == "draft says hi" and d["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (body(alpha=5), "alpha must be between 0 and 1"),
        (body(temperatur=0.5), "unknown field 'temperatur'"),
        ({"messages": []}, "conversation is empty"),
        (body(max_tokens=51), "over this server's limit of 50"),
        (body(n=2), "only n=1"),
        (body(" ".join(["w"] * 300), max_tokens=8), "too long"),
        (body(k=2, messages_extra=1), "unknown field 'messages_extra'"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_requests_are_400_in_openai_shape(server: BackgroundServer, payload: Any, needle: str) -> None:
    r = post(server, payload)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert needle in err["message"] and set(err) == {"message", "type", "param", "code"}


def test_stream_over_context_is_a_plain_400(server: BackgroundServer) -> None:
    r = post(server, body(" ".join(["w"] * 300), stream=True, max_tokens=8))
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_raw_body_errors(server: BackgroundServer) -> None:
    for raw, needle in ((b'{"messages": [{"role":"user","content":"\xff"}]}', "UTF-8"), (b"{nope", "not valid JSON")):
        r = httpx.post(server.url + "/v1/chat/completions", content=raw, headers=H)
        assert r.status_code == 400 and needle in r.json()["error"]["message"]


def test_auth(server: BackgroundServer) -> None:
    r = httpx.post(server.url + "/v1/chat/completions", json=body(), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(server.url + "/v1/models").status_code == 401
    assert httpx.get(server.url + "/v1/models", headers=H).json()["data"][0]["id"] == "alignbeam"
    assert httpx.get(server.url + "/health").status_code == 200  # probes need no key
    assert httpx.get(server.url + "/nope", headers=H).json()["error"]["type"] == "not_found_error"


def test_fifo_429_and_disconnect_frees_the_slot(server: BackgroundServer, fake: FakeAlignBeam) -> None:
    q = _queue_of(server)
    fake.gate = threading.Event()
    results: dict[str, httpx.Response] = {}

    def send(name: str, timeout: float = 20) -> None:
        try:
            results[name] = post(server, body(name, max_tokens=4), timeout=timeout)
        except httpx.TimeoutException:
            results[name] = httpx.Response(599)

    first = threading.Thread(target=send, args=("first",))
    first.start()
    wait_until(lambda: q.running == 1)
    leaver = threading.Thread(target=send, args=("leaver", 0.5))  # gives up while waiting in line
    leaver.start()
    wait_until(lambda: q.waiting == 1)
    r = post(server, body("third"))
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
    leaver.join()
    wait_until(lambda: q.waiting == 0)  # the disconnected client's slot is free again
    second = threading.Thread(target=send, args=("second",))
    second.start()
    wait_until(lambda: q.waiting == 1)
    fake.gate.set()
    first.join()
    second.join()
    assert results["first"].status_code == 200 and results["second"].status_code == 200
    assert fake.calls == ["first", "second"]  # the leaver never ran; order is arrival order
    metrics = httpx.get(server.url + "/metrics").text
    assert 'alignbeam_requests_total{endpoint="/v1/chat/completions",status="429"} 1' in metrics
    assert 'status="499"' in metrics


def test_stream_stops_generating_when_the_client_leaves(server: BackgroundServer, fake: FakeAlignBeam) -> None:
    fake.slow_tokens = 200  # 10 s if nobody stops it
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body(stream=True), headers=H) as r:
        lines = r.iter_lines()
        assert "assistant" in next(lines)
        assert "t0" in "".join(next(lines) for _ in range(3))
    q = _queue_of(server)
    wait_until(lambda: q.running == 0, timeout=5)
    assert fake.streamed < 100 and fake.calls == []


def _queue_of(srv: BackgroundServer) -> GenerationQueue:
    return srv.config.app.state.queue  # type: ignore[no-any-return,union-attr]


def test_queue_with_several_workers_runs_jobs_at_once_in_arrival_order() -> None:
    async def main() -> None:
        q = GenerationQueue(max_queue=1, workers=2)
        q.start()
        gate = threading.Event()
        started: list[int] = []

        def job_fn(i: int):  # type: ignore[no-untyped-def]
            return lambda job: (started.append(i), gate.wait(5))

        a, b = q.submit(job_fn(1)), q.submit(job_fn(2))
        while q.running < 2:  # both run at once
            await asyncio.sleep(0.01)
        c = q.submit(job_fn(3))  # waits: both workers are busy
        with pytest.raises(QueueFull):
            q.submit(job_fn(4))
        assert q.waiting == 1 and sorted(started) == [1, 2]
        gate.set()
        await asyncio.gather(a.future, b.future, c.future)
        assert sorted(started) == [1, 2, 3] and q.alive
        q.stop()
        assert not q.alive

    asyncio.run(main())


def test_concurrency_above_one_needs_every_model_remote() -> None:
    from alignbeam.errors import ConfigError

    with pytest.raises(ConfigError, match="every model on a serving engine"):
        create_app(FakeAlignBeam(), concurrency=4)  # type: ignore[arg-type]


def test_queue_unit() -> None:
    async def main() -> None:
        q = GenerationQueue(max_queue=1)
        q.start()
        gate = threading.Event()
        order: list[int] = []
        a = q.submit(lambda job: (gate.wait(5), order.append(1)))
        while q.running == 0:
            await asyncio.sleep(0.01)
        b = q.submit(lambda job: order.append(2))
        with pytest.raises(QueueFull):
            q.submit(lambda job: order.append(3))
        assert q.cancel(b) is True and q.waiting == 0  # withdrawn before it started
        c = q.submit(lambda job: order.append(4))
        gate.set()
        await a.future
        await c.future
        assert order == [1, 4] and b.future.cancelled()
        q.stop()

    asyncio.run(main())


def test_queue_close_drains_and_abandon_answers_the_waiting() -> None:
    async def main() -> None:
        q = GenerationQueue(max_queue=2)
        q.start()
        gate = threading.Event()
        a = q.submit(lambda job: gate.wait(5))
        while q.running == 0:
            await asyncio.sleep(0.01)
        b = q.submit(lambda job: "b")
        c = q.submit(lambda job: "c")
        q.close()  # no new work, but what is in line still runs
        assert q.closed
        with pytest.raises(QueueClosed):
            q.submit(lambda job: "late")
        assert q.abandon("grace period over") == 2 and q.waiting == 0
        assert a.cancelled.is_set()  # the running job is asked to stop at its next item
        with pytest.raises(QueueClosed, match="grace period over"):
            await b.future
        with pytest.raises(QueueClosed):
            await c.future
        gate.set()
        assert await a.future is True  # a whole generation is not interrupted
        q.stop()

        q = GenerationQueue(max_queue=2)
        q.start()
        gate = threading.Event()
        a = q.submit(lambda job: gate.wait(5))
        b = q.submit(lambda job: "b")
        q.close()
        gate.set()
        assert await b.future == "b"  # closed, not abandoned: the line drains
        q.stop()

    asyncio.run(main())


def test_shutdown_grace_period_answers_waiting_requests_503(fake: FakeAlignBeam) -> None:
    app = create_app(fake, max_tokens_limit=50, max_queue=4, poll_interval_s=0.05, shutdown_grace_s=0.4)  # type: ignore[arg-type]
    srv = BackgroundServer(app).start()
    q = _queue_of(srv)
    fake.gate = threading.Event()
    results: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        results[name] = httpx.post(srv.url + "/v1/chat/completions", json=body(name, max_tokens=4), timeout=20)

    first = threading.Thread(target=send, args=("first",))
    stopper = threading.Thread(target=srv.stop)  # what SIGTERM does: uvicorn's should_exit
    try:
        first.start()
        wait_until(lambda: q.running == 1)
        second = threading.Thread(target=send, args=("second",))
        second.start()
        wait_until(lambda: q.waiting == 1)
        t0 = time.monotonic()
        stopper.start()
        second.join(10)
        waited = time.monotonic() - t0
        r = results["second"]
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down", r.text
        assert "grace period" in r.json()["error"]["message"]
        assert 0.3 <= waited < 5 and "first" not in results  # answered after the grace period; the running one runs on
    finally:
        fake.gate.set()
        first.join(10)
        stopper.join(10) if stopper.is_alive() else srv.stop()
    assert results["first"].status_code == 200 and fake.calls == ["first"]
    assert not stopper.is_alive()


def test_shutdown_stops_a_running_stream_at_its_next_token(
    fake: FakeAlignBeam, caplog: pytest.LogCaptureFixture
) -> None:
    """At the end of the grace period a running stream gets an error event, then [DONE], and is logged 503."""
    fake.slow_tokens = 400  # 20 s if nothing stops it
    app = create_app(fake, max_tokens_limit=50, poll_interval_s=0.05, shutdown_grace_s=0.2)  # type: ignore[arg-type]
    srv = BackgroundServer(app).start()
    stopper = threading.Thread(target=srv.stop)
    with caplog.at_level(logging.INFO, logger="alignbeam.access"):
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body(stream=True), timeout=20) as r:
            lines = r.iter_lines()
            assert "assistant" in next(lines)
            assert "t0" in next(ln for ln in lines if ln)
            stopper.start()
            rest = [ln for ln in lines if ln]
        stopper.join(10)
    assert rest[-1] == "data: [DONE]"
    err = json.loads(rest[-2][len("data: ") :])["error"]
    assert err["code"] == "shutting_down" and "stream was stopped" in err["message"]
    assert not stopper.is_alive() and fake.streamed < 200
    entries = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "alignbeam.access"]
    assert [e["status"] for e in entries if e["path"] == "/v1/chat/completions"] == [503]
