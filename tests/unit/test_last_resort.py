"""The outermost layer answers what nothing else did, logs each error once, and leaves a
response cut off half-way to the server (closing the connection is the only honest end)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI, Request

from fleetwave.last_resort import LastResort
from fleetwave.web import LOGGED_ERROR, install_error_handlers

SCOPE = {"type": "http", "method": "GET", "path": "/api/v1/devices", "headers": []}


class Broken(RuntimeError):
    pass


async def run(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await LastResort(app)(dict(SCOPE), receive, send)
    return sent


def start(status: int = 200) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": []}


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_error_before_any_response_is_answered_500_in_json_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise Broken("before")

    sent = await run(app)
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"error": "internal error", "detail": None}
    assert errors_logged(caplog) == ["unhandled error on GET /api/v1/devices"]


async def test_an_error_raised_again_after_its_500_was_sent_ends_here_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # as ServerErrorMiddleware does
        failure = Broken("answered")
        logging.getLogger("fleetwave.http").error("unhandled error on GET /api/v1/devices")
        scope[LOGGED_ERROR] = failure
        await send(start(500))
        await send({"type": "http.response.body", "body": b"{}"})
        raise failure

    sent = await run(app)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert errors_logged(caplog) == ["unhandled error on GET /api/v1/devices"]


async def test_an_error_after_a_complete_response_is_logged_and_ends_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.body", "body": b"ok"})
        raise Broken("after the response")

    sent = await run(app)
    assert [m.get("status") for m in sent] == [200, None]
    assert errors_logged(caplog) == ["unhandled error on GET /api/v1/devices"]


async def test_an_error_in_the_middle_of_a_response_is_raised_to_close_the_connection() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(start())
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise Broken("half-way")

    with pytest.raises(Broken):
        await run(app)


async def test_a_client_that_hangs_up_mid_body_is_a_one_line_note_not_an_unhandled_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.patch("/api/v1/device/state")
    async def report(request: Request) -> dict[str, Any]:
        return dict(await request.json())

    chunks = iter([{"type": "http.request", "body": b'{"a": ', "more_body": True}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(chunks, {"type": "http.disconnect"})

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = SCOPE | {"method": "PATCH", "path": "/api/v1/device/state", "query_string": b""}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("test", 80)}
    with caplog.at_level(logging.INFO, logger="fleetwave.http"):
        await LastResort(app)(scope, receive, send)
    assert sent[0]["status"] == 400, sent
    assert errors_logged(caplog) == []
    assert "client closed the connection during PATCH /api/v1/device/state" in caplog.messages
