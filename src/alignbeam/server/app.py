"""The OpenAI-compatible HTTP server: `create_app(ab)` gives a FastAPI app serving one AlignBeam pipeline.

Any OpenAI client works unchanged; AlignBeam's knobs ride along as extra body fields (`extra_body=` in the
openai client), so each request can trade safety against cost (alpha, n_mix, k, ...) without a restart.

Design choices, and why:
- Generation runs on one worker thread, one request at a time, in arrival order (see `queue.py`): the models are
  not thread-safe, and FIFO is fair. The event loop only parses, validates, waits and streams.
- Everything a client can get wrong is checked before a request queues (body, fields, knob ranges via
  `AlignBeamConfig`, max_tokens limit, conversation shape), and answered 400 in OpenAI's error shape, so a bad
  request never waits behind others only to fail, and never shows up as a 500.
- The body is parsed by hand rather than by FastAPI's body binding: that is what turns invalid UTF-8, invalid JSON
  and unknown fields into one consistent 400 with a readable message (FastAPI would answer 422 with a list).
- The trace is always requested from the library (it is cheap) so the access log and /metrics have the per-phase
  timings; it is only returned when the request sets `return_trace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alignbeam.api import AlignBeam, Result, to_messages
from alignbeam.config import AlignBeamConfig
from alignbeam.errors import AlignBeamError, ConfigError, ContextOverflowError
from alignbeam.server import schemas as S
from alignbeam.server.metrics import Metrics
from alignbeam.server.queue import GenerationQueue, Job, QueueClosed, QueueFull

access_log = logging.getLogger("alignbeam.access")
log = logging.getLogger("alignbeam.server")

#: endpoints reported by name in metrics; anything else is "other" so that random paths (scanners) cannot grow
#: the number of series without bound
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics")
_LOG_KEY = "alignbeam.log"
#: HTTP status logged for a client that went away before its answer (nginx's convention)
CLIENT_CLOSED = 499


# -- JSON and errors ---------------------------------------------------------------------------------------
def _default(o: Any) -> Any:
    """numpy scalars and arrays (trace values) and tuples of the config are JSON too."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set | frozenset):
        return sorted(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":"))


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    499: "client_closed_request",
    500: "server_error",
    503: "server_error",
}


def api_error(
    status: int, message: str, param: str | None = None, code: str | None = None, headers: dict | None = None
) -> JSON:
    """An error in OpenAI's shape, which the openai client turns into the matching exception class."""
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    body = S.ErrorResponse(error=S.ErrorBody(message=message, type=kind, param=param, code=code))
    return JSON(body.model_dump(), status_code=status, headers=headers)


def _config_param(msg: str) -> str | None:
    """ConfigError messages start with the field name ("alpha must be ..."): report it as the error's param."""
    first = msg.split(" ", 1)[0].strip(":")
    fields = set(AlignBeamConfig.__dataclass_fields__)
    if first == "max_new_tokens":
        return "max_tokens"
    return first if first in fields else None


def error_for(exc: BaseException, prompt_param: str) -> JSON:
    """HTTP error for an exception from validation or generation: user errors 400, anything else 500."""
    if isinstance(exc, QueueClosed):
        return api_error(503, str(exc), code="shutting_down")
    if isinstance(exc, ContextOverflowError):
        return api_error(400, str(exc), prompt_param, "context_length_exceeded")
    if isinstance(exc, ConfigError):
        return api_error(400, str(exc), _config_param(str(exc)), "invalid_value")
    if isinstance(exc, AlignBeamError):
        return api_error(400, str(exc), prompt_param)
    log.error("generation failed", exc_info=(type(exc), exc, exc.__traceback__))
    return api_error(500, f"internal error ({type(exc).__name__}): {exc}", code="internal_error")


