"""The OpenAI-compatible HTTP server: `create_app(ab)` gives a FastAPI app serving one AlignBeam pipeline.

Any OpenAI client works unchanged; AlignBeam's knobs ride along as extra body fields (`extra_body=` in the
openai client), so each request can trade safety against cost (alpha, n_mix, k, ...) without a restart.

This module only wires the app: the handlers are module-level functions, one module per endpoint family
(`chat.py` and `streaming.py` for generation, `models_routes.py`, `health.py`), over one `ServerState`
(`state.py`) stored on `app.state.server`. Design choices, and why:
- Generation runs on worker threads in arrival order (see `queue.py`): one worker, one request at a time, when any
  model is in-process (those are not thread-safe); `concurrency` workers when every model is remote, so the
  serving engines see several requests at once and batch them. FIFO is fair.
- The body is read by hand and validated in one place, `validation.read_request`, rather than by FastAPI's body
  binding: that is what turns invalid UTF-8, too-deep or non-finite JSON, lone surrogates and unknown fields into
  one consistent 400 with a readable message that names the parameter (FastAPI would answer 422 with a list).
- Every error leaves in OpenAI's shape, through the exception handlers below or `errors.api_error`.
- Shutdown drains with a grace period, the listening socket open meanwhile (`shutdown.py`, `runner.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from alignbeam.api import AlignBeam
from alignbeam.server import validation as V
from alignbeam.server.access import AccessLog
from alignbeam.server.chat import chat_completions, completions
from alignbeam.server.errors import JSON, api_error, error_for
from alignbeam.server.health import health, metrics_page
from alignbeam.server.models_routes import get_model, list_models
from alignbeam.server.policies import Policy
from alignbeam.server.shutdown import begin_shutdown, drain
from alignbeam.server.state import build_state
from alignbeam.server.ui import add_ui_routes


def create_app(
    ab: AlignBeam,
    api_key: str | None = None,
    max_tokens_limit: int = 1024,
    max_queue: int = 32,
    served_model_name: str = "alignbeam",
    max_body_bytes: int = 4 * 1024 * 1024,
    body_timeout_s: float | None = 30.0,
    poll_interval_s: float = 0.25,
    shutdown_grace_s: float = 30.0,
    concurrency: int | None = None,
    enforce: bool = True,
    allow_shadow_requests: bool = False,
    policies: tuple[Policy, ...] = (),
    ui: bool = False,
) -> FastAPI:
    """Build the server for a loaded `AlignBeam`.

    api_key: when set, /v1/* requires `Authorization: Bearer <api_key>` (/health and /metrics stay open for probes
    and scrapers). max_tokens_limit: the largest max_tokens a request may ask for (also the default when the
    pipeline's own max_new_tokens is larger). max_queue: requests allowed to wait while one generates; more get
    429. max_body_bytes: larger bodies get 413. body_timeout_s: a body not received whole within this gets 408
    and its connection is closed (None: no bound). poll_interval_s: how often a waiting request checks whether
    its client is still there. shutdown_grace_s: on shutdown (drained by the project's runner), how long requests
    already waiting in line may still be served; after it they get 503 (`shutting_down`) and a running stream
    stops at its next token with an error event and [DONE] (a running whole generation finishes).
    concurrency: requests generated at once; only with every model remote (default then 8, else 1).
    enforce: False is shadow mode (clients get the draft alone's answers; AlignBeam's decision is logged and sent
    in headers: decision.py). allow_shadow_requests: a request may ask for shadow mode with "enforce": false.
    policies: per-key operating points and judge policy texts (policies.py).
    ui: serve the playground page at /ui (ui.py), behind the same key as /v1.
    """
    state = build_state(
        ab,
        api_key=api_key,
        served_model_name=served_model_name,
        concurrency=concurrency,
        max_queue=max_queue,
        enforce=enforce,
        allow_shadow_requests=allow_shadow_requests,
        policies=policies,
        max_tokens=max_tokens_limit,
        max_body_bytes=max_body_bytes,
        body_timeout_s=body_timeout_s,
        poll_interval_s=poll_interval_s,
        shutdown_grace_s=shutdown_grace_s,
    )

    app = FastAPI(title="AlignBeam", description="OpenAI-compatible AlignBeam server", lifespan=lifespan)
    app.state.server = state
    app.state.alignbeam, app.state.queue, app.state.metrics = ab, state.queue, state.metrics
    app.state.begin_shutdown = lambda: begin_shutdown(state)
    app.state.drain = lambda: drain(state)
    app.add_middleware(AccessLog, metrics=state.metrics)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(Exception)(internal_error)
    add_routes(app, ui=ui)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The generation workers live as long as the app serves."""
    queue = app.state.server.queue
    queue.start()
    try:
        yield
    finally:
        await asyncio.to_thread(queue.stop)


def add_routes(app: FastAPI, ui: bool = False) -> None:
    """The API's routes, and the playground's (ui.py) when asked for: off by default, as a page is more surface."""
    for path, handler, method in (
        ("/v1/chat/completions", chat_completions, "POST"),
        ("/v1/completions", completions, "POST"),
        ("/v1/models", list_models, "GET"),
        ("/v1/models/{model_id:path}", get_model, "GET"),
        ("/health", health, "GET"),
        ("/metrics", metrics_page, "GET"),
    ):
        app.add_api_route(path, handler, methods=[method], response_model=None)
    if ui:
        add_ui_routes(app)


# -- error handlers: every error leaves in OpenAI's shape ----------------------------------------------------
async def validation_error(_: Request, exc: RequestValidationError) -> JSON:
    msg, param = V.describe_validation_error(list(exc.errors()))
    return api_error(400, msg, param)


async def http_error(_: Request, exc: StarletteHTTPException) -> JSON:
    return api_error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def internal_error(_: Request, exc: Exception) -> JSON:
    return error_for(exc, "messages")
