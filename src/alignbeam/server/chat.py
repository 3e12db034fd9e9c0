"""POST /v1/chat/completions and /v1/completions: validate, queue, answer whole or as a stream.

Generation runs on worker threads in arrival order (see `queue.py`); the event loop only parses, validates,
waits and streams.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from alignbeam.api import Result
from alignbeam.server import schemas as S
from alignbeam.server.access import CLIENT_CLOSED, log_info, log_result
from alignbeam.server.decision import headers
from alignbeam.server.errors import JSON, api_error, error_for
from alignbeam.server.generation import Generation, prepare, run_whole, wait_for
from alignbeam.server.queue import Job, QueueClosed, QueueFull
from alignbeam.server.state import ServerState, state_of
from alignbeam.server.streaming import stream_job, stream_response


async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions; AlignBeam knobs as extra body fields."""
    return await generation(request, chat=True)


async def completions(request: Request) -> Response:
    """Legacy completions: the prompt is one user turn."""
    return await generation(request, chat=False)


async def generation(request: Request, chat: bool) -> Response:
    state = state_of(request)
    gen = await prepare(state, request, chat)
    if isinstance(gen, Response):
        return gen
    ab = state.ab
    try:
        if gen.req.stream:
            job = state.queue.submit(lambda job: stream_job(ab, gen, job))
        else:
            job = state.queue.submit(lambda job: run_whole(ab, gen))
    except QueueFull as e:
        return api_error(429, str(e), code="queue_full", headers={"Retry-After": "5"})
    except QueueClosed as e:
        return api_error(503, str(e), code="shutting_down")
    if gen.req.stream:
        return await stream_response(state, request, job, gen)
    return await whole_response(state, request, job, gen)


async def whole_response(state: ServerState, request: Request, job: Job, gen: Generation) -> Response:
    """Wait for a non-streamed generation and answer it as one completion object."""
    info = log_info(request)
    alive, _ = await wait_for(job, request, state.queue, state.limits.poll_interval_s, first_event=False)
    info["queue_wait_ms"] = round(job.queue_wait_s * 1000, 2)
    if not alive:
        info["status"] = CLIENT_CLOSED
        return api_error(CLIENT_CLOSED, "the client closed the request")
    try:
        result, timings = job.future.result()
    except BaseException as e:
        return error_for(e, gen.prompt_param)
    log_result(info, gen, result, timings)
    return JSON(S.dump(completion_body(gen, result)), headers={"x-request-id": gen.rid, **headers(gen.decision)})


def completion_body(gen: Generation, result: Result) -> Any:
    """The response object of a finished generation, in its endpoint's shape."""
    usage = S.Usage.of(result.prompt_tokens, result.completion_tokens)
    trace = result.trace.to_dict() if (gen.req.return_trace and result.trace is not None) else None
    fr = S.finish_reason(result.finish_reason)
    ids: dict[str, Any] = {"id": gen.rid, "created": gen.created, "model": gen.model_name}
    if gen.chat:
        choice = S.ChatChoice(message=S.AssistantMessage(content=result.text), finish_reason=fr)
        return S.ChatCompletion(**ids, choices=[choice], usage=usage, alignbeam_trace=trace)
    return S.Completion(
        **ids, choices=[S.CompletionChoice(text=result.text, finish_reason=fr)], usage=usage, alignbeam_trace=trace
    )
