"""A real browser for the playground's tests: Debian's chromium, headless, driven by selenium.

No browser is downloaded (the tests run offline): selenium is given the system's chromium and chromedriver, which
scripts/install.sh installs with apt. Where either is missing the tests skip, saying what to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HOSTILE = '<script>window.__pwned=1;alert(1)</script><img src=x onerror="window.__pwned=2;alert(2)">'
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> tuple[str, str]:
    """The paths of chromium and its chromedriver, or a pytest skip that says how to get them."""
    browser = next((p for name in CHROMIUMS if (p := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no chromium and chromedriver here: apt-get install chromium chromium-driver (scripts/install.sh)")
    return browser, driver


@contextlib.contextmanager
def chromium(width: int = 1440, height: int = 1100) -> Iterator[Any]:
    """A headless chromium session (selenium WebDriver) that keeps the browser console, for CSP reports."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -e '.[dev]'")
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never try to download a browser or a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)  # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: Any, check: Callable[[Any], Any], timeout: float, what: str) -> Any:
    """Wait for `check(driver)` to be truthy; on timeout, fail with what was awaited and the page's text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(check)
    except TimeoutException:
        body = driver.find_element("tag name", "body").text[:3000]
        pytest.fail(f"timed out after {timeout} s waiting for {what}; the page shows:\n{body}")


def open_playground(driver: Any, url: str, key: str | None) -> None:
    """Load /ui; with a key, answer the key form if the server asks (as a user does: type, submit)."""
    driver.get(url + "/ui")
    if key is not None and driver.find_elements("id", "login-key"):
        driver.find_element("id", "login-key").send_keys(key)
        driver.find_element("id", "login-submit").click()
    wait_until(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), 30, "the page")


def ask(driver: Any, prompt: str, system: str = "", knobs: dict[str, str] | None = None, timeout: float = 60) -> None:
    """Type a prompt (and a system message, and knob values by name), send it, wait for both columns and the
    trace."""
    for field, value in (("system", system), ("prompt", prompt), *((f"knob-{k}", v) for k, v in (knobs or {}).items())):
        el = driver.find_element("id", field)
        el.clear()
        if value:
            el.send_keys(value)
    driver.find_element("id", "send").click()

    def finished(d: Any) -> bool:
        states = d.execute_script(
            "return [document.getElementById('col-draft').dataset.state,"
            " document.getElementById('col-alignbeam').dataset.state]"
        )
        return all(s in ("done", "error") for s in states)

    wait_until(driver, finished, timeout, "both columns")


def text_of(driver: Any, element_id: str) -> str:
    """An element's textContent (what the page put there, whitespace kept), not selenium's rendered text."""
    return str(driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id))


def no_script_ran(driver: Any) -> list[str]:
    """What shows that hostile text ran as HTML, if anything: an alert, the payload's flag, an image element in
    the answers, a CSP violation in the console. Empty: nothing ran."""
    from selenium.common.exceptions import NoAlertPresentException

    found = []
    try:
        found.append(f"an alert: {driver.switch_to.alert.text}")
    except NoAlertPresentException:
        pass
    if driver.execute_script("return window.__pwned") is not None:
        found.append("window.__pwned was set")
    if driver.execute_script("return document.querySelectorAll('main img, main script').length"):
        found.append("an <img> or <script> element in the page")
    found += [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    return found


def screenshot(driver: Any, path: Path, height: int | None = None) -> Path:
    """The page from its top as PNG: whole (the window grown to the page's height), or `height` pixels of it."""
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    if height is None:
        height = int(driver.execute_script("return document.documentElement.scrollHeight")) + 40
    driver.set_window_size(driver.get_window_size()["width"], max(600, min(height, 4000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    return path
