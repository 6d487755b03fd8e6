"""A real ``fleetwave serve`` process and Debian's Chromium driven by Playwright.

Chromium comes from the system (/usr/bin/chromium), never from ``playwright install``. Without
it the tests skip locally and fail in CI (``FLEETWAVE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from tests.e2e.processes import fleetwave_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_TOKEN = "browser-test-admin-token-0123456789abcdef"
PASSWORD = "browser test passphrase"


@dataclass
class Server:
    base: str
    admin: httpx.Client
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        message = (
            f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        )
        if os.environ.get("FLEETWAVE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = {
        "FLEETWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLEETWAVE_WEBHOOK_SECRET": "browser-test-webhook-secret-0123",
        "FLEETWAVE_MONITOR_INTERVAL": "0.2",
        "FLEETWAVE_LOG_LEVEL": "warning",
    }
    with fleetwave_server(tmp_path, **settings) as running:
        base = running.base
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        yield Server(base, admin, running.process)
        admin.close()
        output = running.stop()
    assert ADMIN_TOKEN not in output


@pytest.fixture
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    expect.set_options(timeout=10_000)
    opened.on("dialog", lambda dialog: accept(dialog))
    yield opened
    context.close()


def accept(dialog: Dialog) -> None:
    """Every action asks for confirmation: the operator says yes."""
    assert dialog.type == "confirm" and dialog.message
    dialog.accept()


def user(server: Server, username: str, role: str) -> str:
    """A user with ``role`` and the tests' password, made through the admin API."""
    made = server.admin.post(
        "/api/v1/users", json={"username": username, "password": PASSWORD, "role": role}
    )
    assert made.status_code == 201, made.text
    return username


def log_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Log in to the dashboard as ``username``, sent there by the rollouts page."""
    page.goto(f"{base}/ui/rollouts")
    expect(page).to_have_url(f"{base}/ui/login?next=/ui/rollouts")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(f"{base}/ui/rollouts")
    expect(page.get_by_role("heading", name="Rollouts")).to_be_visible()


def log_in_with_the_admin_token(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_text("Use the admin token instead").click()
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in with the token").click()
    expect(page).to_have_url(f"{base}/ui/rollouts")
