"""The streaming handler alone: `stream_response` driven with a hand-fed `Job`, no app, no HTTP, no worker.

The worker and the handler meet only in the job's event queue, so each SSE outcome (text, finish, usage, an error
after the start, a refusal before it, a client that leaves) is pinned here event by event, deterministically.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from test_server_app import FakeAlignBeam

from alignbeam.api import Result
from alignbeam.config import AlignBeamConfig
from alignbeam.errors import ContextOverflowError
from alignbeam.server import schemas as S
from alignbeam.server.generation import Generation
from alignbeam.server.queue import Job, QueueClosed
from alignbeam.server.state import build_state
from alignbeam.server.streaming import stream_response

MESSAGES = [{"role": "user", "content": "hi"}]


def generation(chat: bool = True, **fields: Any) -> Generation:
    if chat:
        req: S.GenerationRequest = S.ChatCompletionRequest.model_validate({"messages": MESSAGES, **fields})
    else:
        req = S.CompletionRequest.model_validate({"prompt": "hi", **fields})
    return Generation(req, chat, MESSAGES, {}, AlignBeamConfig(), "chatcmpl-1", 1700000000, "alignbeam")


def request() -> Request:
    """A request whose client stays connected (its `receive` never returns)."""

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}, receive)


async def drive(events: list[Any], gen: Generation, read: int | None = None) -> tuple[Any, list[str], Job, dict]:
    """Feed `events` to a fresh job, run the handler, read the body (only `read` events of it, then leave)."""
    state = build_state(FakeAlignBeam(), max_tokens=50)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    job = Job(fn=lambda job: None, loop=loop, future=loop.create_future())
    for event in events:
        job.events.put_nowait(event)
    req = request()
    response = await stream_response(state, req, job, gen)
    out: list[str] = []
    if isinstance(response, StreamingResponse):
        body = response.body_iterator
        async for part in body:
            out.append(str(part))
            if read is not None and len(out) == read:
                await body.aclose()  # type: ignore[attr-defined]
                break
    return response, out, job, req.scope.get("alignbeam.log", {})


def data(event: str) -> Any:
    assert event.startswith("data: ") and event.endswith("\n\n"), event
    payload = event[len("data: ") : -2]
    return payload if payload == "[DONE]" else json.loads(payload)


def test_a_chat_stream_is_role_deltas_finish_usage_done() -> None:
    result = Result("a b", "stop", 3, 2)
    events = [("start", None), ("delta", "a"), ("delta", " b"), ("result", (result, {"judge": 1.0}))]
    gen = generation(stream=True, stream_options={"include_usage": True})
    response, out, _, info = asyncio.run(drive(events, gen))
    assert response.status_code == 200 and response.headers["x-request-id"] == "chatcmpl-1"
    chunks = [data(e) for e in out]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert [c["choices"][0]["delta"] for c in chunks[1:3]] == [{"content": "a"}, {"content": " b"}]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop" and chunks[3]["object"] == "chat.completion.chunk"
    assert chunks[4]["choices"] == [] and chunks[4]["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }
    assert chunks[5] == "[DONE]"
    assert info["completion_tokens"] == 2 and info["timings_ms"] == {"judge": 1.0} and "status" not in info


def test_a_completions_stream_carries_text_choices() -> None:
    events = [("start", None), ("delta", "x"), ("result", (Result("x", "length", 1, 1), {}))]
    _, out, _, _ = asyncio.run(drive(events, generation(chat=False, stream=True)))
    chunks = [data(e) for e in out]
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["x", ""] and chunks[-1] == "[DONE]"
    assert chunks[1]["choices"][0]["finish_reason"] == "length" and chunks[0]["object"] == "text_completion"


def test_an_error_before_the_start_is_a_plain_response() -> None:
    response, out, _, _ = asyncio.run(drive([("error", ContextOverflowError("too long"))], generation(stream=True)))
    assert not isinstance(response, StreamingResponse) and out == []
    err = json.loads(response.body)["error"]
    assert response.status_code == 400 and err["code"] == "context_length_exceeded" and err["param"] == "messages"


def test_an_error_after_the_start_is_an_event_then_done_and_logged_with_its_status() -> None:
    events = [("start", None), ("delta", "a"), ("error", QueueClosed("the stream was stopped"))]
    _, out, _, info = asyncio.run(drive(events, generation(stream=True)))
    assert len(out) == 4 and data(out[3]) == "[DONE]"
    err = data(out[2])["error"]
    assert err["code"] == "shutting_down" and "stream was stopped" in err["message"]
    assert info["error"] == "the stream was stopped" and info["status"] == 503


def test_a_client_that_leaves_withdraws_the_job() -> None:
    events = [("start", None), ("delta", "a"), ("delta", "b")]
    _, out, job, info = asyncio.run(drive(events, generation(stream=True), read=2))
    assert len(out) == 2 and job.cancelled.is_set() and info["status"] == 499
