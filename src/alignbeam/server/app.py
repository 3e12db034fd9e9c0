"""The OpenAI-compatible HTTP server: `create_app(ab)` gives a FastAPI app serving one AlignBeam pipeline.

Any OpenAI client works unchanged; AlignBeam's knobs ride along as extra body fields (`extra_body=` in the
openai client), so each request can trade safety against cost (alpha, n_mix, k, ...) without a restart.

Design choices, and why:
- Generation runs on worker threads in arrival order (see `queue.py`): one worker, one request at a time, when any
  model is in-process (those are not thread-safe); `concurrency` workers when every model is remote, so the
  serving engines see several requests at once and batch them. FIFO is fair. The event loop only parses,
  validates, waits and streams.
- Everything a client can get wrong is checked before a request queues (body, fields, knob ranges via
  `AlignBeamConfig`, max_tokens limit, conversation shape), and answered 400 in OpenAI's error shape, so a bad
  request never waits behind others only to fail, and never shows up as a 500.
- The body is read by hand and validated in one place, `schemas.read_request`, rather than by FastAPI's body
  binding: that is what turns invalid UTF-8, too-deep or non-finite JSON, lone surrogates and unknown fields into
  one consistent 400 with a readable message that names the parameter (FastAPI would answer 422 with a list).
- Shutdown (SIGTERM) has a grace period: new requests get 503 at once, waiting ones may still run for
  `shutdown_grace_s`, then those still waiting get 503 (`shutting_down`) and a running stream stops at its next
  token. The runner calls `app.state.begin_shutdown` when uvicorn starts shutting down, before it waits for the
  open connections (the lifespan's shutdown only comes after them).
- The trace is always requested from the library (it is cheap) so the access log and /metrics have the per-phase
  timings; it is only returned when the request sets `return_trace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alignbeam.api import AlignBeam, Result, to_messages
from alignbeam.errors import AlignBeamError, ConfigError
from alignbeam.method.textrules import trim_stop
from alignbeam.server import schemas as S
from alignbeam.server import validation as V
from alignbeam.server.access import CLIENT_CLOSED, AccessLog, log_info
from alignbeam.server.errors import JSON, BadRequest, api_error, dumps, error_for, log
from alignbeam.server.metrics import Metrics
from alignbeam.server.queue import GenerationQueue, Job, QueueClosed, QueueFull


def create_app(
    ab: AlignBeam,
    api_key: str | None = None,
    max_tokens_limit: int = 1024,
    max_queue: int = 32,
    served_model_name: str = "alignbeam",
    max_body_bytes: int = 4 * 1024 * 1024,
    poll_interval_s: float = 0.25,
    shutdown_grace_s: float = 30.0,
    concurrency: int | None = None,
) -> FastAPI:
    """Build the server for a loaded `AlignBeam`.

    api_key: when set, /v1/* requires `Authorization: Bearer <api_key>` (/health and /metrics stay open for probes
    and scrapers). max_tokens_limit: the largest max_tokens a request may ask for (also the default when the
    pipeline's own max_new_tokens is larger). max_queue: requests allowed to wait while one generates; more get
    429. poll_interval_s: how often a waiting request checks whether its client is still there.
    shutdown_grace_s: on shutdown, how long requests already waiting in line may still be served; after it they
    get 503 (`shutting_down`) and a running stream stops at its next token (a running whole generation finishes).
    concurrency: requests generated at once; only with every model remote (default then 8, else 1).
    """
    if max_tokens_limit < 1:
        raise ValueError("max_tokens_limit must be >= 1")
    if not shutdown_grace_s >= 0:
        raise ValueError("shutdown_grace_s must be >= 0")
    queue = GenerationQueue(max_queue, workers=_workers(ab, concurrency))
    default_max_tokens = min(ab.config.max_new_tokens, max_tokens_limit)
    metrics = Metrics(
        gauges={
            "alignbeam_queue_waiting": ("Requests waiting for the generation worker.", lambda: queue.waiting),
            "alignbeam_queue_running": ("Requests being generated now.", lambda: queue.running),
            "alignbeam_queue_workers": ("Requests that may be generated at once.", lambda: queue.workers),
            "alignbeam_queue_limit": ("--max-queue: waiting requests allowed.", lambda: queue.max_queue),
        }
    )
    started = S.now()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        queue.start()
        try:
            yield
        finally:
            await asyncio.to_thread(queue.stop)

    app = FastAPI(title="AlignBeam", description="OpenAI-compatible AlignBeam server", lifespan=lifespan)
    app.state.alignbeam = ab
    app.state.queue = queue
    app.state.metrics = metrics
    app.add_middleware(AccessLog, metrics=metrics)

    def begin_shutdown() -> None:
        """Called on the event loop when shutdown starts (SIGTERM): take no new requests, and give the waiting
        ones `shutdown_grace_s` before they are answered 503."""
        if queue.closed:
            return
        queue.close()
        if queue.waiting or queue.running:
            log.warning(
                "shutting down: %d request(s) waiting, %d running; waiting ones get 503 after %g s",
                queue.waiting,
                queue.running,
                shutdown_grace_s,
            )

        def expire() -> None:
            n = queue.abandon(
                f"the server is shutting down: this request was still waiting after the {shutdown_grace_s:g} s "
                "shutdown grace period; retry on another instance"
            )
            if n:
                log.warning("shutdown grace period over: %d waiting request(s) answered 503", n)

        asyncio.get_running_loop().call_later(shutdown_grace_s, expire)

    app.state.begin_shutdown = begin_shutdown

    # -- error handlers: every error leaves in OpenAI's shape ----------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSON:
        msg, param = V.describe_validation_error(list(exc.errors()))
        return api_error(400, msg, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSON:
        return api_error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSON:
        return error_for(exc, "messages")

    # -- helpers ------------------------------------------------------------------------------------------
    def authorized(request: Request) -> bool:
        if api_key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), api_key.encode())

    def unauthorized() -> JSON:
        return api_error(
            401,
            "invalid or missing API key: send the header 'Authorization: Bearer <key>' with the server's --api-key",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise BadRequest(f"the request body is over {max_body_bytes} bytes", status=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise BadRequest(f"the request body is over {max_body_bytes} bytes", status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def wait_for(job: Job, request: Request, first_event: bool) -> tuple[bool, Any]:
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

    # -- generation ---------------------------------------------------------------------------------------
    async def generation(request: Request, chat: bool) -> Response:
        info = log_info(request)
        if not authorized(request):
            return unauthorized()
        prompt_param = "messages" if chat else "prompt"
        try:
            raw = await read_body(request)
            req = V.read_request(S.ChatCompletionRequest if chat else S.CompletionRequest, raw, max_tokens_limit)
        except BadRequest as e:
            return api_error(e.status, str(e), e.param, e.code)
        try:
            prompt: Any = req.prompt() if isinstance(req, S.ChatCompletionRequest) else req.prompt_text()
            messages = to_messages(prompt)
            overrides = req.overrides(default_max_tokens, ab.config.n_mix)
            cfg = ab.config.merged(**overrides)
            if req.mode != "draft":
                ab.check_sessions(**overrides)  # k beyond the engine's slots: 400 before the request queues
        except AlignBeamError as e:
            return error_for(e, prompt_param)
        info.update(mode=req.mode, stream=req.stream)
        created, model_name = S.now(), served_model_name
        rid = S.new_id("chatcmpl" if chat else "cmpl")
        info["request_id"] = rid
        stop = req.stop_strings()

        def run_draft() -> tuple[Result, dict[str, float]]:
            t0 = time.perf_counter()
            r = ab.generate_draft(messages, max_new_tokens=cfg.max_new_tokens, ignore_eos=cfg.ignore_eos)
            text, cut = trim_stop(r.text, stop)
            if cut:
                r = Result(text, "stop", r.prompt_tokens, r.completion_tokens)
            return r, {"draft": round((time.perf_counter() - t0) * 1000, 2)}

        try:
            if req.stream:
                job = queue.submit(lambda job: stream_job(job, req.mode, messages, overrides, run_draft))
            elif req.mode == "draft":
                job = queue.submit(lambda job: run_draft())
            else:
                job = queue.submit(lambda job: _with_timings(ab.generate(messages, trace=True, **overrides)))
        except QueueFull as e:
            return api_error(429, str(e), code="queue_full", headers={"Retry-After": "5"})
        except QueueClosed as e:
            return api_error(503, str(e), code="shutting_down")

        if req.stream:
            return await stream_response(request, job, req, chat, rid, created, model_name, prompt_param)

        alive, _ = await wait_for(job, request, first_event=False)
        info["queue_wait_ms"] = round(job.queue_wait_s * 1000, 2)
        if not alive:
            info["status"] = CLIENT_CLOSED
            return api_error(CLIENT_CLOSED, "the client closed the request")
        try:
            result, timings = job.future.result()
        except BaseException as e:
            return error_for(e, prompt_param)
        info.update(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            finish_reason=result.finish_reason,
            timings_ms=timings,
        )
        usage = S.Usage.of(result.prompt_tokens, result.completion_tokens)
        trace = result.trace.to_dict() if (req.return_trace and result.trace is not None) else None
        fr = S.finish_reason(result.finish_reason)
        body: Any
        if chat:
            body = S.ChatCompletion(
                id=rid,
                created=created,
                model=model_name,
                choices=[S.ChatChoice(message=S.AssistantMessage(content=result.text), finish_reason=fr)],
                usage=usage,
                alignbeam_trace=trace,
            )
        else:
            body = S.Completion(
                id=rid,
                created=created,
                model=model_name,
                choices=[S.CompletionChoice(text=result.text, finish_reason=fr)],
                usage=usage,
                alignbeam_trace=trace,
            )
        return JSON(S.dump(body), headers={"x-request-id": rid})

    def stream_job(
        job: Job,
        mode: str,
        messages: list[dict[str, str]],
        overrides: dict[str, Any],
        run_draft: Callable[[], tuple[Result, dict[str, float]]],
    ) -> None:
        """Worker side of a stream: ("start"), then ("delta", text)*, then ("result", (Result, timings)), or
        ("error", exc) at any point. Stops pulling from the generator as soon as the client is gone."""
        try:
            if mode == "draft":
                # the draft baseline has no streaming API: generated whole, then sent as one delta
                result, timings = run_draft()
                job.emit(("start", None))
                if result.text:
                    job.emit(("delta", result.text))
                job.emit(("result", (result, timings)))
                return
            # AlignBeam.stream raises a length error only when first advanced, and with full judging its first
            # item comes at the very end: checked here, a bad request still gets a 400 before the stream starts.
            ab.check_fits(messages, **overrides)
            job.emit(("start", None))
            gen = ab.stream(messages, trace=True, **overrides)
            try:
                for item in gen:
                    if job.cancelled.is_set():  # the client left, or the shutdown grace period is over
                        job.emit(("error", QueueClosed("the server is shutting down: the stream was stopped")))
                        return
                    if isinstance(item, Result):
                        job.emit(("result", _with_timings(item)))
                    else:
                        job.emit(("delta", item))
            finally:
                gen.close()
        except Exception as e:
            job.emit(("error", e))

    async def stream_response(
        request: Request,
        job: Job,
        req: S._GenerationRequest,
        chat: bool,
        rid: str,
        created: int,
        model_name: str,
        prompt_param: str,
    ) -> Response:
        info = log_info(request)
        # Wait for the worker to start this job and pass the checks, so that a bad request still gets a plain 400.
        alive, first = await wait_for(job, request, first_event=True)
        info["queue_wait_ms"] = round(job.queue_wait_s * 1000, 2)
        if not alive:
            info["status"] = CLIENT_CLOSED
            return api_error(CLIENT_CLOSED, "the client closed the request")
        kind, payload = first
        if kind == "error":
            return error_for(payload, prompt_param)

        def chunk(content: str | None = None, role: bool = False, finish: str | None = None, **extra: Any) -> str:
            if chat:
                delta = S.ChunkDelta(role="assistant" if role else None, content=content)
                obj: Any = S.ChatCompletionChunk(
                    id=rid,
                    created=created,
                    model=model_name,
                    choices=[S.ChunkChoice(delta=delta, finish_reason=finish)],
                    **extra,
                )
                d = S.dump(obj)
                d["choices"][0]["delta"] = {k: v for k, v in d["choices"][0]["delta"].items() if v is not None}
            else:
                obj = S.Completion(
                    id=rid,
                    created=created,
                    model=model_name,
                    choices=[S.CompletionChoice(text=content or "", finish_reason=finish)],
                    **extra,
                )
                d = S.dump(obj)
            return f"data: {dumps(d)}\n\n"

        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        async def events() -> AsyncIterator[str]:
            finished = False
            try:
                if chat:
                    yield chunk(role=True)
                while True:
                    kind, payload = await job.events.get()
                    if kind == "delta":
                        yield chunk(content=payload)
                    elif kind == "result":
                        result, timings = payload
                        info.update(
                            prompt_tokens=result.prompt_tokens,
                            completion_tokens=result.completion_tokens,
                            finish_reason=result.finish_reason,
                            timings_ms=timings,
                        )
                        trace = result.trace.to_dict() if (req.return_trace and result.trace is not None) else None
                        extra: dict[str, Any] = {"alignbeam_trace": trace} if trace is not None else {}
                        yield chunk(finish=S.finish_reason(result.finish_reason), **extra)
                        if include_usage:
                            usage = S.Usage.of(result.prompt_tokens, result.completion_tokens)
                            base = S.ChatCompletionChunk if chat else S.Completion
                            obj = base(id=rid, created=created, model=model_name, choices=[], usage=usage)
                            yield f"data: {dumps(S.dump(obj))}\n\n"
                        yield "data: [DONE]\n\n"
                        finished = True
                        return
                    elif kind == "error":
                        err = error_for(payload, prompt_param)
                        info["error"] = str(payload)
                        yield f"data: {err.body.decode('utf-8')}\n\n"
                        finished = True
                        return
            finally:
                if not finished:  # the client went away mid-stream: stop generating for it
                    queue.cancel(job)
                    info["status"] = CLIENT_CLOSED

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "x-request-id": rid}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    # -- routes -------------------------------------------------------------------------------------------
    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        """OpenAI chat completions; AlignBeam knobs as extra body fields."""
        return await generation(request, chat=True)

    @app.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Response:
        """Legacy completions: the prompt is one user turn."""
        return await generation(request, chat=False)

    def model_card() -> S.ModelCard:
        judge = ab.judge
        return S.ModelCard(
            id=served_model_name,
            created=started,
            alignbeam={
                "draft": ab.draft.name,
                "anchor": ab.anchor.name if ab.anchor is not None else None,
                "judge": type(judge).__name__ if judge is not None else None,
                "config": ab.config.to_dict(),
                "max_tokens_limit": max_tokens_limit,
            },
        )

    @app.get("/v1/models", response_model=None)
    async def list_models(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return JSON(S.dump(S.ModelList(data=[model_card()])))

    @app.get("/v1/models/{model_id:path}", response_model=None)
    async def get_model(model_id: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        if model_id != served_model_name:
            return api_error(404, f"model {model_id!r} not found: this server serves {served_model_name!r}", "model")
        return JSON(S.dump(model_card()))

    def engine_state() -> tuple[str, dict[str, Any]]:
        """Each model's sequence slots: "degraded" when one has none free, or fewer than all while nothing runs
        (sessions left open by a failed request: generation would fail until they are freed)."""
        models = _models(ab)
        slots: dict[str, Any] = {}
        degraded = False
        for role, m in models.items():
            cap, free = getattr(m, "max_sessions", None), getattr(m, "free_sessions", None)
            if m is None or cap is None or free is None:
                continue
            slots[role] = {"free": free, "total": cap}
            degraded |= free == 0 or (queue.running == 0 and free < cap)
        return ("degraded" if degraded else "ok"), slots

    @app.get("/health", response_model=None)
    async def health() -> Response:
        """Liveness and load: 200 while the worker is alive and the engines can serve; 503 when the worker is
        gone ("unavailable"), the engines cannot open sessions or a serving engine is down ("degraded"), or the
        server is draining."""
        state, slots = engine_state()
        backends = await asyncio.to_thread(_backends, ab)
        if any(b["state"] != "ok" for b in backends.values()):
            state = "degraded"
        if not queue.alive:
            state = "unavailable"
        elif getattr(queue, "closed", False):
            state = "shutting_down"
        body = {
            "status": state,
            "model": served_model_name,
            "draft": ab.draft.name,
            "anchor": ab.anchor.name if ab.anchor is not None else None,
            "queue": {
                "waiting": queue.waiting,
                "running": queue.running,
                "workers": queue.workers,
                "max_queue": queue.max_queue,
            },
            "slots": slots,
            "backends": backends,
        }
        return JSON(body, status_code=200 if state == "ok" else 503)

    @app.get("/metrics", response_model=None)
    async def metrics_page() -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _models(ab: AlignBeam) -> dict[str, Any]:
    """The loaded models by role (the anchor and the judge may be absent, or one object)."""
    return {"draft": ab.draft, "anchor": ab.anchor, "judge": getattr(ab.judge, "model", None)}


def _workers(ab: AlignBeam, concurrency: int | None) -> int:
    """How many requests may generate at once: several only when no model lives in this process."""
    local = [role for role, m in _models(ab).items() if m is not None and not hasattr(m, "health")]
    if concurrency is None:
        return 1 if local else 8
    if concurrency < 1:
        raise ConfigError("concurrency must be >= 1")
    if concurrency > 1 and local:
        raise ConfigError(
            f"concurrency {concurrency} needs every model on a serving engine, but the {', '.join(local)} "
            "run(s) in this process, where generations must run one at a time: give them as URLs, or use 1"
        )
    return concurrency


def _backends(ab: AlignBeam) -> dict[str, Any]:
    """Each remote model's serving engine, as /health reports it (one check per distinct model)."""
    seen: dict[int, dict[str, Any]] = {}
    out = {}
    for role, m in _models(ab).items():
        if m is not None and hasattr(m, "health"):
            out[role] = seen.setdefault(id(m), m.health())
    return out


def _with_timings(result: Result) -> tuple[Result, dict[str, float]]:
    return result, (dict(result.trace.timings_ms) if result.trace is not None else {})
