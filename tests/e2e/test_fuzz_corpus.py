"""The fuzz corpus (tests/e2e/hostile.py) against a running server on SQLite and on PostgreSQL:
every hostile request to every route is answered with a 4xx (never a 5xx, never a success,
never a dropped connection), and nothing is written: every table keeps its row count."""

from __future__ import annotations

import select
import socket
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import build
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.conftest import ADMIN_TOKEN
from tests.e2e.hostile import CHUNKED_LIMIT, Hostile, Route, requests_for, routes_of
from tests.e2e.served import IMAGE, WEBHOOK_SECRET, Served, served, target_apps
from tests.integration.factories import report_body

__all__ = ["served"]

ANSWER_WITHIN = 15.0  # seconds
REFUSED_WITHIN = 5.0  # seconds; a refusal from the headers alone comes at once


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[Route]:
    """The application's routes, read from the application itself."""
    home = tmp_path_factory.mktemp("routes")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{home / 'unused.db'}",
        data_dir=home,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
    )
    return routes_of(create_app(build(settings, db=Database(settings.resolved_database_url))))


def test_every_route_that_takes_a_json_body_has_a_valid_body_to_mutate(
    routes: list[Route],
) -> None:
    dummy = valid_bodies(uuid="u", key="k", rollout_id="r")
    missing = [
        r.key for r in routes if r.takes_body and r.path.startswith("/api/") and r.key not in dummy
    ]
    assert not missing, f"add a valid body to valid_bodies() for {missing}"


def test_every_hostile_input_to_every_route_gets_a_4xx_and_writes_nothing(
    served: Served, routes: list[Route]
) -> None:
    real = real_path_values(served)
    bodies = valid_bodies(served.device_uuid, served.device_key, served.rollout_id)
    hostile = [h for route in routes for h in requests_for(route, real, bodies.get(route.key))]
    hostile.sort(key=last_the_slow_and_the_ending)
    before = served.row_counts()

    failures: list[str] = []
    with httpx.Client(base_url=served.base, timeout=ANSWER_WITHIN) as client:
        previous = None
        for request in hostile:
            status, note = send(client, served, request)
            if status is None and not raw(request) and previous is not None:
                # a kept-alive connection the server dropped after its answer to the request
                # before (a 500 did that): retried on a new one, the failure is the previous's
                status, note = send(client, served, request)
                if status is not None:
                    failures.append(f"{previous.label()} -> its connection was dropped after it")
            if status is None or not 400 <= status < 500:
                failures.append(f"{request.label()} -> {status} {note}")
            previous = request

    after = served.row_counts()
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    print(f"fuzz corpus: {len(hostile)} hostile requests over {len(routes)} routes")
    assert len(hostile) > 500
    assert not failures and not changed, (
        f"{len(failures)} of {len(hostile)} hostile requests not answered with a 4xx:\n"
        + "\n".join(failures)
        + f"\nrow counts changed (before, after): {changed}"
    )


ENDING = ("/ui/logout", "/api/v1/devices/{uuid}/rotate-key")


def last_the_slow_and_the_ending(request: Hostile) -> tuple[bool, bool]:
    """Bodies sent by the megabyte last, and last of all those that would end the session or
    change the device's key if they were not refused."""
    return (raw(request), request.route.path in ENDING)


def real_path_values(served: Served) -> dict[str, str]:
    return {
        "uuid": served.device_uuid,
        "policy_id": str(served.policy_id),
        "key_id": str(served.provisioning_key_id),
        "rollout_id": served.rollout_id,
        "control": "pause",
        "endpoint": "dockerhub",
        "secret": WEBHOOK_SECRET,
        "name": "app.js",
        "username": served.username,
        "token_id": str(served.token_id),
        "registry_id": str(served.registry_id),
    }


