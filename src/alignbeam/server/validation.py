"""Reading a request body: every check a malformed request can fail, in one place, before it can queue.

Raw bytes first (size is checked by the app; here UTF-8, byte-order mark, nesting depth before any parsing),
then JSON with hooks that refuse non-finite numbers, giant integers, duplicate keys and lone surrogates, then the
strict pydantic schema (`schemas.py`). Every failure is a `BadRequest` with one sentence naming the parameter.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any

import numpy as np
from pydantic import ValidationError

from alignbeam.server.schemas import KNOBS, MAX_DEPTH, UNION_TAG, BadRequest, GenerationRequest

#: OpenAI request fields this server knowingly lacks: a clear "not supported" instead of "unknown field"
UNSUPPORTED_FIELDS = {
    **dict.fromkeys(
        ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"),
        "tool and function calling is not supported (these models generate text only)",
    ),
    "response_format": "structured output is not supported (the response is plain text)",
    "logit_bias": "logit_bias is not supported",
    "top_logprobs": "logprobs are not supported",
    **dict.fromkeys(("audio", "modalities"), "only text output is supported"),
    **dict.fromkeys(("best_of", "echo", "suffix", "prediction"), "not supported by this server"),
}


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _path(loc: typing.Iterable[Any]) -> str:
    """A parameter as OpenAI names it: `messages[0].content[1]` (union tags and FastAPI's "body" left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (part == "body" and not out) or (isinstance(part, str) and part.startswith(UNION_TAG)):
            continue
        else:
            out += ("." if out else "") + _clip(str(part))
    return out


def _show(v: Any) -> str:
    """A short description of a client's value for an error message (never a huge repr)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if abs(v) < 10**18 else "a very large integer"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return f"the string {json.dumps(v)}" if len(v) <= 40 else f"a {len(v)}-character string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


_TYPE_NAMES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "list_type": "an array",
    "finite_number": "a finite number",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def describe_validation_error(err: ValidationError | list[dict[str, Any]]) -> tuple[str, str | None]:
    """One readable sentence (and the offending parameter) for pydantic's error list.

    Unknown fields are the common mistake (a misspelt knob, or an OpenAI feature this server lacks), so they
    get a message that names the field and lists what *is* accepted.
    """
    errors = err.errors() if isinstance(err, ValidationError) else err
    if not errors:
        return "invalid request body", None
    first = errors[0]
    loc = list(first.get("loc", ()))
    param = _path(loc) or None
    kind, ctx, value = first.get("type"), first.get("ctx") or {}, first.get("input")
    where = param or "the request body"
    if kind == "extra_forbidden":
        field = _clip(str(loc[-1])) if loc else "?"
        parent = _path(loc[:-1])
        if not parent and field in UNSUPPORTED_FIELDS:
            msg = f"{field}: {UNSUPPORTED_FIELDS[field]}"
        elif not parent:
            msg = (
                f"unknown field {field!r}: not an OpenAI parameter this server supports nor an AlignBeam knob "
                f"({', '.join(KNOBS)}, mode, return_trace)"
            )
        else:
            msg = f"unknown field {field!r} in {parent}"
    elif kind == "missing":
        msg = f"missing required field {param!r}"
    elif kind in _TYPE_NAMES:
        msg = f"{where} must be {_TYPE_NAMES[kind]}, got {_show(value)}"
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        msg = f"{where} must be {_BOUNDS[kind]} {bound}, got {_show(value)}"
    elif kind == "literal_error":
        msg = f"{where} must be {ctx.get('expected', 'one of the documented values')}, got {_show(value)}"
    elif kind == "too_long":
        msg = f"{where}: at most {ctx.get('max_length')} items are allowed, got {ctx.get('actual_length')}"
    elif kind == "invalid_type":  # the hand-made union discriminators: "must be a string or an array of ..."
        msg = f"{where} {first.get('msg')}, got {_show(value)}"
    else:
        msg = f"{where}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return msg, param


def _validation_code(err: ValidationError) -> str:
    errors = err.errors()
    first = errors[0] if errors else {}
    kind, loc = first.get("type"), first.get("loc", ())
    if kind == "extra_forbidden":
        return "unsupported_parameter" if len(loc) == 1 and loc[0] in UNSUPPORTED_FIELDS else "unknown_parameter"
    if kind == "missing":
        return "missing_required_parameter"
    if kind == "unsupported_content":
        return "unsupported_content"
    if kind in _TYPE_NAMES or kind == "invalid_type":
        return "invalid_type"
    return "invalid_value"


# Strings are skipped with one regex (an unterminated string runs to the end, so a failed match never restarts
# at every later quote), and the bracket depth is a running sum; both in C, linear in the body size.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*\\?(?:"|\Z)', re.DOTALL)
_DEPTH_STEP = np.zeros(256, dtype=np.int32)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1
#: a JSON escape of a UTF-16 surrogate: only then can a decoded string hold one (paired ones decode to one char)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in a JSON text, brackets inside strings not counted; without scanning
    when the body cannot be that deep (fewer than `limit` opening brackets in all: that count is returned)."""
    opens = raw.count(b"[") + raw.count(b"{")
    if opens <= limit:
        return opens
    bare = _JSON_STRING.sub(b"", raw)
    if not bare:
        return 0
    depth = np.cumsum(_DEPTH_STEP[np.frombuffer(bare, dtype=np.uint8)], dtype=np.int64)
    return int(depth.max())


class _Invalid:
    """What the JSON hooks put in place of a value JSON allows but a request must not carry; `_first_invalid`
    then finds it with its path, so the error can name the parameter."""

    def __init__(self, message: str, big_int: int = 0) -> None:
        self.message, self.big_int = message, big_int  # big_int: the sign of an integer too long to convert


def _first_invalid(obj: Any, path: str = "") -> tuple[str, str | _Invalid] | None:
    """The first sentinel, or string with a lone surrogate, in document order: (path, the problem)."""
    if isinstance(obj, _Invalid):
        return path, obj
    if isinstance(obj, str):
        return (path, "surrogate") if _SURROGATE.search(obj) else None
    if isinstance(obj, dict):
        for key, value in obj.items():
            if _SURROGATE.search(key):
                return path, "surrogate key"
            found = _first_invalid(value, f"{path}.{_clip(key)}" if path else _clip(key))
            if found:
                return found
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found = _first_invalid(value, f"{path}[{i}]")
            if found:
                return found
    return None


class _JsonHooks:
    """json.loads hooks that put an `_Invalid` where JSON allows a value a request must not carry (`flagged` then
    says a search for it is needed; most bodies skip that walk)."""

    def __init__(self) -> None:
        self.flagged = False

    def invalid(self, message: str, big_int: int = 0) -> _Invalid:
        self.flagged = True
        return _Invalid(message, big_int)

    def constant(self, name: str) -> _Invalid:
        return self.invalid(f"{name} is not a JSON number (numbers must be finite)")

    def number(self, s: str) -> float | _Invalid:
        f = float(s)
        return (
            f if np.isfinite(f) else self.invalid(f"the number {_clip(s, 24)} is out of range (numbers must be finite)")
        )

    def integer(self, s: str) -> int | _Invalid:
        try:
            return int(s)
        except ValueError:  # over Python's int-string conversion limit (4300 digits)
            return self.invalid(f"the integer ({len(s)} digits) is too large", -1 if s.startswith("-") else 1)

    def pairs(self, items: list[tuple[str, Any]]) -> dict[str, Any] | _Invalid:
        d = dict(items)
        if len(d) == len(items):
            return d
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                return self.invalid(f"duplicate key {_clip(key)!r}")
            seen.add(key)
        return d


def decode_body(raw: bytes, max_tokens_limit: int | None = None) -> Any:
    """A request body's bytes as JSON, or BadRequest: valid UTF-8 without a byte-order mark, nested at most
    MAX_DEPTH deep, finite numbers only (no NaN, Infinity or 1e999, which Python's json would accept), integers
    Python can convert (a 5,000-digit max_tokens is over the limit, not a crash), no duplicate keys (parsers
    disagree on which one wins), and no lone UTF-16 surrogates (they cannot be encoded, so no model can read
    them)."""
    if not raw.strip():
        raise BadRequest("the request body is empty: send a JSON object")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise BadRequest("the request body starts with a byte-order mark: send UTF-8 JSON without one")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"the request body is not valid UTF-8 (byte {e.start}): send UTF-8 encoded JSON") from e
    depth = json_depth(raw)
    if depth > MAX_DEPTH:
        raise BadRequest(
            f"the request body nests arrays and objects {depth} levels deep; at most {MAX_DEPTH} are allowed"
        )
    hooks = _JsonHooks()
    try:
        data = json.loads(
            text,
            parse_constant=hooks.constant,
            parse_float=hooks.number,
            parse_int=hooks.integer,
            object_pairs_hook=hooks.pairs,
        )
    except json.JSONDecodeError as e:
        raise BadRequest(f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except (ValueError, RecursionError) as e:  # not expected past the checks above; still the client's body
        raise BadRequest(f"the request body is not valid JSON ({type(e).__name__})") from e
    if hooks.flagged or _SURROGATE_ESCAPE.search(raw):
        found = _first_invalid(data)
        if found:
            raise _invalid_error(*found, max_tokens_limit)
    return data


def _invalid_error(path: str, problem: str | _Invalid, max_tokens_limit: int | None) -> BadRequest:
    where = path or "the request body"
    if problem == "surrogate" or problem == "surrogate key":
        what = "a key" if problem == "surrogate key" else "the text"
        msg = (
            f"{where}: {what} contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not "
            "valid Unicode"
        )
        return BadRequest(msg, path or None, code="invalid_value")
    assert isinstance(problem, _Invalid)
    if problem.big_int and path in ("max_tokens", "max_completion_tokens"):
        if problem.big_int < 0:
            return BadRequest(f"{path} must be >= 1", path, code="invalid_value")
        return BadRequest(max_tokens_over(path, None, max_tokens_limit), path, code="invalid_value")
    return BadRequest(f"{where}: {problem.message}", path or None, code="invalid_value")


def max_tokens_over(param: str, requested: int | None, limit: int | None) -> str:
    got = "" if requested is None else f", got {_show(requested)}"
    of = "" if limit is None else f" of {limit} (--max-tokens-limit)"
    return f"{param} is over this server's limit{of}{got}"


def read_request(model: type[GenerationRequest], raw: bytes, max_tokens_limit: int) -> GenerationRequest:
    """The one place a request is validated: its body's bytes -> a request within this server's limits, or
    `BadRequest` (status 400, a readable sentence, the offending parameter, an OpenAI-style error code)."""
    data = decode_body(raw, max_tokens_limit)
    if not isinstance(data, dict):
        raise BadRequest(f"the request body must be a JSON object, got {_show(data)}", code="invalid_type")
    try:
        req = model.model_validate(data)
    except ValidationError as e:
        msg, param = describe_validation_error(e)
        raise BadRequest(msg, param, code=_validation_code(e)) from e
    problem = req.unsupported()
    if problem:
        raise BadRequest(problem, problem.split(":", 1)[0], code="unsupported_parameter")
    requested, param = req.requested_max_tokens(), req.max_tokens_param()
    if requested is not None and requested < 1:
        raise BadRequest(f"{param} must be >= 1, got {_show(requested)}", param, code="invalid_value")
    if requested is not None and requested > max_tokens_limit:
        raise BadRequest(max_tokens_over(param, requested, max_tokens_limit), param, code="invalid_value")
    return req


def parse(model: type[GenerationRequest], data: Any) -> GenerationRequest:
    """Validate an already decoded JSON body (raises pydantic's ValidationError); `read_request` does it all."""
    if not isinstance(data, dict):
        raise TypeError("the request body must be a JSON object")
    return model.model_validate(data)
