"""A real ``fleetwave serve`` process and Debian's Chromium driven by Playwright.

Chromium comes from the system (/usr/bin/chromium), never from ``playwright install``. Without
it the tests skip locally and fail in CI (``FLEETWAVE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_quickstart import FLEETWAVE, clean_env, free_port

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
    process: subprocess.Popen[str]


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
    data_dir, port = tmp_path / "var", free_port()
    env = clean_env(
        data_dir,
        FLEETWAVE_PORT=str(port),
        FLEETWAVE_ADMIN_TOKEN=ADMIN_TOKEN,
        FLEETWAVE_WEBHOOK_SECRET="browser-test-webhook-secret-0123",
        FLEETWAVE_MONITOR_INTERVAL="0.2",
        FLEETWAVE_LOG_LEVEL="warning",
    )
    migrated = subprocess.run(
        [*FLEETWAVE, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    process = subprocess.Popen(
        [*FLEETWAVE, "serve", "--no-migrate"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"server did not become ready: {process.communicate()[0]}")
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    yield Server(base, admin, process)
    admin.close()
    process.terminate()
    output = process.communicate(timeout=15)[0]
    assert ADMIN_TOKEN not in output
