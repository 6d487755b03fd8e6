"""Request bodies: bounded on every route, refused before they are read when the sender has no
credentials, and JSON that cannot be read answered 4xx with the same words everywhere."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.web import MAX_BODY_BYTES
from tests.integration.factories import as_device, register_device, report_body
from tests.integration.webhooks import SECRET, deliver, deliveries

CHUNK = 64 * 1024
HUNDRED_MB = 100 * 1024 * 1024
NO_ADMIN = {"Authorization": ""}
DEEP = b"[" * 100_000 + b"]" * 100_000


class Sender:
    """A streamed body of ``total`` bytes that counts how much of it the server asked for."""

    def __init__(self, total: int = HUNDRED_MB, fill: bytes = b" ") -> None:
        self.total, self.fill, self.sent = total, fill, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            chunk = self.fill * min(CHUNK, self.total - self.sent)
            self.sent += len(chunk)
            yield chunk


async def count_devices(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/v1/devices")
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/devices"),
        ("PUT", "/api/v1/image-policies/1"),
        ("PATCH", "/api/v1/device/state"),
        ("POST", "/api/v1/webhooks/harbor"),
        ("DELETE", "/api/v1/devices/pi-1"),
        ("GET", "/healthz"),
        ("POST", "/ui/login"),
    ],
)
async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = Sender(MAX_BODY_BYTES + 1)
    response = await client.request(
        method,
        path,
        content=body,
        headers={"Content-Length": str(body.total), "X-Device-API-Key": "k" * 40},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == f"body is larger than {MAX_BODY_BYTES} bytes"
    assert body.sent == 0


async def test_a_chunked_admin_body_is_refused_at_the_limit_and_no_further_is_read(
    client: httpx.AsyncClient,
) -> None:
    body = Sender()
    response = await client.post("/api/v1/devices", content=body)
    assert response.status_code == 413, response.text
    assert f"larger than {MAX_BODY_BYTES} bytes" in response.json()["error"]
    assert body.sent <= MAX_BODY_BYTES + CHUNK
    assert await count_devices(client) == 0


async def test_a_chunked_device_report_is_refused_at_the_limit(client: httpx.AsyncClient) -> None:
    device = await register_device(client)
    body = Sender()
    response = await client.patch("/api/v1/device/state", content=body, headers=as_device(device))
    assert response.status_code == 413, response.text
    assert body.sent <= MAX_BODY_BYTES + CHUNK


async def test_a_chunked_body_within_the_limit_reaches_the_route(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"device_name": '
        yield b'"pi-chunked"}'

    response = await client.post(
        "/api/v1/devices", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["device_name"] == "pi-chunked"


async def test_a_gzip_report_is_limited_by_its_unpacked_size(client: httpx.AsyncClient) -> None:
    device = await register_device(client)
    bomb = gzip.compress(b" " * (MAX_BODY_BYTES + 1))
    assert len(bomb) < MAX_BODY_BYTES // 100
    response = await client.patch(
        "/api/v1/device/state",
        content=bomb,
        headers=as_device(device) | {"Content-Encoding": "gzip"},
    )
    assert response.status_code == 413, response.text


# --- credentials before the body -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        NO_ADMIN,
        {"Authorization": "Bearer not-the-admin-token"},
        NO_ADMIN | {"Cookie": "fleetwave_session=a.1.b"},
    ],
    ids=["no token", "wrong token", "forged session"],
)
async def test_an_admin_body_without_valid_credentials_is_refused_unread(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = Sender()
    response = await client.post("/api/v1/devices", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body.sent == 0
    assert await count_devices(client) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/device/state",
        "/api/v1/device/register",
        "/api/v1/device/pi-1/key-exchange",
        "/api/v1/device/pi-1/health",
    ],
)
async def test_a_device_body_without_a_key_is_refused_unread(
    client: httpx.AsyncClient, path: str
) -> None:
    body = Sender()
    response = await client.request(
        "PATCH" if path.endswith("/state") else "POST", path, content=body, headers=NO_ADMIN
    )
    assert response.status_code == 401, response.text
    assert "missing key" in response.json()["error"]
    assert body.sent == 0


async def test_every_admin_and_device_operation_refuses_an_unauthenticated_body_unread(
    client: httpx.AsyncClient,
) -> None:
    """A new route is covered without being listed anywhere: only webhooks read first."""
    paths: dict[str, Any] = (await client.get("/openapi.json")).json()["paths"]
    checked = 0
    for template, operations in paths.items():
        if template.startswith("/api/v1/webhooks/{"):
            continue  # verified from the body by the provider's signature or secret
        if not template.startswith("/api/v1/"):
            continue  # health, readiness and metrics: public, bounded by size alone
        path = template.replace("{", "").replace("}", "")  # e.g. /api/v1/devices/uuid
        for method in operations:
            body = Sender()
            response = await client.request(method, path, content=body, headers=NO_ADMIN)
            assert response.status_code == 401, (method, path, response.text)
            assert body.sent == 0, (method, path)
            checked += 1
    assert checked >= 30


async def test_a_webhook_body_is_read_to_verify_it_and_still_bounded(
    client: httpx.AsyncClient,
) -> None:
    body = Sender()
    response = await client.post("/api/v1/webhooks/harbor", content=body, headers=NO_ADMIN)
    assert response.status_code == 413, response.text
    assert body.sent <= MAX_BODY_BYTES + CHUNK


async def test_a_dashboard_form_without_a_session_is_sent_to_log_in_unread(
    client: httpx.AsyncClient,
) -> None:
    body = Sender(MAX_BODY_BYTES // 2)
    response = await client.post(
        "/ui/policies",
        content=body,
        headers=NO_ADMIN | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303, response.text
    assert body.sent == 0


# --- JSON that cannot be read ----------------------------------------------------------------


async def test_deep_json_is_400_on_the_device_report(client: httpx.AsyncClient) -> None:
    device = await register_device(client)
    response = await client.patch("/api/v1/device/state", content=DEEP, headers=as_device(device))
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == [
        {"field": "body", "message": "is nested too deeply to be read as JSON"}
    ]


@pytest.mark.parametrize("provider", ["harbor", "dockerhub", "ghcr"])
async def test_deep_json_is_400_on_the_webhooks_and_nothing_is_recorded(
    client: httpx.AsyncClient, provider: str
) -> None:
    response = await deliver(client, provider, DEEP)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]
    generic = await client.post(
        "/api/v1/webhooks/docker-registry", content=DEEP, params={"secret": SECRET}
    )
    assert generic.status_code == 400, generic.text
    assert await deliveries(client) == []


async def test_deep_json_is_400_on_an_admin_body_worded_as_everywhere(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/devices", content=DEEP, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "invalid request: body: is nested too deeply to be read as JSON",
        "detail": [{"field": "body", "message": "is nested too deeply to be read as JSON"}],
    }
    assert await count_devices(client) == 0


async def test_a_json_syntax_error_names_the_body_and_its_line_and_column(
    client: httpx.AsyncClient,
) -> None:
    admin = await client.post(
        "/api/v1/devices",
        content=b'{\n  "device_name": pi}',
        headers={"Content-Type": "application/json"},
    )
    assert admin.status_code == 422, admin.text
    assert admin.json()["detail"] == [
        {
            "field": "body",
            "message": "is not valid JSON (Expecting value: line 2 column 18 (char 19))",
        }
    ]
    device = await register_device(client)
    report = await client.patch(
        "/api/v1/device/state", content=b'{\n  "device_name": pi}', headers=as_device(device)
    )
    assert report.status_code == 422, report.text
    assert report.json()["detail"] == admin.json()["detail"]


async def test_a_report_that_is_not_json_changes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client)
    headers = as_device(device)
    accepted = await client.patch(
        "/api/v1/device/state", json=report_body(device["uuid"]), headers=headers
    )
    assert accepted.status_code == 200, accepted.text
    before = (await client.get(f"/api/v1/devices/{device['uuid']}/current-state")).json()
    for bad in (DEEP, b"[NaN]", b"\xff\xfe"):
        response = await client.patch("/api/v1/device/state", content=bad, headers=headers)
        assert response.status_code in (400, 422), (bad[:8], response.text)
    after = (await client.get(f"/api/v1/devices/{device['uuid']}/current-state")).json()
    assert after == before
