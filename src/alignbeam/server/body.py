"""Reading a request body within the server's size bound, before any parsing (that is `validation.py`)."""

from __future__ import annotations

from fastapi import Request

from alignbeam.server.schemas import BadRequest


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body's bytes, or BadRequest 413 as soon as it is over `max_bytes`: a declared Content-Length over the
    bound is refused before reading anything, and a chunked body is counted as it arrives, so an oversized body
    is never held in memory whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(f"the request body is over {max_bytes} bytes", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(f"the request body is over {max_bytes} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)
