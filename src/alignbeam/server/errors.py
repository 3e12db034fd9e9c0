"""JSON rendering and errors in OpenAI's shape: every error the server sends leaves through `api_error`.

The openai client turns the body `{"error": {"message", "type", "param", "code"}}` into its matching exception
class, so a client sees a readable message with the offending parameter, never a stack trace.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.responses import JSONResponse

from alignbeam.config import AlignBeamConfig
from alignbeam.errors import (
    AlignBeamError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    ContextOverflowError,
    EngineBusyError,
)
from alignbeam.server import schemas as S
from alignbeam.server.queue import QueueClosed
from alignbeam.server.schemas import BadRequest

log = logging.getLogger("alignbeam.server")

__all__ = ["JSON", "BadRequest", "api_error", "dumps", "error_for"]


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
        text = dumps(content)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (requests with one are refused; this is the last guard)
            return json.dumps(content, default=_default, ensure_ascii=True, separators=(",", ":")).encode("ascii")


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    499: "client_closed_request",
    500: "server_error",
    503: "server_error",
    504: "server_error",
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
    if isinstance(exc, EngineBusyError):  # the engine's slots are taken right now: the same request can succeed later
        return api_error(503, str(exc), code="engine_busy", headers={"Retry-After": "5"})
    if isinstance(exc, BackendTimeoutError):  # a serving engine did not answer in time
        return api_error(504, str(exc), code="backend_timeout")
    if isinstance(exc, BackendError):  # a serving engine is down or answered an error: retry once it is back
        return api_error(503, str(exc), code="backend_unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, ContextOverflowError):
        return api_error(400, str(exc), prompt_param, "context_length_exceeded")
    if isinstance(exc, ConfigError):
        return api_error(400, str(exc), _config_param(str(exc)), "invalid_value")
    if isinstance(exc, AlignBeamError):
        return api_error(400, str(exc), prompt_param)
    log.error("generation failed", exc_info=(type(exc), exc, exc.__traceback__))
    return api_error(500, f"internal error ({type(exc).__name__}): {exc}", code="internal_error")
