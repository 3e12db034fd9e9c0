"""Reading a request body: its media type, its size and its time are bounded before any parsing (that is
`validation.py`).

- **Media type.** A body is read as JSON when its Content-Type says JSON (`application/json`, or
  `application/<anything>+json`) or when there is none: the rule FastAPI applies to its own JSON bodies, so
  vLLM and other FastAPI-based servers answer the same request the same way. Anything else is a 415 that says
  which header to send, `text/plain` as well as `application/x-www-form-urlencoded` (what `curl -d` sends
  unless given `-H 'Content-Type: application/json'`): a body declared as text or form data is a client
  misconfigured, and reading it as JSON anyway hides that. It also keeps HTML forms (`enctype="text/plain"` is
  the classic way to post JSON-looking text cross-site) away from generation; it is no CSRF defence on its own
  (a script can post a body with no type at all), which is what `--api-key` is for.
- **Size.** Over `max_bytes` is a 413, before reading anything when the Content-Length says so.
- **Time.** The whole body must arrive within `timeout_s` of the handler asking for it, else a 408 that closes
  the connection: without a bound, a client sending one byte a second (slowloris) holds a connection and a
  handler for as long as it likes, and uvicorn bounds neither the headers nor the body (only the idle time
  between requests, `timeout_keep_alive`).
- **A client that leaves** while sending raises `ClientGone`: its doing, answered (to nobody) and logged as 499,
  never a 500 with a traceback.
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from starlette.requests import ClientDisconnect

from alignbeam.server.schemas import BadRequest

#: sent with an error that leaves the rest of the body unread, so the connection is not reused mid-body
CLOSE = {"Connection": "close"}


class ClientGone(Exception):
    """The client closed the connection before its request body was read whole."""


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type lets the body be read as JSON: none at all, `application/json` or
    `application/*+json` (parameters such as `charset=utf-8` aside)."""
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def check_media_type(request: Request) -> None:
    """BadRequest 415 for a body that does not say it is JSON (see the module docstring for the rule)."""
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise BadRequest(
            f"unsupported Content-Type {content_type.split(';', 1)[0].strip()[:60]!r}: send the JSON body with "
            "'Content-Type: application/json' (with curl: -H 'Content-Type: application/json')",
            status=415,
            code="unsupported_media_type",
        )


async def read_body(request: Request, max_bytes: int, timeout_s: float | None = None) -> bytes:
    """The body's bytes, or BadRequest 413 as soon as it is over `max_bytes` (a declared Content-Length over the
    bound is refused before reading anything, and a chunked body is counted as it arrives, so an oversized body
    is never held in memory whole), BadRequest 408 when it has not arrived whole within `timeout_s`, or
    `ClientGone` when the client disconnects first."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(f"the request body is over {max_bytes} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BadRequest(f"the request body is over {max_bytes} bytes", status=413)
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(
            f"the request body did not arrive within {timeout_s:g} s ({size} bytes received); send it at once",
            status=408,
            code="request_timeout",
        ) from None
    except ClientDisconnect:
        raise ClientGone(f"the client closed the connection after {size} bytes of its request body") from None
    return b"".join(chunks)
