"""Streamed completions: the worker side (`stream_job`) and the HTTP side (`stream_response`), which meet in the
job's event queue.

The worker pushes ("start"), then ("delta", text)*, then ("result", (Result, timings)), or ("error", exc) at any
point. The handler waits for the first event before it commits to a 200, so a request the worker refuses (a
prompt over the context window) still gets a plain 400; after that every outcome is an SSE event, and every
stream the server ends itself ends with `data: [DONE]`, an error included (a stream cut at the end of the
shutdown grace period gets an error event, then [DONE]; the access log records the error's status, not 200).
Because the two sides only share the job, `stream_response` can be driven alone with a hand-fed `Job`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from alignbeam.api import AlignBeam, Result
from alignbeam.method.guard import judge_policy
from alignbeam.server import schemas as S
from alignbeam.server.access import CLIENT_CLOSED, log_info, log_result
from alignbeam.server.decision import decision_of
from alignbeam.server.errors import api_error, dumps, error_for
from alignbeam.server.generation import Generation, run_draft, run_shadow, wait_for, with_timings
from alignbeam.server.queue import Job, QueueClosed
from alignbeam.server.state import ServerState


def stream_job(ab: AlignBeam, gen: Generation, job: Job) -> None:
    """Worker side of a stream. Stops pulling from the generator as soon as the client is gone (or the shutdown
    grace period is over)."""
    with judge_policy(gen.policy.judge_policy):
        _stream_job(ab, gen, job)


def _stream_job(ab: AlignBeam, gen: Generation, job: Job) -> None:
    try:
        if gen.req.mode == "draft" or not gen.enforced:
            # the draft baseline has no streaming API: generated whole, then sent as one delta (in shadow mode,
            # AlignBeam's own answer is generated after it, for the decision the closing chunk carries)
            result, timings = run_shadow(ab, gen) if gen.req.mode != "draft" else run_draft(ab, gen)
            job.emit(("start", None))
            if result.text:
                job.emit(("delta", result.text))
            job.emit(("result", (result, timings)))
            return
        # AlignBeam.stream raises a length error only when first advanced, and with full judging its first
        # item comes at the very end: checked here, a bad request still gets a 400 before the stream starts.
        ab.check_fits(gen.messages, **gen.overrides)
        job.emit(("start", None))
        items = ab.stream(gen.messages, trace=True, **gen.overrides)
        try:
            for item in items:
                if job.cancelled.is_set():  # the client left, or the shutdown grace period is over
                    job.emit(("error", QueueClosed("the server is shutting down: the stream was stopped")))
                    return
                if isinstance(item, Result):
                    gen.decision = decision_of(item, enforced=True)
                job.emit(("result", with_timings(item)) if isinstance(item, Result) else ("delta", item))
        finally:
            items.close()
    except Exception as e:
        job.emit(("error", e))


class Chunks:
    """The SSE events of one stream, in the shape of its endpoint (chat chunks or legacy completions)."""

    def __init__(self, gen: Generation) -> None:
        self.gen = gen

    def _ids(self) -> dict[str, Any]:
        return {"id": self.gen.rid, "created": self.gen.created, "model": self.gen.model_name}

    def chunk(self, content: str | None = None, role: bool = False, finish: str | None = None, **extra: Any) -> str:
        """A text delta, the opening role chunk (chat) or the closing chunk with its finish_reason."""
        if self.gen.chat:
            delta = S.ChunkDelta(role="assistant" if role else None, content=content)
            choice = S.ChunkChoice(delta=delta, finish_reason=finish)
            d = S.dump(S.ChatCompletionChunk(**self._ids(), choices=[choice], **extra))
            d["choices"][0]["delta"] = {k: v for k, v in d["choices"][0]["delta"].items() if v is not None}
        else:
            choice_ = S.CompletionChoice(text=content or "", finish_reason=finish)
            d = S.dump(S.Completion(**self._ids(), choices=[choice_], **extra))
        return f"data: {dumps(d)}\n\n"

    def usage(self, result: Result) -> str:
        """The usage chunk `stream_options.include_usage` asks for: no choices, only the token counts."""
        base = S.ChatCompletionChunk if self.gen.chat else S.Completion
        obj = base(**self._ids(), choices=[], usage=S.Usage.of(result.prompt_tokens, result.completion_tokens))
        return f"data: {dumps(S.dump(obj))}\n\n"

    def final(self, result: Result) -> list[str]:
        """The closing events of a finished stream: finish_reason (and the trace), usage if asked, [DONE]."""
        req = self.gen.req
        trace = result.trace.to_dict() if (req.return_trace and result.trace is not None) else None
        extra: dict[str, Any] = {"alignbeam_trace": trace} if trace is not None else {}
        if self.gen.decision is not None:  # headers went out before the decision was made: it closes the stream
            extra["alignbeam_decision"] = self.gen.decision
        out = [self.chunk(finish=S.finish_reason(result.finish_reason), **extra)]
        if req.stream_options and req.stream_options.include_usage:
            out.append(self.usage(result))
        return [*out, "data: [DONE]\n\n"]


async def stream_response(state: ServerState, request: Request, job: Job, gen: Generation) -> Response:
    """The HTTP side of a stream: a plain error if the job fails before it starts, else an SSE response."""
    info = log_info(request)
    # Wait for the worker to start this job and pass the checks, so that a bad request still gets a plain 400.
    alive, first = await wait_for(job, request, state.queue, state.limits.poll_interval_s, first_event=True)
    info["queue_wait_ms"] = round(job.queue_wait_s * 1000, 2)
    if not alive:
        info["status"] = CLIENT_CLOSED
        return api_error(CLIENT_CLOSED, "the client closed the request")
    kind, payload = first
    if kind == "error":
        return error_for(payload, gen.prompt_param)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "x-request-id": gen.rid}
    return StreamingResponse(events(state, job, gen, info), media_type="text/event-stream", headers=headers)


async def events(state: ServerState, job: Job, gen: Generation, info: dict[str, Any]) -> AsyncIterator[str]:
    """The SSE body: the job's events as chunks until its result or its error. If the body is closed before
    that (the client went away mid-stream), the job is withdrawn so the worker stops generating for nobody."""
    chunks = Chunks(gen)
    finished = False
    try:
        if gen.chat:
            yield chunks.chunk(role=True)
        while True:
            kind, payload = await job.events.get()
            if kind == "delta":
                yield chunks.chunk(content=payload)
            elif kind == "result":
                result, timings = payload
                log_result(info, gen, result, timings)
                for event in chunks.final(result):
                    yield event
                finished = True
                return
            elif kind == "error":  # the 200 is sent: the error is an event, then [DONE], and the log says its status
                err = error_for(payload, gen.prompt_param)
                info.update(error=str(payload), status=err.status_code)
                yield f"data: {bytes(err.body).decode('utf-8')}\n\n"
                yield "data: [DONE]\n\n"
                finished = True
                return
    finally:
        if not finished:  # the client went away mid-stream: stop generating for it
            state.queue.cancel(job)
            info["status"] = CLIENT_CLOSED
