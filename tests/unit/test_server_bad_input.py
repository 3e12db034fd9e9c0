"""A corpus of hostile and malformed requests against the real ASGI app over real HTTP (fake pipeline, no models).

Every request must get an answer (never a dropped connection), that answer must be a 4xx in OpenAI's error shape
(never a 5xx, never a server traceback), and the server must stay healthy after it. The corpus holds the cases an
attacker's corpus found (nesting 100k deep, a 5,000-digit max_tokens, lone surrogates, seed -1, NaN, Infinity,
lax-mode coercions, image parts) and, derived from the schema so that a new field is covered without an edit, a
wrong JSON type and every non-finite number for every field.
"""

from __future__ import annotations

import json
import logging
import types
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_server_app import FakeAlignBeam

from alignbeam.server import BackgroundServer, create_app
from alignbeam.server import schemas as S

H = {"Authorization": "Bearer k", "Content-Type": "application/json"}
CHAT, LEGACY = "/v1/chat/completions", "/v1/completions"
LIMIT = 50
MSG = {"role": "user", "content": "hi"}
HEAD = '{"messages":[{"role":"user","content":"hi"}]'
ANY = object()  # "param not checked"


class Under(str):
    """An expected param that may be this field or anything inside it (stream_options.x, stop[1])."""


