"""A ``fleetwave serve`` process with a live event stream open still stops at once on SIGTERM
(uvicorn would otherwise wait for the never-ending response)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.test_quickstart import server  # noqa: F401 (the fixture)


def test_sigterm_ends_open_event_streams_and_the_server_exits_promptly(
    server: tuple[str, Path, subprocess.Popen[str]],  # noqa: F811
) -> None:
    base, data_dir, process = server
    token = (data_dir / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=base, timeout=10) as http,
        http.stream("GET", "/api/v1/events/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"
        started = time.monotonic()
        process.terminate()
        assert list(lines)[-2:] in (["", ""], [": connected", ""])
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert process.wait(timeout=10) in (0, -15)
        assert time.monotonic() - started < 5
    output = process.communicate()[0]
    assert "Application shutdown complete" in output
