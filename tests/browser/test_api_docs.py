"""The API reference pages render in Chromium with every other host out of reach, as on an
air-gapped network: Swagger UI lists the operations, ReDoc draws the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.browser.conftest import CHROMIUM_ARGS, Server

# ReDoc lays out the whole document in the page's script before it draws the title: on a slow
# two-core machine under CI's load that has taken longer than Playwright's 5 s default.
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Offline:
    """A page whose requests to any host but the server are aborted, and remembered."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.origin = urlsplit(base).netloc
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._only_the_server)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(RENDER_TIMEOUT_MS)

    def _only_the_server(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == self.origin or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def offline(browser: Browser, server: Server) -> Iterator[Offline]:
    opened = Offline(browser, server.base)
    yield opened
    opened.context.close()


def test_swagger_ui_lists_the_operations_with_no_other_host_reachable(
    server: Server, offline: Offline
) -> None:
    offline.page.goto(f"{server.base}/docs")

    expect(offline.page.locator(".swagger-ui .info .title")).to_contain_text(
        "fleetwave", timeout=RENDER_TIMEOUT_MS
    )
    operations = offline.page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 30
    expect(offline.page.locator(".opblock-summary-path", has_text="/api/v1/rollouts").first)
    expect(offline.page.get_by_role("button", name="Authorize")).to_be_visible()
    assert offline.blocked == []


def test_redoc_draws_the_document_with_no_other_host_reachable(
    server: Server, offline: Offline
) -> None:
    offline.page.goto(f"{server.base}/redoc")

    expect(offline.page.locator("h1", has_text="fleetwave")).to_be_visible(
        timeout=RENDER_TIMEOUT_MS
    )
    expect(offline.page.get_by_text("Report the current state").first).to_be_attached()
    assert offline.blocked == []
