"""Hostile and malformed requests against the real server on the embedded models (a subset of the unit corpus in
tests/unit/test_server_bad_input.py, which runs the same cases on a fake pipeline).

What only the real models can show: a lone surrogate reaching a tokenizer (draft, AlignBeam and stream modes), a
negative seed reaching numpy's generator, an absurd k reaching the KV-cache check. Every answer must be a 4xx in
OpenAI's error shape (or a 200 for the valid edge cases), never a 5xx or a dropped connection, and the server must
stay healthy. Generations are kept tiny (max_tokens <= 8).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import SERVER_KEY, SERVER_LIMIT, cross_pair_server

from alignbeam.server import BackgroundServer

KEY, LIMIT = SERVER_KEY, SERVER_LIMIT
H = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
HEAD = '{"messages":[{"role":"user","content":"Name a primary color."}]'


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with cross_pair_server() as srv:
        yield srv


def raw(extra: str) -> bytes:
    return (HEAD + ("," + extra if extra else "") + "}").encode()


def surrogate(**fields: Any) -> bytes:
    """A body whose user message holds a lone surrogate (json.dumps writes it as the escape "\\ud800")."""
    return json.dumps(
        {"messages": [{"role": "user", "content": "Say hi \ud800 now."}], "max_tokens": 4, **fields}
    ).encode()


def send(srv: BackgroundServer, body: bytes, path: str = "/v1/chat/completions") -> httpx.Response:
    try:
        return httpx.post(srv.url + path, content=body, headers=H, timeout=300)
    except httpx.TransportError as e:
        pytest.fail(f"the server dropped the connection: {e!r}")


BAD = [
    pytest.param(surrogate(mode="draft"), "surrogate", "messages[0].content", id="surrogate-draft"),
    pytest.param(surrogate(), "surrogate", "messages[0].content", id="surrogate-alignbeam"),
    pytest.param(surrogate(stream=True), "surrogate", "messages[0].content", id="surrogate-stream"),
    pytest.param(b'{"prompt":"\\udc00","max_tokens":4}', "surrogate", "prompt", id="surrogate-legacy"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "levels deep", None, id="deep-array-top"),
    pytest.param(b'{"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "levels deep", None, id="deep-in-messages"),
    pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, "levels deep", None, id="deep-object"),
    pytest.param(
        raw(f'"max_tokens":{"9" * 5000}'), "max_tokens is over this server's limit", "max_tokens", id="5000-digits"
    ),
    pytest.param(raw('"temperature":NaN,"max_tokens":4'), "NaN", "temperature", id="temperature-nan"),
    pytest.param(raw('"temperature":1e308,"max_tokens":4'), "<= 2", "temperature", id="temperature-1e308"),
    pytest.param(raw('"alpha":true,"max_tokens":4'), "alpha must be a number", "alpha", id="alpha-true"),
    pytest.param(raw('"alpha":"0.3","max_tokens":4'), "alpha must be a number", "alpha", id="alpha-string"),
    pytest.param(
        b'{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":'
        b'{"url":"http://x/y.png"}}]}],"max_tokens":4}',
        "only text content parts are supported",
        "messages[0].content[1]",
        id="image-part",
    ),
    # refused by the session-slot or the KV-cache check, whichever the loaded models hit first; both name k's value
    pytest.param(raw('"k":1000000000,"max_tokens":4'), "1000000000", None, id="k-1e9-int"),
    pytest.param(raw('"stop":' + json.dumps([f"s{i}" for i in range(100)])), "at most 4", "stop", id="stop-100"),
    pytest.param(raw('"max_tokens":4,"max_tokens":5'), "duplicate key", None, id="duplicate-key"),
    pytest.param(b'{"messages":[{"role":"user","content":"\xff\xfe"}]}', "UTF-8", None, id="invalid-utf8"),
    pytest.param(
        json.dumps({"messages": [{"role": "user", "content": "hello " * 200_000}], "max_tokens": 4}).encode(),
        "context window",
        "messages",
        id="giant-string",
    ),
]


@pytest.mark.parametrize(("body", "needle", "param"), BAD)
def test_bad_input_is_a_4xx_in_openai_shape(server: BackgroundServer, body: bytes, needle: str, param: Any) -> None:
    path = "/v1/completions" if body.startswith(b'{"prompt"') else "/v1/chat/completions"
    r = send(server, body, path)
    assert 400 <= r.status_code < 500, r.text[:500]
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["type"] == "invalid_request_error", err
    assert needle in err["message"], err
    if param is not None:
        assert err["param"] == param, err
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def test_negative_and_huge_seeds_are_served(server: BackgroundServer) -> None:
    """seed -1 used to reach numpy's default_rng (which refuses negatives) and fail with a 500. The continuation
    is sampled (temperature > 0, n_mix < max_tokens), so the generator is really created from the seed."""
    for seed in (-1, 2**70, -(2**100)):
        body = raw(f'"seed":{seed},"temperature":0.9,"max_tokens":6,"n_mix":2,"k":2')
        r = send(server, body)
        assert r.status_code == 200, r.text[:500]
        assert isinstance(r.json()["choices"][0]["message"]["content"], str)
    r = send(server, raw('"seed":-1,"max_tokens":4,"mode":"draft"'))
    assert r.status_code == 200, r.text[:500]


def test_seed_minus_one_streams(server: BackgroundServer) -> None:
    body = raw('"seed":-1,"temperature":0.7,"max_tokens":4,"n_mix":2,"stream":true')
    with httpx.stream("POST", server.url + "/v1/chat/completions", content=body, headers=H, timeout=300) as r:
        assert r.status_code == 200
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]" and not any('"error"' in ln for ln in lines)


def test_escaped_nul_and_paired_surrogates_are_not_5xx(server: BackgroundServer) -> None:
    for content in ('"a\\u0000b"', '"\\ud83d\\ude00 hi"'):
        r = send(
            server, f'{{"messages":[{{"role":"user","content":{content}}}],"max_tokens":4,"mode":"draft"}}'.encode()
        )
        assert r.status_code in (200, 400), r.text[:500]


def test_no_5xx_and_still_healthy(server: BackgroundServer) -> None:
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'status="5' not in metrics
    assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "ok"
