"""One accepted generation request, the work it puts on the worker, and waiting for that work.

Everything a client can get wrong is checked in `prepare`, before a request queues (body, fields, knob ranges via
`AlignBeamConfig`, max_tokens limit, conversation shape, sequence slots), and answered 400 in OpenAI's error shape,
so a bad request never waits behind others only to fail, and never shows up as a 500.

The trace is always requested from the library (it is cheap) so the access log and /metrics have the per-phase
timings; it is only returned when the request sets `return_trace`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from alignbeam.api import AlignBeam, Result, to_messages
from alignbeam.config import AlignBeamConfig
from alignbeam.errors import AlignBeamError
from alignbeam.method.guard import judge_policy
from alignbeam.server import schemas as S
from alignbeam.server import validation as V
from alignbeam.server.access import CLIENT_CLOSED, log_info
from alignbeam.server.auth import unauthorized
from alignbeam.server.body import CLOSE, ClientGone, check_media_type, read_body
from alignbeam.server.decision import decision_of
from alignbeam.server.errors import BadRequest, api_error, error_for
from alignbeam.server.policies import DEFAULT, Policy, policy_for
from alignbeam.server.queue import GenerationQueue, Job, QueueClosed
from alignbeam.server.state import ServerState
from alignbeam.systems import System, run_system

#: what the worker hands back for a whole generation: the result and its per-phase timings (ms)
Timed = tuple[Result, dict[str, float]]


@dataclass(eq=False)
class Generation:
    """A validated request, ready to queue: what the worker runs and what its answer is shaped from."""

    req: S.GenerationRequest
    chat: bool  # /v1/chat/completions (else /v1/completions)
    messages: list[dict[str, str]]
    overrides: dict[str, Any]
    cfg: AlignBeamConfig
    rid: str
    created: int
    model_name: str
    #: False: shadow mode (the client gets the draft alone's answer); the decision is set by the worker
    enforced: bool = True
    decision: dict[str, Any] | None = None
    #: the policy the request's key selected (its knobs are already in `overrides`)
    policy: Policy = DEFAULT

    @property
    def prompt_param(self) -> str:
        """The request field a prompt error is reported against."""
        return "messages" if self.chat else "prompt"


async def prepare(state: ServerState, request: Request, chat: bool) -> Generation | Response:
    """Authorize, read and validate a request: a `Generation` to queue, or the error response to send."""
    info = log_info(request)
    policy = policy_for(state.policies, state.api_key, request)
    if policy is None:
        return unauthorized()
    if state.policies:
        info["policy"] = policy.name
    if state.queue.closed:  # draining: refused before its body is read (a balancer retries it elsewhere)
        return api_error(503, "the server is shutting down: retry on another instance", code="shutting_down")
    try:
        check_media_type(request)
        raw = await read_body(request, state.limits.max_body_bytes, state.limits.body_timeout_s)
        model = S.ChatCompletionRequest if chat else S.CompletionRequest
        req = V.read_request(model, raw, state.limits.max_tokens)
    except ClientGone as e:
        info.update(status=CLIENT_CLOSED, error=str(e))
        return api_error(CLIENT_CLOSED, str(e))
    except BadRequest as e:
        return api_error(e.status, str(e), e.param, e.code, headers=CLOSE if e.status == 408 else None)
    try:
        prompt: Any = req.prompt() if isinstance(req, S.ChatCompletionRequest) else req.prompt_text()
        messages = to_messages(prompt)
        # the key's policy sets this request's defaults; the request's own fields apply on top
        own = req.overrides(state.limits.default_max_tokens, state.ab.config.n_mix)
        overrides = {**policy.knobs, **{k: v for k, v in own.items() if v is not None}}
        cfg = state.ab.config.merged(**overrides)
        if req.mode != "draft":
            state.ab.check_sessions(**overrides)  # k beyond the engine's slots: 400 before the request queues
    except AlignBeamError as e:
        return error_for(e, "messages" if chat else "prompt")
    if req.enforce is False and state.enforce and not state.allow_shadow_requests:
        return api_error(
            400,
            "this server does not take shadow requests (its operator enables them with --allow-shadow-requests)",
            "enforce",
        )
    enforced = state.enforce if req.enforce is None else req.enforce
    info.update(mode=req.mode, stream=req.stream)
    if req.mode != "draft":
        info["enforced"] = enforced
    rid = S.new_id("chatcmpl" if chat else "cmpl")
    info["request_id"] = rid
    return Generation(
        req, chat, messages, overrides, cfg, rid, S.now(), state.served_model_name, enforced, policy=policy
    )


def run_draft(ab: AlignBeam, gen: Generation) -> Timed:
    """The draft baseline (`mode: "draft"`, and what shadow mode answers): the `draft` system of the registry
    the API and the evaluation share, with the request's stop strings and length."""
    t0 = time.perf_counter()
    options = {"stop": gen.req.stop_strings(), "ignore_eos": gen.cfg.ignore_eos}
    r, _ = run_system(ab, System("draft"), gen.messages, gen.cfg.max_new_tokens, **options)
    return r, {"draft": round((time.perf_counter() - t0) * 1000, 2)}


def run_whole(ab: AlignBeam, gen: Generation) -> Timed:
    """A non-streamed generation, on the worker thread."""
    with judge_policy(gen.policy.judge_policy):
        return _run_whole(ab, gen)


def _run_whole(ab: AlignBeam, gen: Generation) -> Timed:
    if gen.req.mode == "draft":
        return run_draft(ab, gen)
    if not gen.enforced:
        return run_shadow(ab, gen)
    result, timings = with_timings(ab.generate(gen.messages, trace=True, **gen.overrides))
    gen.decision = decision_of(result, enforced=True)
    return result, timings


def run_shadow(ab: AlignBeam, gen: Generation) -> Timed:
    """Shadow mode: the draft alone's answer for the client, AlignBeam's own answer only read for its decision."""
    result, timings = run_draft(ab, gen)
    would = ab.generate(gen.messages, trace=True, **gen.overrides)
    gen.decision = decision_of(would, enforced=False)
    if would.trace is not None:
        timings = {**timings, **{f"shadow_{k}": v for k, v in would.trace.timings_ms.items()}}
    return result, timings


def with_timings(result: Result) -> Timed:
    return result, (dict(result.trace.timings_ms) if result.trace is not None else {})


async def wait_for(
    job: Job, request: Request, queue: GenerationQueue, poll_interval_s: float, first_event: bool
) -> tuple[bool, Any]:
    """Wait for the job to finish (first_event=False) or to emit its first event, checking every
    poll_interval_s that the client is still there.

    Returns (True, first event or None), or (False, None) once the client has disconnected, after withdrawing
    the job: a queued job never runs, a running stream stops at its next item.
    """
    task = asyncio.ensure_future(job.events.get()) if first_event else None
    waiters: set[asyncio.Future[Any]] = {job.future} if task is None else {job.future, task}
    try:
        while True:
            await asyncio.wait(waiters, timeout=poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
            if task is not None and task.done():
                return True, task.result()
            if job.future.done():
                if task is None:
                    return True, None
                if job.future.cancelled():
                    return True, ("error", QueueClosed("the request was withdrawn"))
                if job.future.exception() is not None:  # dropped at shutdown before it started
                    return True, ("error", job.future.exception())
                waiters = {task}  # finished normally: its events are already queued
                continue
            if await request.is_disconnected():
                queue.cancel(job)
                return False, None
    finally:
        if task is not None and not task.done():
            task.cancel()
