"""The simulator registers a device again after a transport error or a busy server, and when
the attempt that failed had in fact registered it (409), it takes a new key instead."""

from __future__ import annotations

import json

import httpx
import pytest

from fleetwave.sim import simulator
from fleetwave.sim.simulator import FleetSimulator


class Registry:
    """The admin API's registration, failing as told: each of ``failures`` once, in turn."""

    def __init__(self, *failures: str) -> None:
        self.failures = list(failures)
        self.registered: set[str] = set()
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        failure = self.failures.pop(0) if self.failures else None
        if request.url.path.endswith("/rotate-key"):
            return httpx.Response(200, json={"uuid": "x", "api_key": "fwd_rotated"})
        uuid = json.loads(request.content)["uuid"]
        if failure == "busy":
            return httpx.Response(503, headers={"Retry-After": "1"})
        if uuid in self.registered:
            return httpx.Response(409, json={"detail": "already exists"})
        self.registered.add(uuid)
        if failure == "lost answer":  # registered, but the answer never came back
            raise httpx.ReadError("connection reset")
        return httpx.Response(201, json={"api_key": "fwd_first"})


async def key_after(registry: Registry, *, taken: bool = False) -> str:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(registry), base_url="http://fw"
    ) as http:
        fleet = FleetSimulator(http, "token", count=1, image="app:v1")
        if taken:
            registry.registered.add(f"sim-00000-{fleet.suffix}")
        await fleet.register()
        return fleet.devices[0].agent.client.headers["X-Device-API-Key"]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator, "REGISTER_BACKOFF", 0)


async def test_a_busy_server_is_asked_again() -> None:
    registry = Registry("busy", "busy")
    assert await key_after(registry) == "fwd_first"
    assert registry.calls == ["POST /api/v1/devices"] * 3


async def test_a_registration_whose_answer_was_lost_gets_a_new_key() -> None:
    registry = Registry("lost answer")
    assert await key_after(registry) == "fwd_rotated"
    device = next(iter(registry.registered))
    assert registry.calls == [
        "POST /api/v1/devices",
        "POST /api/v1/devices",
        f"POST /api/v1/devices/{device}/rotate-key",
    ]


async def test_a_uuid_taken_before_the_first_attempt_is_an_error_not_a_new_key() -> None:
    registry = Registry()
    with pytest.raises(httpx.HTTPStatusError, match="409"):
        await key_after(registry, taken=True)
    assert registry.calls == ["POST /api/v1/devices"]


async def test_the_last_attempt_says_why_it_failed() -> None:
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        await key_after(Registry(*["busy"] * simulator.REGISTER_ATTEMPTS))
