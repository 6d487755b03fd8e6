"""A real uvicorn in front of the app, for what only a real connection shows: an unexpected
error leaves the keep-alive connection usable, and a large body nobody may send is refused
without the server reading it."""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from tests.conftest import ADMIN_TOKEN

HTTP_IMPLEMENTATIONS = ["h11", "httptools"]


@dataclass
class Server:
    base: str
    body_bytes_read: int = 0  # of request bodies, by the application (uvicorn drains the rest)


@pytest.fixture(params=HTTP_IMPLEMENTATIONS)
async def server(container: Container, request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    """The app under uvicorn on a loopback port (listening before the server starts: no wait)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    found = Server(f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = create_app(container)

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            found.body_bytes_read += len(message.get("body", b""))
            return message

        await app(scope, counted, send)

    config = uvicorn.Config(counting, http=request.param, lifespan="off", log_config=None)
    running = uvicorn.Server(config)
    serving = asyncio.create_task(running.serve(sockets=[sock]))
    yield found
    running.should_exit = True
    await serving
    sock.close()


def local_port(response: httpx.Response) -> int | None:
    """The client's port of the response's connection, None once that connection is closed."""
    try:
        port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    except OSError:
        return None
    return port


async def test_an_unexpected_error_is_a_json_500_and_the_connection_stays_usable(
    server: Server,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(**_: Any) -> Any:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(container.devices, "list", broken)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=server.base, headers=headers) as client:
        failed = await client.get("/api/v1/devices")
        first_port = local_port(failed)
        after = await client.get("/api/v1/devices/pi-unknown")
        assert first_port is not None  # not closed after the 500
        assert local_port(after) == first_port  # the same connection, kept alive
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal error", "detail": None}
    assert after.status_code == 404, after.text
    logged = [r for r in caplog.records if r.exc_info and "injected failure" in str(r.exc_info[1])]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].getMessage() == "unhandled error on GET /api/v1/devices"


async def test_an_unauthenticated_hundred_megabyte_body_is_refused_without_being_read(
    server: Server,
) -> None:
    async def hundred_megabytes() -> AsyncIterator[bytes]:
        chunk = b" " * (1024 * 1024)
        for _ in range(100):
            yield chunk

    tracemalloc.start()
    try:
        async with httpx.AsyncClient(base_url=server.base) as client:
            response = await client.post("/api/v1/devices", content=hundred_megabytes())
            again = await client.get("/healthz")  # the refused body was drained, not kept
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 401, response.text
    assert again.status_code == 200
    assert server.body_bytes_read == 0
    assert peak < 20 * 1024 * 1024  # the body passed through, never held
