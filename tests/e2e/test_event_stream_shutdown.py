"""A ``fleetwave serve`` process with a live event stream open still stops at once on SIGTERM
(uvicorn would otherwise wait for the never-ending response)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import RunningServer, fleetwave_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with fleetwave_server(tmp_path) as running:
        yield running


def test_sigterm_ends_open_event_streams_and_the_server_exits_promptly(
    server: RunningServer,
) -> None:
    base, data_dir, process = server.base, server.data_dir, server.process
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
    assert "Application shutdown complete" in server.output()