class BadRequest(Exception):
    """Raised while reading a request; becomes `api_error(status, message, param, code)`."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


# -- access log + metrics ----------------------------------------------------------------------------------
class AccessLog:
    """Pure ASGI middleware: one JSON log line and one metrics observation per request, at its real end.

    Written as raw ASGI (not `@app.middleware`) because a streamed response ends long after the handler returns;
    only the final body message says when the request is over. Handlers add what they know (tokens, mode,
    phase timings) to a dict in the scope.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info: dict[str, Any] = {}
        scope[_LOG_KEY] = info
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            latency = time.perf_counter() - t0
            status = info.pop("status", status)  # a handler that saw its client leave reports 499
            path = scope.get("path", "")
            endpoint = path if path in ENDPOINTS else ("/v1/models" if path.startswith("/v1/models/") else "other")
            entry: dict[str, Any] = {
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "latency_ms": round(latency * 1000, 2),
            }
            client = scope.get("client")
            if client:
                entry["client"] = f"{client[0]}:{client[1]}"
            entry.update(info)
            with contextlib.suppress(Exception):  # logging must never turn a served request into an error
                access_log.info(dumps(entry))
            if endpoint != "/metrics":
                self.metrics.observe_request(
                    endpoint,
                    status,
                    latency,
                    mode=info.get("mode"),
                    prompt_tokens=info.get("prompt_tokens"),
                    completion_tokens=info.get("completion_tokens"),
                    queue_wait_s=None if "queue_wait_ms" not in info else info["queue_wait_ms"] / 1000,
                    phases_ms=info.get("timings_ms"),
                )


def _log_info(request: Request) -> dict[str, Any]:
    return request.scope.setdefault(_LOG_KEY, {})