def valid_bodies(uuid: str, key: str, rollout_id: str) -> dict[tuple[str, str], Any]:
    """A valid body for each route that takes JSON; the corpus replaces one part at a time."""
    ring = {
        "fleet_id": "fuzz-fleet",
        "device_tags": {"site": "a"},
        "device_uuids": [uuid],
        "description": "fuzzed",
    }
    policy = {
        "image_pattern": "fuzz/other:*",
        "update_strategy": "staged",
        "staged_batches": 3,
        "batch_percentages": [10, 50, 100],
        "batch_delay_minutes": 5,
        "failure_rate_min_devices": 3,
        "max_failure_rate": 0.2,
        "priority": 1,
        "description": "fuzz",
        "fleet_id": "fuzz-fleet",
        "device_tags": {"site": "a"},
        "expires_at": None,
    }
    control = {"note": "a note"}
    push = {"push_data": {"tag": "v3.0.0"}, "repository": {"repo_name": "fuzz/app"}}
    report = report_body(uuid, IMAGE)
    return {
        ("PATCH", "/api/v1/device/state"): report,
        ("POST", "/api/v1/devices"): {
            "device_name": "fuzz-new",
            "fleet_id": "fuzz-fleet",
            "tags": {"site": "a"},
            "apps": target_apps(IMAGE),
        },
        ("PATCH", "/api/v1/devices/{uuid}"): {
            "device_name": "renamed",
            "device_type": "pi",
            "fleet_id": "fuzz-fleet",
            "tags": {"site": "b"},
        },
        ("PUT", "/api/v1/devices/{uuid}/target-state"): {"apps": target_apps("fuzz/app:v9.0.0")},
        ("POST", "/api/v1/provisioning-keys"): {
            "fleet_id": "fuzz-fleet",
            "description": "a key",
            "max_uses": 5,
            "expires_at": "2030-01-01T00:00:00Z",
        },
        ("POST", "/api/v1/device/register"): {
            "uuid": "fuzz-registered",
            "deviceName": "new",
            "deviceType": "pi",
            "applicationId": 7,
            "osVersion": "Debian 12",
        },
        ("POST", "/api/v1/device/{uuid}/key-exchange"): {"uuid": uuid, "deviceApiKey": key},
        ("POST", "/api/v1/image-policies"): {k: v for k, v in policy.items() if k != "expires_at"},
        ("PUT", "/api/v1/image-policies/{policy_id}"): {
            k: v for k, v in policy.items() if k != "expires_at"
        },
        ("POST", "/api/v1/images/trigger-update"): {
            "image": "fuzz/app:v3.0.0",
            "strategy": "staged",
            "filters": {
                "fleet_id": "fuzz-fleet",
                "device_tags": {"site": "a"},
                "device_uuids": [uuid],
            },
        },
        ("POST", "/api/v1/rollouts/preview"): {
            "image": "fuzz/app:v3.0.0",
            "strategy": "staged",
            "filters": {"fleet_id": "fuzz-fleet", "device_uuids": [uuid]},
            "force": False,
        },
        ("POST", "/api/v1/rings"): {"name": "fuzz-ring"} | ring,
        ("PUT", "/api/v1/rings/{name}"): ring,
        ("POST", "/api/v1/rollouts/{rollout_id}/{control}"): control,
        ("POST", "/api/v1/rollouts/{rollout_id}/devices/{uuid}/rollback"): control,
        ("POST", "/api/v1/rollouts/{rollout_id}/devices/{uuid}/retry"): control,
        ("POST", "/api/v1/device/{uuid}/health"): {
            "rollout_id": rollout_id,
            "results": [{"check": "http", "passed": True, "detail": "ok"}],
        },
        ("POST", "/api/v1/device/{uuid}/logs"): [
            {
                "message": "fuzz line",
                "timestamp": 1_767_225_600_000,
                "level": "info",
                "source": {"type": "container", "name": "app"},
                "serviceName": "app",
                "serviceId": 1,
                "isStdErr": False,
            }
        ],
        ("POST", "/api/v1/users"): {
            "username": "fuzz-other",
            "password": "another fuzz passphrase",
            "role": "viewer",
        },
        ("PATCH", "/api/v1/users/{username}"): {
            "role": "viewer",
            "disabled": False,
            "password": "a changed fuzz passphrase",
        },
        ("POST", "/api/v1/users/{username}/tokens"): {
            "name": "fuzz token",
            "expires_at": "2030-01-01T00:00:00Z",
            "role": "viewer",
        },
        ("POST", "/api/v1/registries"): {
            "name": "fuzz-other-registry",
            "url": "https://registry.fuzz:5000",
            "poll_interval_seconds": 60,
            "username": "reader",
            "password": "a registry password",
            "insecure": False,
        },
        ("PATCH", "/api/v1/registries/{registry_id}"): {
            "url": "https://registry.fuzz:5000",
            "poll_interval_seconds": 30,
            "username": "reader",
            "password": "another registry password",
            "insecure": True,
            "enabled": True,
        },
        ("POST", "/api/v1/webhooks/{endpoint}"): push,
        ("POST", "/api/v1/webhooks/{endpoint}/{secret}"): push,
    }


