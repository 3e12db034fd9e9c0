"""The OpenAI-compatible server on the real embedded models, driven by the official `openai` client.

A real uvicorn server listens on a free 127.0.0.1 port in this process (models loaded once for the module); one
test also starts `alignbeam serve` as a user would. Generations are kept short (max_tokens <= 16) so the file runs
in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from tests.conftest import SERVER_KEY, SERVER_LIMIT, cross_pair_server, free_port, wait_until_up

from alignbeam.server import BackgroundServer

KEY, LIMIT = SERVER_KEY, SERVER_LIMIT
Q = [{"role": "user", "content": "Name a primary color."}]


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with cross_pair_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: BackgroundServer) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=300)


def test_chat_completion_with_trace(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model="alignbeam", messages=Q, max_tokens=12, extra_body={"k": 3, "return_trace": True}
    )
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 12
    trace = (r.model_extra or {})["alignbeam_trace"]
    assert len(trace["candidates"]) == 3 and trace["config"]["k"] == 3 and trace["config"]["max_new_tokens"] == 12
    assert trace["timings_ms"]["total"] > 0 and "judge" in trace["timings_ms"]
    assert trace["candidates"][trace["chosen"]]["text"] == choice.message.content


def test_per_request_knobs_reach_the_method(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model="anything",  # any model name is accepted
        messages=Q,
        max_tokens=8,
        extra_body={"k": 2, "n_mix": 2, "alpha": 0.8, "bridge": "first", "return_trace": True},
    )
    trace = (r.model_extra or {})["alignbeam_trace"]
    assert len(trace["candidates"]) == 2
    assert {k: trace["config"][k] for k in ("k", "n_mix", "alpha", "bridge")} == {
        "k": 2,
        "n_mix": 2,
        "alpha": 0.8,
        "bridge": "first",
    }
    assert all(c["n_mixed"] <= 2 for c in trace["candidates"])
    # without return_trace the response is plain OpenAI
    r = client.chat.completions.create(model="alignbeam", messages=Q, max_tokens=4, extra_body={"mode": "draft"})
    assert "alignbeam_trace" not in (r.model_extra or {})


def test_streamed_chat_completion(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="alignbeam",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        stream=True,
        extra_body={"k": 2, "judge_after": 2, "return_trace": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    finals = [c for c in chunks if c.choices[0].finish_reason is not None]
    assert len(finals) == 1 and finals[0] is chunks[-1]
    trace = (chunks[-1].model_extra or {})["alignbeam_trace"]
    assert text and trace["candidates"][trace["chosen"]]["text"] == text
    assert len(trace["candidates"]) == 2


def test_completions_endpoint_draft_mode(client: OpenAI) -> None:
    r = client.completions.create(model="alignbeam", prompt="Say hi.", max_tokens=8, extra_body={"mode": "draft"})
    assert r.object == "text_completion" and r.choices[0].text and r.usage is not None
    assert r.usage.completion_tokens <= 8


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"extra_body": {"alpha": 5}}, "alpha must be between 0 and 1"),
        ({"extra_body": {"aplha": 0.5}}, "unknown field 'aplha'"),
        ({"messages": []}, "conversation is empty"),
        ({"max_tokens": LIMIT + 1}, f"limit of {LIMIT}"),
        ({"n": 2}, "only n=1"),
        ({"messages": [{"role": "user", "content": "hello " * 5000}]}, "context window"),
        ({"messages": [{"role": "user", "content": "hello " * 5000}], "stream": True}, "context window"),
    ],
)
def test_bad_requests_are_400(client: OpenAI, kwargs: dict, needle: str) -> None:
    args = {"model": "alignbeam", "messages": Q, "max_tokens": 8, **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**args)
    assert e.value.status_code == 400 and needle in str(e.value)


def test_invalid_utf8_body_is_400(server: BackgroundServer) -> None:
    r = httpx.post(
        server.url + "/v1/chat/completions",
        content=b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"]


def test_auth_is_required(server: BackgroundServer) -> None:
    bad = OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="alignbeam", messages=Q, max_tokens=4)
    assert e.value.status_code == 401
    assert httpx.get(server.url + "/v1/models").status_code == 401


def test_models_health_metrics(client: OpenAI, server: BackgroundServer) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["alignbeam"]
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["draft"] == "smollm2-135m" and health["queue"]["max_queue"] == 4
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'alignbeam_requests_total{endpoint="/v1/chat/completions",status="200"}' in text
    assert 'alignbeam_requests_total{endpoint="/v1/chat/completions",status="400"}' in text
    assert 'alignbeam_phase_duration_seconds_count{phase="judge"}' in text
    assert "alignbeam_queue_waiting 0" in text


def test_cli_serve(tmp_path: object) -> None:
    """`alignbeam serve` as a user starts it: options parsed, models loaded, OpenAI endpoints up, JSON access log."""
    port = free_port()
    cmd = [sys.executable, "-m", "alignbeam.cli", "serve", "--port", str(port), "--api-key", KEY, "-K", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc, 120, "alignbeam serve")
        c = OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        card = c.models.list().data[0]
        assert (card.model_extra or {})["alignbeam"]["config"]["k"] == 2  # the CLI default knob is served
        r = c.chat.completions.create(model="alignbeam", messages=Q, max_tokens=4, extra_body={"mode": "draft"})
        assert r.choices[0].message.content
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    log_lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["path"] == "/v1/chat/completions" and e["status"] == 200 for e in log_lines), err


def test_endpoint_judge_against_this_server(server: BackgroundServer) -> None:
    """EndpointJudge on a real OpenAI-compatible server (this one, answering with the draft alone): logprobs are
    refused with a 400, so the judge falls back to reading the digit the model writes."""
    from alignbeam import AlignBeamError, EndpointJudge

    j = EndpointJudge(server.url + "/v1", model="alignbeam", api_key=KEY, extra_body={"mode": "draft"})
    try:
        s = j.score([{"role": "user", "content": "How do I bake bread?"}], ["Mix flour, water, yeast; bake."])
        assert len(s) == 1 and 1.0 <= s[0] <= 5.0
    except AlignBeamError as e:  # SmolLM2 may answer without a digit: the error must say so
        assert "no 1-5 rating" in str(e)
    assert j.use_logprobs is False
    bad = EndpointJudge("http://127.0.0.1:9/v1", model="x", timeout_s=2)
    with pytest.raises(AlignBeamError, match="unreachable"):
        bad.score([{"role": "user", "content": "q"}], ["a"])
