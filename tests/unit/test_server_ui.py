"""The playground's routes (`serve --ui`), its auth and its knob list, on the echo pipeline (no models, fast).

The page itself is driven in a real browser by test_server_ui_browser.py (fake pipeline) and
tests/integration/test_server_ui.py (the embedded models).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.ui_fake import EchoAlignBeam

from alignbeam.config import knobs
from alignbeam.method.trace import Candidate, Trace
from alignbeam.server import create_app
from alignbeam.server.policies import Policy
from alignbeam.server.settings import ServerSettings

KEY = "ui-test-key"
UI = Path(__file__).resolve().parents[2] / "src" / "alignbeam" / "server" / "ui"
CHAT = "/v1/chat/completions"
BODY = {"model": "alignbeam", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def client(**kwargs: object) -> TestClient:
    return TestClient(create_app(EchoAlignBeam(), **kwargs))  # type: ignore[arg-type]


def test_the_playground_is_off_unless_asked_for() -> None:
    assert ServerSettings().ui is False
    c = client()
    assert c.get("/ui").status_code == 404 and c.get("/ui/app.js").status_code == 404


def test_without_a_key_the_page_its_files_and_knobs_are_served_with_a_strict_policy() -> None:
    c = client(ui=True)
    page = c.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js"' in page.text and "/ui/style.css" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert c.get("/ui/").status_code == 200
    assert c.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/ui/style.css").headers["content-type"].startswith("text/css")
    for missing in ("/ui/login.html", "/ui/nothing.js", "/ui/../app.py"):
        assert c.get(missing).status_code == 404, missing
    assert c.get("/ui/knobs.json").json()["auth"] is False


def test_knobs_json_is_every_request_knob_with_its_help_and_the_servers_defaults() -> None:
    ab = EchoAlignBeam()
    doc = TestClient(create_app(ab, ui=True, max_tokens_limit=64)).get("/ui/knobs.json").json()  # type: ignore[arg-type]
    by_name = {k["name"]: k for k in doc["knobs"]}
    assert list(by_name) == [kn.name for kn in knobs() if kn.request]
    for kn in knobs():
        if kn.request:
            assert by_name[kn.name]["help"] == kn.help and by_name[kn.name]["group"] == kn.group
    assert by_name["alpha"]["default"] == ab.config.alpha == 0.8  # the server's value (recommended), not the paper's
    assert by_name["alpha"]["control"] == "float" and by_name["k"]["control"] == "int"
    assert by_name["gate"]["control"] == "bool"
    assert by_name["gate_threshold"] == {**by_name["gate_threshold"], "control": "float", "optional": True}
    assert by_name["bridge"]["choices"] == ["drop", "first", "exact"]
    assert by_name["stop"]["control"] == "list" and by_name["stop"]["field"] == "stop"
    assert by_name["max_new_tokens"]["field"] == "max_tokens" and by_name["max_new_tokens"]["default"] == 64
    assert doc["max_tokens_limit"] == 64 and doc["model"] == "alignbeam"
    assert doc["presets"]["paper"]["alpha"] == 0.5 and doc["presets"]["recommended"]["alpha"] == 0.8
    assert "max_tokens" not in doc["presets"]["paper"]  # a preset leaves the response length alone


def test_with_a_key_the_page_its_files_knobs_and_calls_are_refused_without_it() -> None:
    c = client(ui=True, api_key=KEY)
    page = c.get("/ui")
    assert page.status_code == 401 and page.headers["www-authenticate"] == "Bearer"
    assert 'action="/ui/login"' in page.text and "app.js" not in page.text  # the key form, nothing of the app
    csp = page.headers["content-security-policy"]
    assert "style-src 'sha256-" in csp and "unsafe-inline" not in csp and "script-src 'self'" in csp
    for path in ("/ui/app.js", "/ui/style.css", "/ui/knobs.json"):
        r = c.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
    assert c.post(CHAT, json=BODY).status_code == 401
    c.cookies.set("alignbeam_key", "wrong", path="/ui")
    assert c.get("/ui").status_code == 401 and c.get("/ui/app.js").status_code == 401
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert c.get("/ui", headers=bearer).status_code == 200 and c.get("/ui/app.js", headers=bearer).status_code == 200


def test_the_key_form_sets_a_cookie_that_opens_ui_and_never_v1() -> None:
    with client(ui=True, api_key=KEY) as c:
        wrong = c.post("/ui/login", data={"key": "nope"}, follow_redirects=False)
        assert wrong.status_code == 401 and "refused" in wrong.text and "set-cookie" not in wrong.headers
        ok = c.post("/ui/login", data={"key": KEY}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/ui"
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith(f"alignbeam_key={KEY};") and "Path=/ui" in cookie and "SameSite=strict" in cookie
        assert "HttpOnly" not in cookie  # the page's script reads it to send the Bearer header
        assert c.get("/ui").status_code == 200 and c.get("/ui/knobs.json").json()["auth"] is True
        assert c.post(CHAT, json=BODY).status_code == 401  # the cookie is not a credential for /v1
        assert c.post(CHAT, json=BODY, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        big = c.post(
            "/ui/login", content=b"key=" + b"x" * 5000, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert big.status_code == 413


def test_a_tenant_key_opens_the_page_with_its_policys_defaults() -> None:
    tenant = Policy("clinic", key="tenant-key", knobs={"alpha": 0.95})
    c = client(ui=True, api_key=KEY, policies=(tenant,))
    assert c.post("/ui/login", data={"key": "tenant-key"}, follow_redirects=False).status_code == 303
    doc = c.get("/ui/knobs.json").json()
    assert {k["name"]: k["default"] for k in doc["knobs"]}["alpha"] == 0.95


def test_the_page_renders_no_text_as_html_and_loads_nothing_from_elsewhere() -> None:
    js = (UI / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    for name in ("index.html", "login.html", "app.js", "style.css"):
        text = (UI / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), f"{name} names another host"
        assert "@import" not in text and "fonts.g" not in text


def test_the_trace_has_every_field_the_page_reads() -> None:
    js = (UI / "app.js").read_text()
    cand = Candidate(index=0, prefix_pieces=["I"], anchor_shares=[0.5])
    d = Trace([cand], 0, False, False, {"total": 1.0}, {"judge_threshold": 2.5}, False).to_dict()
    for name in ("route", "route_reason", "request_risk", "anchor_opening", "chosen", "refused_by_policy"):
        assert f"trace.{name}" in js and name in d, name
    for name in ("score", "source", "text", "prefix_pieces", "anchor_shares"):
        assert f"c.{name}" in js and name in d["candidates"][0], name


def test_the_page_s_two_requests_stream_with_the_trace_and_the_decision() -> None:
    """The bodies the page sends (requestBodies in app.js), answered as the page reads them."""
    msgs = [{"role": "user", "content": "<b>hi</b>"}]
    with client(ui=True) as c:
        draft = c.post(CHAT, json={"model": "m", "messages": msgs, "stream": True, "mode": "draft", "max_tokens": 8})
        ab = c.post(CHAT, json={"model": "m", "messages": msgs, "stream": True, "return_trace": True, "k": 2})
    assert draft.status_code == ab.status_code == 200

    def closing(text: str) -> dict:
        events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
        return next(e for e in events if e["choices"] and e["choices"][0]["finish_reason"])

    assert "alignbeam_trace" not in closing(draft.text)
    last = closing(ab.text)
    assert last["alignbeam_decision"]["route"] == "classifier"
    assert last["alignbeam_trace"]["candidates"][0]["prefix_pieces"] == ["echo: ", "<b>hi<", "/b>"]


@pytest.mark.parametrize("path", ["app.js", "style.css", "index.html", "login.html"])
def test_the_files_ship_with_the_package(path: str) -> None:
    import importlib.resources

    assert (importlib.resources.files("alignbeam.server") / "ui" / path).is_file()
