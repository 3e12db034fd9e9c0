"""The server under faults, on a fake pipeline (fast): clients that leave or dawdle while sending, non-JSON bodies,
conversations without a user message, the API key file, and the drain on shutdown.

The same faults against the real `alignbeam serve` process are in tests/integration/test_server_faults.py.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_server_app import FakeAlignBeam, H, body, post, wait_until

from alignbeam.engines.chat import validate_messages
from alignbeam.errors import AlignBeamError
from alignbeam.server import BackgroundServer, GenerationQueue, create_app
from alignbeam.server.auth import read_api_key_file
from alignbeam.server.body import is_json


@pytest.fixture
def fake() -> FakeAlignBeam:
    return FakeAlignBeam()


@pytest.fixture
def server(fake: FakeAlignBeam) -> Iterator[BackgroundServer]:
    app = create_app(fake, api_key="k", max_tokens_limit=50, max_queue=4, poll_interval_s=0.05, body_timeout_s=0.5)  # type: ignore[arg-type]
    with BackgroundServer(app) as srv:
        yield srv


def half_sent(srv: BackgroundServer, declared: int = 100_000) -> socket.socket:
    """A POST whose headers promise `declared` bytes of body, of which one is sent."""
    s = socket.create_connection((srv.host, srv.port))
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{"
    )
    s.sendall(head.encode())
    return s


def statuses(srv: BackgroundServer) -> dict[str, int]:
    """alignbeam_requests_total for the chat endpoint, by status."""
    out = {}
    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith('alignbeam_requests_total{endpoint="/v1/chat/completions"'):
            out[line.split('status="')[1].split('"')[0]] = int(line.rsplit(" ", 1)[1])
    return out


def test_a_client_that_leaves_mid_body_is_a_499_without_a_traceback(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            half_sent(server).close()
        wait_until(lambda: statuses(server).get("499") == 5)
    assert not [k for k in statuses(server) if k.startswith("5")]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    access = [r.getMessage() for r in caplog.records if r.name == "alignbeam.access" and "/v1/chat" in r.getMessage()]
    assert len(access) == 5 and all('"status":499' in m and "closed the connection" in m for m in access)


def test_a_slow_body_gets_408_at_the_timeout_and_the_connection_is_closed(server: BackgroundServer) -> None:
    s = half_sent(server, declared=100)
    s.settimeout(5)
    t0 = time.monotonic()
    reply = b""
    while chunk := s.recv(4096):  # the server answers, then closes
        reply += chunk
    waited = time.monotonic() - t0
    s.close()
    assert reply.startswith(b"HTTP/1.1 408") and b'"code":"request_timeout"' in reply, reply
    assert 0.4 <= waited < 3
    assert post(server, body()).status_code == 200  # and the server serves on


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=utf-8", 200),
        ("application/vnd.api+json", 200),
        (None, 200),
    ],
)
def test_only_json_bodies_are_read(server: BackgroundServer, content_type: str | None, status: int) -> None:
    headers = {"Authorization": "Bearer k", **({"Content-Type": content_type} if content_type else {})}
    r = httpx.post(
        server.url + "/v1/chat/completions", content=b'{"messages":[{"role":"user","content":"hi"}]}', headers=headers
    )
    assert r.status_code == status, r.text
    if status == 415:
        err = r.json()["error"]
        assert err["code"] == "unsupported_media_type" and "Content-Type: application/json" in err["message"]
        assert set(err) == {"message", "type", "param", "code"}


def test_is_json() -> None:
    assert is_json(None) and is_json("") and is_json("Application/JSON") and is_json("application/problem+json")
    assert not is_json("text/plain") and not is_json("application/jsonx") and not is_json("text/json+x")


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "Be brief."}],
        [{"role": "assistant", "content": "Hello."}],
        [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Hello."}],
    ],
)
def test_a_conversation_without_a_user_message_is_400_everywhere(server: BackgroundServer, messages: Any) -> None:
    r = post(server, {"messages": messages})
    err = r.json()["error"]
    assert r.status_code == 400 and "no user message" in err["message"] and err["param"] == "messages"
    with pytest.raises(AlignBeamError, match="no user message"):  # the library's rule, which the server applies
        validate_messages(messages)


def test_api_key_file(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("s3cret\n")
    assert read_api_key_file(f) == "s3cret"
    f.write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        read_api_key_file(f)
    f.write_text("two words\n")
    with pytest.raises(ValueError, match="more than one word"):
        read_api_key_file(f)
    with pytest.raises(ValueError, match="cannot read"):
        read_api_key_file(tmp_path / "missing")


def test_drain_keeps_the_socket_open_and_exits_once_nothing_runs(fake: FakeAlignBeam) -> None:
    """What SIGTERM does (`stop()` takes the same path): /health 503 and new requests 503 `shutting_down` while the
    running and waiting requests finish, then the server is down at once, well within the grace period."""
    app = create_app(fake, max_tokens_limit=50, max_queue=4, poll_interval_s=0.05, shutdown_grace_s=30)  # type: ignore[arg-type]
    srv = BackgroundServer(app).start()
    q: GenerationQueue = app.state.queue
    fake.gate = threading.Event()
    results: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        results[name] = httpx.post(srv.url + "/v1/chat/completions", json=body(name, max_tokens=4), timeout=20)

    senders = [threading.Thread(target=send, args=(name,)) for name in ("running", "waiting")]
    stopper = threading.Thread(target=srv.stop)
    try:
        senders[0].start()
        wait_until(lambda: q.running == 1)
        senders[1].start()
        wait_until(lambda: q.waiting == 1)
        stopper.start()
        wait_until(lambda: q.closed)
        health = httpx.get(srv.url + "/health")
        assert health.status_code == 503 and health.json()["status"] == "shutting_down"
        late = httpx.post(srv.url + "/v1/chat/completions", json=body("late"), headers=H)
        assert late.status_code == 503 and late.json()["error"]["code"] == "shutting_down"
        assert stopper.is_alive()  # still draining
    finally:
        fake.gate.set()
        t_done = time.monotonic()
        for t in senders:
            t.join(10)
        stopper.join(10)
    assert time.monotonic() - t_done < 2 and not stopper.is_alive()
    assert [results[n].status_code for n in ("running", "waiting")] == [200, 200]
    assert fake.calls == ["running", "waiting"]
    with pytest.raises(httpx.TransportError):
        httpx.get(srv.url + "/health", timeout=2)
