"""The playground in a real browser (headless chromium) on the echo pipeline: hostile text shows as text.

The echo pipeline repeats the prompt into every place the page draws model text (ui_fake.py), so one prompt
holding <script> and <img onerror> checks every render path, deterministically and in seconds. The same page on
the embedded models: tests/integration/test_server_ui.py. Skipped, saying what to install, without chromium.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.ui_browser import HOSTILE, ask, chromium, no_script_ran, open_playground, screenshot, text_of, wait_until
from tests.unit.ui_fake import EchoAlignBeam

from alignbeam.server import BackgroundServer, create_app

KEY = "browser-key"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(EchoAlignBeam(), api_key=KEY, ui=True)) as srv:  # type: ignore[arg-type]
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def test_hostile_prompt_and_output_show_as_text_and_never_run(
    server: BackgroundServer, browser: Any, tmp_path: Path
) -> None:
    open_playground(browser, server.url, KEY)
    ask(browser, HOSTILE, system=HOSTILE)
    wait_until(browser, lambda d: d.execute_script("return document.getElementById('results').dataset.trace"), 10, "")
    assert no_script_ran(browser) == []
    assert text_of(browser, "draft-text") == "draft echo: " + HOSTILE  # streamed, as the characters sent
    assert text_of(browser, "alignbeam-text") == "echo: " + HOSTILE
    assert HOSTILE in text_of(browser, "route-reason") and HOSTILE in text_of(browser, "route")
    assert text_of(browser, "prefix") == "echo: " + HOSTILE  # the winner's prefix pieces, joined
    rows = browser.find_elements("css selector", "#candidates tbody tr")
    assert len(rows) == 3 and "winner" in rows[0].get_attribute("class")
    assert HOSTILE in rows[0].text and "(unsafe)" in rows[1].text
    shares = [float(s.get_attribute("data-share")) for s in browser.find_elements("css selector", "#prefix .tok")]
    assert shares == [0.9, 0.4, 0.05]
    browser.find_element("id", "copy-python").click()
    assert json.dumps(HOSTILE) in text_of(browser, "snippet")  # the request as code holds the prompt as sent
    assert no_script_ran(browser) == []
    screenshot(browser, tmp_path / "hostile.png")


def test_knobs_show_their_help_and_reach_the_request(server: BackgroundServer, browser: Any) -> None:
    open_playground(browser, server.url, KEY)
    help_text = browser.find_element("css selector", "#knob-box-alpha .help").text
    assert help_text.startswith("weight of the anchor in the mix")
    browser.find_element("id", "preset").send_keys("paper")  # a preset fills the controls in
    assert browser.find_element("id", "knob-alpha").get_attribute("value") == "0.5"
    ask(browser, "hello", knobs={"k": "2", "max_new_tokens": "8"})
    browser.find_element("id", "copy-curl").click()
    snippet = text_of(browser, "snippet")
    assert '"k": 2' in snippet and '"alpha": 0.5' in snippet and '"max_tokens": 8' in snippet
    assert '"mode": "draft"' in snippet and '"return_trace": true' in snippet
    assert "Bearer $ALIGNBEAM_API_KEY" in snippet and KEY not in snippet  # the key itself is never in the snippet


def test_forgetting_the_key_brings_the_key_form_back(server: BackgroundServer, browser: Any) -> None:
    open_playground(browser, server.url, KEY)
    browser.find_element("id", "forget-key").click()
    wait_until(browser, lambda d: d.find_elements("id", "login-key"), 10, "the key form")
