"""Fixtures for tests that drive Debian's Chromium through Playwright against a real server.

`live_server`: the app on a database of its own, served by werkzeug in a thread (real HTTP).
`browser`: one headless Chromium per test module. `screens`: saves named screenshots under
test-artifacts/<backend>/<test name>/ (CI keeps them; the folder is not committed). A folder per
backend, because `make test` runs the SQLite and PostgreSQL passes at the same time.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, ROOT, backend

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / backend()
PHONE = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def live_server(fresh_app):
    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fresh_app.config["SERVER_URL"] = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fresh_app
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Browser:
    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


class Screens:
    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0

    def shot(self, page: Page, name: str, at=None) -> Path:
        """Save a screenshot; ``at`` (a locator) is scrolled into view first."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        if at is not None:
            at.scroll_into_view_if_needed()
        if page.context_is_phone:
            # A full-page shot of an emulated phone leaves Chromium's metrics stretched and
            # later clicks land beside their target; a phone is shot screen by screen instead.
            page.screenshot(path=str(path))
        else:
            page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screens(request) -> Screens:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Screens(folder)


def open_as(
    browser: Browser,
    base_url: str,
    username: str,
    *,
    device: dict = DESKTOP,
    locale: str = "zh-CN",
    position: dict | None = None,
) -> Page:
    """A new browser context signed in as ``username`` through the sign-in page."""
    options = {**device, "locale": locale, "base_url": base_url}
    if position:
        options.update(geolocation=position, permissions=["geolocation"])
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    page.context_is_phone = bool(device.get("is_mobile"))
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, f"{username} could not sign in"
    return page