# -- the app -----------------------------------------------------------------------------------------------
def _trim_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((text.index(s) for s in stop if s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _precheck(ab: AlignBeam, messages: list[dict[str, str]], cfg: AlignBeamConfig) -> None:
    """The library's context-window checks, run before a stream starts.

    `AlignBeam.stream` only raises its ContextOverflowError when first advanced, and with full judging its first
    item comes at the very end; checking here lets a stream answer 400 *before* the 200 and the role chunk go out.
    """
    n = len(ab.draft.tokenizer.encode_chat(messages))
    if n + cfg.max_new_tokens > ab.draft.n_ctx:
        raise ContextOverflowError(
            f"the prompt has {n} tokens for {ab.draft.name}, and {n} + max_tokens {cfg.max_new_tokens} exceeds its "
            f"context window of {ab.draft.n_ctx}: shorten the conversation or lower max_tokens"
        )
    if ab.anchor is not None and cfg.alpha > 0 and cfg.n_mix > 0:
        na = len(ab.anchor.tokenizer.encode_chat(messages))
        if na + cfg.n_mix > ab.anchor.n_ctx:
            raise ContextOverflowError(
                f"the prompt has {na} tokens for the anchor {ab.anchor.name}, over its context of "
                f"{ab.anchor.n_ctx}: shorten the conversation"
            )


def _draft_alone(
    ab: AlignBeam, messages: list[dict[str, str]], max_new_tokens: int, ignore_eos: bool = False
) -> Result:
    """The draft alone (mode="draft"), as `AlignBeam.generate_draft`.

    generate_draft validates its max_new_tokens against the pipeline's whole config, so it rejects a response
    shorter than the pipeline's n_mix (a knob the draft alone does not use); below that length the same greedy
    generation is run here directly.
    """
    if max_new_tokens >= ab.config.n_mix:
        return ab.generate_draft(messages, max_new_tokens=max_new_tokens, ignore_eos=ignore_eos)
    model = ab.draft
    ids = model.tokenizer.encode_chat(messages)
    if len(ids) + max_new_tokens > model.n_ctx:
        raise ContextOverflowError(
            f"the prompt has {len(ids)} tokens for {model.name}, and {len(ids)} + max_tokens {max_new_tokens} "
            f"exceeds its context window of {model.n_ctx}: shorten the conversation or lower max_tokens"
        )
    out = model.generate_greedy(ids, max_new_tokens, ignore_eos=ignore_eos)
    reason = "stop" if len(out) < max_new_tokens else "length"
    return Result(model.tokenizer.decode(out), reason, len(ids), len(out))


def create_app(
    ab: AlignBeam,
    api_key: str | None = None,
    max_tokens_limit: int = 1024,
    max_queue: int = 32,
    served_model_name: str = "alignbeam",
    max_body_bytes: int = 4 * 1024 * 1024,
    poll_interval_s: float = 0.25,
) -> FastAPI:
    """Build the server for a loaded `AlignBeam`.

    api_key: when set, /v1/* requires `Authorization: Bearer <api_key>` (/health and /metrics stay open for probes
    and scrapers). max_tokens_limit: the largest max_tokens a request may ask for (also the default when the
    pipeline's own max_new_tokens is larger). max_queue: requests allowed to wait while one generates; more get
    429. poll_interval_s: how often a waiting request checks whether its client is still there.
    """
    if max_tokens_limit < 1:
        raise ValueError("max_tokens_limit must be >= 1")
    queue = GenerationQueue(max_queue)
    default_max_tokens = min(ab.config.max_new_tokens, max_tokens_limit)
    metrics = Metrics(
        gauges={
            "alignbeam_queue_waiting": ("Requests waiting for the generation worker.", lambda: queue.waiting),
            "alignbeam_queue_running": ("Requests being generated (0 or 1).", lambda: queue.running),
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

    # -- error handlers: every error leaves in OpenAI's shape ----------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSON:
        msg, param = S.describe_validation_error(list(exc.errors()))
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

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise BadRequest(f"the request body is over {max_body_bytes} bytes", status=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise BadRequest(f"the request body is over {max_body_bytes} bytes", status=413)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise BadRequest("the request body is empty: send a JSON object")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest(f"the request body is not valid UTF-8 (byte {e.start}): send UTF-8 encoded JSON") from e
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise BadRequest(f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e

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
        info = _log_info(request)
        if not authorized(request):
            return unauthorized()
        prompt_param = "messages" if chat else "prompt"
        try:
            data = await read_json(request)
            req = S.parse(S.ChatCompletionRequest if chat else S.CompletionRequest, data)
        except BadRequest as e:
            return api_error(e.status, str(e), e.param, e.code)
        except ValidationError as e:
            msg, param = S.describe_validation_error(e)
            return api_error(400, msg, param)
        except TypeError as e:
            return api_error(400, str(e))
        problem = req.unsupported()
        if problem:
            return api_error(400, problem, problem.split(":", 1)[0], "unsupported_parameter")
        requested = req.requested_max_tokens()
        if requested is not None and requested < 1:
            return api_error(400, f"max_tokens must be >= 1, got {requested}", "max_tokens", "invalid_value")
        if requested is not None and requested > max_tokens_limit:
            return api_error(
                400,
                f"max_tokens is {requested}, over this server's limit of {max_tokens_limit} (--max-tokens-limit)",
                "max_tokens",
                "invalid_value",
            )
        try:
            prompt: Any = req.prompt() if isinstance(req, S.ChatCompletionRequest) else req.prompt_text()
            messages = to_messages(prompt)
            overrides = req.overrides(default_max_tokens, ab.config.n_mix)
            cfg = ab.config.merged(**overrides)
        except AlignBeamError as e:
            return error_for(e, prompt_param)
        info.update(mode=req.mode, stream=req.stream)
        created, model_name = S.now(), served_model_name
        rid = S.new_id("chatcmpl" if chat else "cmpl")
        info["request_id"] = rid
        stop = req.stop_strings()

        def run_draft() -> tuple[Result, dict[str, float]]:
            t0 = time.perf_counter()
            r = _draft_alone(ab, messages, cfg.max_new_tokens, cfg.ignore_eos)
            text, cut = _trim_stop(r.text, stop)
            if cut:
                r = Result(text, "stop", r.prompt_tokens, r.completion_tokens)
            return r, {"draft": round((time.perf_counter() - t0) * 1000, 2)}

        try:
            if req.stream:
                job = queue.submit(lambda job: stream_job(job, req.mode, messages, overrides, cfg, run_draft))
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
        cfg: AlignBeamConfig,
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
            _precheck(ab, messages, cfg)
            job.emit(("start", None))
            gen = ab.stream(messages, trace=True, **overrides)
            try:
                for item in gen:
                    if job.cancelled.is_set():
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
        info = _log_info(request)
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

    @app.get("/health", response_model=None)
    async def health() -> Response:
        """Liveness and load: 200 while the generation worker is alive, 503 otherwise."""
        ok = queue.alive
        body = {
            "status": "ok" if ok else "unavailable",
            "model": served_model_name,
            "draft": ab.draft.name,
            "anchor": ab.anchor.name if ab.anchor is not None else None,
            "queue": {"waiting": queue.waiting, "running": queue.running, "max_queue": queue.max_queue},
        }
        return JSON(body, status_code=200 if ok else 503)

    @app.get("/metrics", response_model=None)
    async def metrics_page() -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _with_timings(result: Result) -> tuple[Result, dict[str, float]]:
    return result, (dict(result.trace.timings_ms) if result.trace is not None else {})
