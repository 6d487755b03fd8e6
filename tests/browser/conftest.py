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