def send(client: httpx.Client, served: Served, request: Hostile) -> tuple[int | None, str]:
    """The status the server answered with (None: no answer) and a note on it."""
    headers = served.headers_for(request.route.path) | request.headers
    target = request.path + query_string(request.query)
    if raw(request):
        return send_raw(served.base, request, target, headers)
    try:
        with client.stream(
            request.route.method, target, headers=headers, content=request.body
        ) as r:
            if "text/event-stream" in r.headers.get("content-type", ""):
                return r.status_code, "(an event stream)"
            return r.status_code, r.read()[:200].decode(errors="replace")
    except httpx.HTTPError as exc:
        return None, f"no answer: {type(exc).__name__}: {exc}"


def raw(request: Hostile) -> bool:
    return request.chunked or request.declared_length is not None


def query_string(query: dict[str, str]) -> str:
    """The query as sent, a lone surrogate as the bytes UTF-8 would give it."""
    if not query:
        return ""
    parts = [f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in query.items()]
    return "?" + "&".join(parts)


def send_raw(
    base: str, request: Hostile, target: str, headers: dict[str, str]
) -> tuple[int | None, str]:
    """A body the server must refuse before reading it: declared too large, or chunked and
    still coming; over a socket, so that nothing but the server decides when it ends."""
    address = urlsplit(base)
    lines = [f"{request.route.method} {target} HTTP/1.1", f"Host: {address.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()] + ["Content-Type: application/json"]
    if request.chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {request.declared_length}")
    with socket.create_connection((address.hostname, address.port), timeout=REFUSED_WITHIN) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        note = ""
        if request.chunked and not stream_until_answered(sock):
            note = f"(read the whole {CHUNKED_LIMIT >> 20} MiB chunked body without refusing it)"
        try:
            answer = sock.recv(4096).decode(errors="replace")
        except (TimeoutError, ConnectionError) as exc:
            return None, f"no answer: {type(exc).__name__} {note}"
    status = answer.split(" ", 2)[1] if answer.startswith("HTTP/1.1 ") else ""
    if note or not status.isdigit():
        return None, f"{note} {answer[:200]!r}"
    return int(status), answer.partition("\r\n\r\n")[2][:200]


def stream_until_answered(sock: socket.socket) -> bool:
    """Send 64 KiB chunks until the server answers or stops reading; False if it took the
    whole ``CHUNKED_LIMIT``."""
    chunk = b"10000\r\n" + b"[" * 0x10000 + b"\r\n"
    sock.settimeout(2)
    try:
        for _ in range(CHUNKED_LIMIT // 0x10000):
            if select.select([sock], [], [], 0)[0]:
                return True  # an answer (or the end of the connection) is waiting
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
        return False
    except (TimeoutError, ConnectionError):
        return True  # it stopped reading, or hung up: what it said is up to recv
    finally:
        sock.settimeout(REFUSED_WITHIN)