class Errors(logging.Handler):
    """Collects ERROR records (a server traceback is logged at ERROR by uvicorn or by the app)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    app = create_app(FakeAlignBeam(), api_key="k", max_tokens_limit=LIMIT, max_queue=4, poll_interval_s=0.05)  # type: ignore[arg-type]
    with BackgroundServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def errors(server: BackgroundServer) -> Iterator[Errors]:
    handler = Errors()
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "uvicorn.asgi", "alignbeam.server")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler
    for lg in loggers:
        lg.removeHandler(handler)


def chat(**fields: Any) -> bytes:
    return json.dumps({"messages": [MSG], **fields}).encode()


def raw(extra: str) -> bytes:
    """A chat body with `extra` spliced in as written (for what json.dumps cannot write: NaN, big ints, ...)."""
    return (HEAD + ("," + extra if extra else "") + "}").encode()


def case(
    id: str, body: bytes, needle: str | None = None, param: Any = ANY, status: int = 400, path: str = CHAT, **kw: Any
) -> Any:
    return pytest.param(body, needle, param, status, path, kw, id=id)


DIGITS_5000 = "9" * 5000
SURROGATE = '"\\ud800"'
HUNDRED_STOPS = json.dumps([f"s{i}" for i in range(100)])

CORPUS = [
    # -- the attacker's corpus: each of these was a 500 (or a dropped connection) ----------------------------
    case("deep-array-top", b"[" * 100_000 + b"]" * 100_000, "levels deep", None),
    case("deep-array-in-messages", b'{"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "levels deep"),
    case("deep-object", b'{"a":' * 5000 + b"1" + b"}" * 5000, "levels deep"),
    case("deep-unclosed", b"[" * 100_000, "levels deep"),
    case("deep-just-over", raw('"x":' + "[" * 64 + "]" * 64), "65 levels deep"),
    case("depth-at-limit-is-parsed", raw('"x":' + "[" * 63 + "]" * 63), "unknown field 'x'", "x"),
    case("max-tokens-5000-digits", raw(f'"max_tokens":{DIGITS_5000}'), "max_tokens is over this server's limit"),
    case("max-tokens-minus-5000-digits", raw(f'"max_tokens":-{DIGITS_5000}'), "max_tokens must be >= 1"),
    case("max-tokens-1000-digits", raw(f'"max_tokens":{"9" * 1000}'), "max_tokens is over this server's limit"),
    case("max-completion-tokens-5000-digits", raw(f'"max_completion_tokens":{DIGITS_5000}'), "over this server's"),
    case("k-5000-digits", raw(f'"k":{DIGITS_5000}'), "too large", "k"),
    case("seed-5000-digits", raw(f'"seed":{DIGITS_5000}'), "too large", "seed"),
    case(
        "surrogate-alignbeam",
        f'{{"messages":[{{"role":"user","content":{SURROGATE}}}],"max_tokens":4}}'.encode(),
        "surrogate",
        "messages[0].content",
    ),
    case(
        "surrogate-draft",
        json.dumps({"mode": "draft", "messages": [{"role": "user", "content": "\ud800"}]}).encode(),
        "lone UTF-16 surrogate",
        "messages[0].content",
    ),
    case(
        "surrogate-stream",
        b'{"stream":true,"messages":[{"role":"user","content":"a \\udfff b"}]}',
        "surrogate",
        "messages[0].content",
    ),
    case("surrogate-in-part", b'{"messages":[{"role":"user","content":[{"type":"text","text":"\\ud83d"}]}]}', None),
    case("surrogate-in-key", raw('"\\udc00":1'), "a key contains a lone", None),
    case("surrogate-in-stop", raw(f'"stop":["ok",{SURROGATE}]'), "surrogate", "stop[1]"),
    case("surrogate-in-model", raw(f'"model":{SURROGATE}'), "surrogate", "model"),
    case("surrogate-legacy-prompt", f'{{"prompt":{SURROGATE}}}'.encode(), "surrogate", "prompt", path=LEGACY),
    case("surrogate-pair-reversed", raw('"user":"\\udc00\\ud800"'), "surrogate", "user"),
    case("temperature-nan", raw('"temperature":NaN'), "NaN is not a JSON number", "temperature"),
    case("temperature-infinity", raw('"temperature":Infinity'), "Infinity", "temperature"),
    case("temperature-1e308", raw('"temperature":1e308'), "temperature must be <= 2", "temperature"),
    case("temperature-1e999", raw('"temperature":1e999'), "out of range", "temperature"),
    case("alpha-true", chat(alpha=True), "alpha must be a number, got true", "alpha"),
    case("alpha-string", chat(alpha="0.3"), 'alpha must be a number, got the string "0.3"', "alpha"),
    case(
        "image-part",
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}]),
        "messages[0].content[1]: only text content parts are supported (these are text-only models)",
        "messages[0].content[1]",
        code="unsupported_content",
    ),
    # -- OpenAI's documented types and ranges -----------------------------------------------------------------
    case("temperature-negative", chat(temperature=-0.5), ">= 0", "temperature"),
    case("temperature-2.5", chat(temperature=2.5), "<= 2", "temperature"),
    case("temperature-string", chat(temperature="0.7"), "must be a number", "temperature"),
    case("top-p-zero", chat(top_p=0), "> 0", "top_p"),
    case("top-p-1.5", chat(top_p=1.5), "<= 1", "top_p"),
    case("top-p-minus-infinity", raw('"top_p":-Infinity'), "-Infinity", "top_p"),
    case("max-tokens-zero", chat(max_tokens=0), "max_tokens must be >= 1", "max_tokens"),
    case("max-tokens-negative", chat(max_tokens=-5), "max_tokens must be >= 1", "max_tokens"),
    case("max-tokens-float", chat(max_tokens=8.5), "max_tokens must be an integer", "max_tokens"),
    case("max-tokens-integral-float", raw('"max_tokens":8.0'), "must be an integer", "max_tokens"),
    case("max-tokens-string", chat(max_tokens="8"), "must be an integer", "max_tokens"),
    case("max-tokens-over-limit", chat(max_tokens=LIMIT + 1), f"over this server's limit of {LIMIT}", "max_tokens"),
    case("max-completion-tokens-over", chat(max_completion_tokens=99), "max_completion_tokens is over", ANY),
    case("seed-float", chat(seed=1.5), "seed must be an integer", "seed"),
    case("seed-bool", chat(seed=True), "seed must be an integer", "seed"),
    case("seed-string", chat(seed="1"), "seed must be an integer", "seed"),
    case("k-zero", chat(k=0), "k must be an integer >= 1", "k"),
    case("k-1e9", raw('"k":1e9'), "k must be an integer", "k"),
    case("k-negative", chat(k=-1), "k must be", "k"),
    case("k-float", chat(k=2.5), "must be an integer", "k"),
    case("n-2", chat(n=2), "only n=1", "n", code="unsupported_parameter"),
    case("n-zero", chat(n=0), "only n=1", "n"),
    case("stop-100-strings", raw(f'"stop":{HUNDRED_STOPS}'), "at most 4 items", "stop"),
    case("stop-number", chat(stop=5), "stop must be a string or an array of strings", "stop"),
    case("stop-number-in-list", chat(stop=["a", 1]), "stop[1] must be a string", "stop[1]"),
    case("stop-empty-string", chat(stop=[""]), "non-empty", ANY),
    case("stop-object", chat(stop={"a": 1}), "must be a string or an array", "stop"),
    case("stream-string", chat(stream="yes"), "stream must be true or false", "stream"),
    case("stream-one", chat(stream=1), "true or false", "stream"),
    case("stream-null", chat(stream=None), "true or false", "stream"),
    case("stream-options-string", chat(stream=True, stream_options="garbage"), "must be an object", "stream_options"),
    case("stream-options-array", chat(stream_options=[1, 2]), "must be an object", "stream_options"),
    case("stream-options-nested", chat(stream_options={"include_usage": {"a": [{"b": [1]}]}}), "true or false"),
    case("stream-options-unknown", chat(stream_options={"x": 1}), "unknown field 'x' in stream_options"),
    case("tools", chat(tools=[{"type": "function", "function": {"name": "f"}}]), "tools: tool and function", "tools"),
    case("tool-choice", chat(tool_choice="auto"), "not supported", "tool_choice", code="unsupported_parameter"),
    case("functions", chat(functions=[{"name": "f"}]), "not supported", "functions"),
    case("function-call", chat(function_call="auto"), "not supported", "function_call"),
    case("response-format", chat(response_format={"type": "json_object"}), "structured output", "response_format"),
    case("logit-bias", chat(logit_bias={"1": 5}), "not supported", "logit_bias"),
    case("logprobs-true", chat(logprobs=True), "logprobs: not supported", "logprobs"),
    case("presence-penalty", chat(presence_penalty=1.5), "presence_penalty: not supported", "presence_penalty"),
    case("misspelt-knob", chat(aplha=0.5), "unknown field 'aplha'", "aplha", code="unknown_parameter"),
    case("empty-key", chat(**{"": 1}), "unknown field ''", None),
    case("giant-unknown-key", chat(**{"x" * 100_000: 1}), "unknown field 'xxx", ANY),
    # -- knob values the config refuses ------------------------------------------------------------------------
    case("alpha-1.5", chat(alpha=1.5), "alpha must be between 0 and 1", "alpha"),
    case("n-mix-over-max-tokens", chat(max_tokens=4, n_mix=6), "n_mix (6) cannot exceed", "n_mix"),
    case("bridge-unknown", chat(bridge="nope"), "bridge must be one of", "bridge"),
    case("bridge-number", chat(bridge=1), "bridge must be a string", "bridge"),
    case("judge-after-negative", chat(judge_after=-1), "judge_after", "judge_after"),
    case("gate-threshold-2", chat(gate_threshold=2), "gate_threshold", "gate_threshold"),
    case("top-b-zero", chat(top_b=0), "top_b must be", "top_b"),
    case("mode-anchor", chat(mode="anchor"), "mode must be 'alignbeam' or 'draft'", "mode"),
    case("return-trace-string", chat(return_trace="true"), "true or false", "return_trace"),
    # -- messages ----------------------------------------------------------------------------------------------
    case("messages-empty", chat(messages=[]), "conversation is empty", "messages"),
    case("messages-missing", b'{"model":"alignbeam"}', "missing required field 'messages'", "messages"),
    case("messages-string", chat(messages="hi"), "messages must be an array", "messages"),
    case("messages-object", chat(messages={"role": "user"}), "messages must be an array", "messages"),
    case("message-null", chat(messages=[None]), "messages[0] must be an object", "messages[0]"),
    case("message-string", chat(messages=["hi"]), "messages[0] must be an object", "messages[0]"),
    case("role-tool", chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].role must be", ANY),
    case(
        "role-unknown", chat(messages=[MSG, {"role": "banana", "content": "x"}]), "got the string", "messages[1].role"
    ),
    case("role-missing", chat(messages=[{"content": "x"}]), "missing required field 'messages[0].role'"),
    case("content-null", chat(messages=[{"role": "assistant", "content": None}]), "got null", "messages[0].content"),
    case("content-missing", chat(messages=[{"role": "user"}]), "missing required field 'messages[0].content'"),
    case("content-number", chat(messages=[{"role": "user", "content": 5}]), "a string or an array of text content"),
    case("part-without-type", chat(messages=[{"role": "user", "content": [{"text": "a"}]}]), 'a "type"'),
    case("part-text-number", chat(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]), "a string"),
    case("part-string", chat(messages=[{"role": "user", "content": ["a"]}]), "content part", "messages[0].content[0]"),
    case("part-audio", chat(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]), "only text content"),
    case("part-file", chat(messages=[{"role": "user", "content": [{"type": "file", "file": {}}]}]), "only text"),
    case("part-extra-field", chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]}])),
    case("message-tool-calls", chat(messages=[{**MSG, "tool_calls": []}]), "unknown field 'tool_calls' in messages[0]"),
    case("message-name-number", chat(messages=[{**MSG, "name": 5}]), "messages[0].name must be a string"),
    case("giant-string-over-context", chat(messages=[{"role": "user", "content": "w " * 1_500_000}]), "too long"),
    # -- the body ----------------------------------------------------------------------------------------------
    case("body-empty", b"", "empty", None),
    case("body-whitespace", b" \n\t ", "empty", None),
    case("body-array", b"[1, 2]", "must be a JSON object, got an array", None),
    case("body-string", b'"hi"', "must be a JSON object", None),
    case("body-number", b"42", "must be a JSON object", None),
    case("body-null", b"null", "must be a JSON object, got null", None),
    case("body-true", b"true", "must be a JSON object", None),
    case("json-garbage", b"{nope", "not valid JSON", None),
    case("json-trailing-comma", HEAD.encode() + b",}", "not valid JSON"),
    case("json-single-quotes", b"{'messages': []}", "not valid JSON"),
    case("json-truncated", b'{"messages": [{"role": "user", "content": "h', "not valid JSON"),
    case("json-extra-data", raw("") + b" {}", "not valid JSON"),
    case("json-raw-control-char", b'{"messages":[{"role":"user","content":"a\x00b"}]}', "not valid JSON"),
    case("utf8-invalid-byte", b'{"messages":[{"role":"user","content":"\xff"}]}', "not valid UTF-8"),
    case("utf8-overlong", b'{"messages":[{"role":"user","content":"\xc0\xaf"}]}', "not valid UTF-8"),
    case("utf8-encoded-surrogate", b'{"messages":[{"role":"user","content":"\xed\xa0\x80"}]}', "not valid UTF-8"),
    case("utf8-truncated", b'{"messages":[{"role":"user","content":"\xe2\x82"}]}', "not valid UTF-8"),
    case("latin1", b'{"messages":[{"role":"user","content":"caf\xe9"}]}', "not valid UTF-8"),
    case("utf16", chat().decode().encode("utf-16"), None),
    case("bom", b"\xef\xbb\xbf" + chat(), "byte-order mark", None),
    case("duplicate-key", raw('"max_tokens":5,"max_tokens":6'), "duplicate key 'max_tokens'"),
    case("duplicate-key-nested", b'{"messages":[{"role":"user","role":"system","content":"x"}]}', "messages[0]"),
    case("body-over-limit", chat(messages=[{"role": "user", "content": "w" * (5 * 1024 * 1024)}]), "over", status=413),
    # -- the legacy endpoint -----------------------------------------------------------------------------------
    case("prompt-missing", b"{}", "missing required field 'prompt'", "prompt", path=LEGACY),
    case("prompt-two", b'{"prompt":["a","b"]}', "one prompt per request", "prompt", path=LEGACY),
    case("prompt-token-ids", b'{"prompt":[1,2,3]}', "prompt[0] must be a string", "prompt[0]", path=LEGACY),
    case("prompt-null", b'{"prompt":null}', "prompt must be a string", "prompt", path=LEGACY),
    case("prompt-empty", b'{"prompt":"  "}', "prompt is empty", path=LEGACY),
    case("prompt-messages", b'{"prompt":"a","messages":[]}', "unknown field 'messages'", path=LEGACY),
    # -- methods, paths, auth ----------------------------------------------------------------------------------
    case("get-on-post-route", b"", None, status=405, method="GET"),
    case("unknown-path", chat(), None, status=404, path="/v1/chat/completion"),
    case("no-api-key", chat(), "invalid or missing API key", status=401, headers={"Content-Type": "application/json"}),
    # -- media types and conversation shape (#38) --------------------------------------------------------------
    case(
        "text-plain",
        chat(),
        "unsupported Content-Type 'text/plain'",
        status=415,
        headers={**H, "Content-Type": "text/plain"},
    ),
    case(
        "form-urlencoded",
        chat(),
        "-H 'Content-Type: application/json'",
        status=415,
        headers={**H, "Content-Type": "application/x-www-form-urlencoded"},
    ),
    case("only-system", chat(messages=[{"role": "system", "content": "Be brief."}]), "no user message", "messages"),
    case("only-assistant", chat(messages=[{"role": "assistant", "content": "Hi."}]), "no user message", "messages"),
]


def _base(annotation: Any) -> Any:
    """The type under Optional[...] and Annotated[...] (first member of a union)."""
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        annotation = typing.get_args(annotation)[0]
    return annotation


FIELDS = {name: _base(f.annotation) for name, f in S.ChatCompletionRequest.model_fields.items()}
NUMERIC = sorted(name for name, t in FIELDS.items() if t in (int, float))
WRONG_TYPES = [
    case(f"wrong-type-{name}-{label}", chat(**{name: value}), None, Under(name))
    for name, t in FIELDS.items()
    for label, value in (
        [("object", {"wrong": [1]})]
        + ([("string", "true")] if t is bool else [("string", "1"), ("bool", True)] if t in (int, float) else [])
        + ([("number", 5)] if t not in (bool, int, float) else [])
    )
]
NON_FINITE = [
    case(f"{label}-{name}", raw(f'"{name}":{literal}'), "numbers must be finite", name)
    for name in NUMERIC
    for label, literal in (("nan", "NaN"), ("inf", "Infinity"), ("minus-inf", "-Infinity"), ("1e999", "-1e999"))
]
ALL = CORPUS + WRONG_TYPES + NON_FINITE


def send(srv: BackgroundServer, body: bytes, path: str, method: str = "POST", headers: dict | None = None) -> Any:
    try:
        return httpx.request(method, srv.url + path, content=body, headers=headers or H, timeout=60)
    except httpx.TransportError as e:  # a dropped connection is a failure in its own right
        pytest.fail(f"the server dropped the connection: {e!r}")


@pytest.mark.parametrize(("body", "needle", "param", "status", "path", "kw"), ALL)
def test_bad_input_is_a_4xx_in_openai_shape(
    server: BackgroundServer,
    errors: Errors,
    body: bytes,
    needle: str | None,
    param: Any,
    status: int,
    path: str,
    kw: dict,
) -> None:
    errors.records.clear()
    r = send(server, body, path, kw.get("method", "POST"), kw.get("headers"))
    assert r.status_code == status, r.text[:500]
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"] and len(err["message"]) < 1000, err
    assert err["type"] == ("invalid_request_error" if status in (400, 405, 413, 415) else err["type"])
    if needle is not None:
        assert needle in err["message"], err
    if isinstance(param, Under):
        assert err["param"] == param or err["param"].startswith((param + ".", param + "[")), err
    elif param is not ANY:
        assert err["param"] == param, err
    if "code" in kw:
        assert err["code"] == kw["code"], err
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    assert not errors.records, [rec.getMessage() for rec in errors.records]


ACCEPTED = [
    pytest.param(chat(seed=-1, max_tokens=2), id="seed-minus-1"),
    pytest.param(chat(seed=-1, max_tokens=2, mode="draft"), id="seed-minus-1-draft"),
    pytest.param(chat(seed=2**70), id="seed-2**70"),
    pytest.param(chat(seed=-(2**100)), id="seed-minus-2**100"),
    pytest.param(raw(f'"seed":{"7" * 4000}'), id="seed-4000-digits"),
    pytest.param(chat(temperature=0), id="temperature-0"),
    pytest.param(chat(temperature=2), id="temperature-2-int"),
    pytest.param(chat(temperature=1, top_p=1, alpha=1, judge_threshold=3), id="ints-for-floats"),
    pytest.param(chat(stop=[], max_tokens=None, model="x", user="u", n=1, presence_penalty=0), id="neutral-values"),
    pytest.param(chat(stop=["a", "b", "c", "d"]), id="four-stops"),
    pytest.param(chat(messages=[{"role": "user", "content": "\x00 \u0000"}]), id="escaped-nul"),
    pytest.param(chat(messages=[{"role": "user", "content": "[{" * 20_000}]), id="brackets-in-strings"),
    pytest.param(b'{"messages":[{"role":"user","content":"\\ud83d\\ude00"}]}', id="paired-surrogates"),
    pytest.param(chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}]}]), id="text-part"),
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_valid_edge_cases_are_served(server: BackgroundServer, errors: Errors, body: bytes) -> None:
    errors.records.clear()
    r = send(server, body, CHAT)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["choices"][0]["message"]["content"]
    assert not errors.records, [rec.getMessage() for rec in errors.records]


def test_corpus_size_and_no_5xx_in_metrics(server: BackgroundServer) -> None:
    assert len(ALL) >= 150
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'status="5' not in metrics
    r = send(server, chat(max_tokens=4), CHAT)  # and it still serves
    assert r.status_code == 200
