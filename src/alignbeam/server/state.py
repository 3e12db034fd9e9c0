"""What every handler of one app shares: the pipeline, the generation queue, the metrics and the server's limits.

The handlers are module-level functions (one module per endpoint family) that find this object on
`request.app.state.server`, rather than closures inside `create_app`: each can then be read, and tested, on its
own, with a state built by `build_state` and no app around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from alignbeam.api import AlignBeam
from alignbeam.errors import ConfigError
from alignbeam.server.metrics import Metrics
from alignbeam.server.policies import Policy
from alignbeam.server.queue import GenerationQueue
from alignbeam.server.schemas import now


@dataclass(frozen=True)
class Limits:
    """The server's bounds on one request (see `create_app` for each)."""

    max_tokens: int = 1024
    default_max_tokens: int = 1024
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout_s: float | None = 30.0
    poll_interval_s: float = 0.25
    shutdown_grace_s: float = 30.0


@dataclass(eq=False)
class ServerState:
    """One app's shared state. `queue` is the only part that changes while serving; the rest is set once."""

    ab: AlignBeam
    queue: GenerationQueue
    metrics: Metrics
    limits: Limits
    api_key: str | None = None
    served_model_name: str = "alignbeam"
    started: int = field(default_factory=now)
    #: False: shadow mode, every answer is the draft alone's and AlignBeam's decision is only logged and sent
    enforce: bool = True
    #: whether a request may ask for shadow mode itself ("enforce": false) on an enforcing server
    allow_shadow_requests: bool = False
    #: per-key policies (policies.py); empty: every authorised request runs with the default
    policies: tuple[Policy, ...] = ()


def build_state(
    ab: AlignBeam,
    api_key: str | None = None,
    served_model_name: str = "alignbeam",
    concurrency: int | None = None,
    max_queue: int = 32,
    enforce: bool = True,
    allow_shadow_requests: bool = False,
    policies: tuple[Policy, ...] = (),
    **limits: Any,
) -> ServerState:
    """The state `create_app` serves (its queue not started yet). `limits` are `Limits` fields, except
    `default_max_tokens`, which follows from the pipeline's max_new_tokens and the max_tokens limit."""
    lim = Limits(**limits)
    if lim.max_tokens < 1:
        raise ValueError("max_tokens_limit must be >= 1")
    if not lim.shutdown_grace_s >= 0:
        raise ValueError("shutdown_grace_s must be >= 0")
    if lim.body_timeout_s is not None and not lim.body_timeout_s > 0:
        raise ValueError("body_timeout_s must be > 0")
    lim = Limits(**{**limits, "default_max_tokens": min(ab.config.max_new_tokens, lim.max_tokens)})
    queue = GenerationQueue(max_queue, workers=workers_for(ab, concurrency))
    metrics = Metrics(
        gauges={
            "alignbeam_queue_waiting": ("Requests waiting for the generation worker.", lambda: queue.waiting),
            "alignbeam_queue_running": ("Requests being generated now.", lambda: queue.running),
            "alignbeam_queue_workers": ("Requests that may be generated at once.", lambda: queue.workers),
            "alignbeam_queue_limit": ("--max-queue: waiting requests allowed.", lambda: queue.max_queue),
        }
    )
    for p in policies:  # a policy's knobs are checked once, when the server starts
        try:
            ab.config.merged(**p.knobs)
        except ConfigError as e:
            raise ConfigError(f"policy {p.name!r}: {e}") from None
    shadow = {"enforce": enforce, "allow_shadow_requests": allow_shadow_requests, "policies": tuple(policies)}
    return ServerState(ab, queue, metrics, lim, api_key=api_key, served_model_name=served_model_name, **shadow)


def state_of(request: Request) -> ServerState:
    """The state of the app serving `request` (set by `create_app`)."""
    state: ServerState = request.app.state.server
    return state


def models_of(ab: AlignBeam) -> dict[str, Any]:
    """The loaded models by role (the anchor and the judge may be absent, or one object)."""
    return {"draft": ab.draft, "anchor": ab.anchor, "judge": getattr(ab.judge, "model", None)}


def workers_for(ab: AlignBeam, concurrency: int | None) -> int:
    """How many requests may generate at once: several only when no model lives in this process."""
    local = [role for role, m in models_of(ab).items() if m is not None and not hasattr(m, "health")]
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
