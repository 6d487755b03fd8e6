"""Agents that run no device-side checks (issue 13, part 3), on both databases.

fleetwave's agent declares what it does in its reports; the iotistic agent declares nothing,
never reads the checks under ``"fleetwave"`` and never posts a result. Its http and tcp checks
are probed from the server where ``run_on`` allows, the others are recorded not runnable with
one event, and it is never failed on the health timeout for results nobody would send. The
policy says beforehand how many of its devices cannot run which check. Probes are answered by
an injected runner: no sockets, no waiting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.domain.health import CheckSpec
from fleetwave.health.probes import Prober
from tests.conftest import ADMIN_TOKEN
from tests.integration.engine import (
    FLEETWAVE_AGENT,
    NEW,
    OLD,
    ScriptedDevice,
    device_rows,
    push,
    rollout,
    tick,
)
from tests.integration.factories import register_device, target_apps
from tests.integration.iotistic import IotisticDevice
from tests.integration.pipeline import policy

WEB_ON_DEVICE = {
    "type": "http",
    "name": "web",
    "url": "http://localhost:8080/health",
    "retries": 0,
}
WEB_EITHER = {
    "type": "http",
    "name": "web",
    "url": "http://{device_ip}:8080/health",
    "run_on": "device_or_server",
    "retries": 1,
    "interval_seconds": 10,
}
MQTT_EITHER = {"type": "tcp", "name": "mqtt", "port": 1883, "run_on": "device_or_server"}
CUSTOM = {"type": "custom", "name": "db", "command": ["/opt/checks/db-ready"]}


class FakeProbes:
    """Answers the server's probes by the address probed; keeps what was probed."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing, self.probed = failing, list[str]()

    async def __call__(self, check: CheckSpec, client: httpx.AsyncClient) -> tuple[bool, str]:
        target = check.url or f"{check.host}:{check.port}"
        self.probed.append(target)
        if any(address in target for address in self.failing):
            return False, "ConnectError: connection refused"
        return True, "HTTP 200"


@pytest.fixture
def probes(container: Container, clock: ManualClock) -> FakeProbes:
    fake = FakeProbes()
    assert container.monitor.probes is not None
    container.monitor.probes.prober = Prober(clock, run=fake)
    return fake


async def fleetwave_device(client: httpx.AsyncClient, uuid: str) -> ScriptedDevice:
    device = ScriptedDevice(client, await register_device(client, uuid=uuid, apps=target_apps(OLD)))
    await device.report(OLD)
    return device


async def iotistic_device(
    client: httpx.AsyncClient, uuid: str, ip: str | None = "192.168.1.42"
) -> IotisticDevice:
    device = IotisticDevice(
        client, await register_device(client, uuid=uuid, apps=target_apps(OLD)), ip
    )
    await device.report(OLD, metrics=True)  # its first report carries metrics and local_ip
    return device


async def events_of(client: httpx.AsyncClient, rid: str, kind: str) -> list[dict[str, Any]]:
    page = await client.get(
        "/api/v1/events", params={"rollout_id": rid, "event_type": kind, "limit": 1000}
    )
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


# --- what devices declare -------------------------------------------------------------------


async def test_a_device_shows_what_its_agent_declares_and_none_for_an_iotistic_agent(
    client: httpx.AsyncClient,
) -> None:
    ours = await fleetwave_device(client, "fw-1")
    theirs = await iotistic_device(client, "io-1")
    fw = (await client.get(f"/api/v1/devices/{ours.uuid}")).json()
    assert fw["capabilities"] == ["checks.http", "checks.tcp", "progress"]
    io = (await client.get(f"/api/v1/devices/{theirs.uuid}")).json()
    assert io["capabilities"] == [] and io["ip_address"] == "192.168.1.42"
    listed = (await client.get("/api/v1/devices")).json()["items"]
    assert {d["uuid"]: d["capabilities"] for d in listed} == {
        "fw-1": FLEETWAVE_AGENT,
        "io-1": [],
    }

    # an agent replaced by one that declares nothing is taken at its word
    ours.capabilities = None
    await ours.report(OLD, "running", containerId="replaced")
    assert (await client.get(f"/api/v1/devices/{ours.uuid}")).json()["capabilities"] == []

    bad = await client.patch(
        "/api/v1/device/state",
        json={ours.uuid: {"apps": {}, "capabilities": "checks.http"}},
        headers=ours.headers,
    )
    assert bad.status_code == 422 and "fw-1.capabilities" in bad.json()["error"]


# --- the policy warns -----------------------------------------------------------------------


async def test_the_policy_says_how_many_covered_devices_cannot_run_each_check(
    client: httpx.AsyncClient, container: Container
) -> None:
    for uuid in ("fw-1", "fw-2"):
        await fleetwave_device(client, uuid)
    await iotistic_device(client, "io-1")
    await iotistic_device(client, "io-2")
    await iotistic_device(client, "io-3", ip=None)  # never reported an address
    await register_device(client, uuid="other", apps=target_apps("acme/other:v1"))
    # never reported at all: nothing declared, no address
    await register_device(client, uuid="silent", apps=target_apps(OLD))

    created = await policy(
        client,
        health_check_config=[WEB_ON_DEVICE, MQTT_EITHER, {"type": "container_running"}],
    )
    coverage = created["health_check_coverage"]
    assert coverage["devices"] == 6
    assert coverage["warnings"] == [
        {
            "check": "web",
            "type": "http",
            "devices": 4,
            "total": 6,
            "message": "4 of 6 devices cannot run http checks (web): "
            "their agent does not run http checks",
        },
        {
            "check": "mqtt",
            "type": "tcp",
            "devices": 2,
            "total": 6,
            "message": "2 of 6 devices cannot run tcp checks (mqtt): "
            "their agent does not run tcp checks and they have reported no address to probe",
        },
    ]

    # the policy's filters narrow what it covers
    fields = {k: v for k, v in created.items() if k in ("image_pattern", "health_check_config")}
    replaced = await client.put(
        f"/api/v1/image-policies/{created['id']}",
        json=fields | {"device_uuids": ["fw-1", "io-1"]},
    )
    assert replaced.status_code == 200, replaced.text
    [warning] = replaced.json()["health_check_coverage"]["warnings"]
    assert warning["message"].startswith("1 of 2 devices cannot run http checks (web)")
    shown = (await client.get(f"/api/v1/image-policies/{created['id']}")).json()
    assert shown["health_check_coverage"] == replaced.json()["health_check_coverage"]
    [listed] = (await client.get("/api/v1/image-policies")).json()
    assert listed["health_check_coverage"] is None  # lists do not count

    # the dashboard's policy page says so too
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test") as browser:
        login = await browser.post("/ui/login", data={"token": ADMIN_TOKEN})
        assert login.status_code == 303
        page = await browser.get(f"/ui/policies/{created['id']}")
    assert page.status_code == 200
    assert "Covers 2 devices now" in page.text
    assert "1 of 2 devices cannot run http checks (web)" in page.text


async def test_a_policy_whose_devices_all_run_its_checks_warns_of_nothing(
    client: httpx.AsyncClient,
) -> None:
    await fleetwave_device(client, "fw-1")
    await iotistic_device(client, "io-1")
    created = await policy(client, health_check_config=[WEB_EITHER, MQTT_EITHER])
    assert created["health_check_coverage"] == {"devices": 2, "warnings": []}
    nobody = await policy(client, image_pattern="acme/*", health_check_config=[WEB_ON_DEVICE])
    assert nobody["health_check_coverage"] == {"devices": 0, "warnings": []}


# --- a rollout over both kinds of agent -----------------------------------------------------


async def test_the_server_probes_what_an_iotistic_agent_cannot_run_and_the_agent_runs_its_own(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, probes: FakeProbes
) -> None:
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=1,
        health_check_config=[WEB_EITHER],
    )
    ours = await fleetwave_device(client, "fw-1")
    theirs = await iotistic_device(client, "io-1", ip="192.168.1.42")
    rid = await push(client)

    # the served state offers the check to both; only fleetwave's agent reads it
    served = await client.get(f"/api/v1/device/{theirs.uuid}/state", headers=theirs.headers)
    assert served.json()[theirs.uuid]["fleetwave"]["health_checks"][0]["name"] == "web"

    assert await ours.apply_target() == NEW
    assert await theirs.apply_target() == NEW  # running, never pulling or updating
    rows = await device_rows(client, rid)
    assert rows["io-1"]["status"] == rows["fw-1"]["status"] == "health_checking"

    await tick(container)
    assert probes.probed == ["http://192.168.1.42:8080/health"]  # the iotistic device only
    rows = await device_rows(client, rid)
    assert rows["io-1"]["status"] == "completed"
    assert rows["io-1"]["health_check_details"]["checks"]["web"]["passed"] is True
    assert rows["fw-1"]["status"] == "health_checking"  # waits for its agent's own result

    answer = await client.post(
        f"/api/v1/device/{ours.uuid}/health",
        json={"rollout_id": rid, "results": [{"check": "web", "passed": True}]},
        headers=ours.headers,
    )
    assert answer.json()["recorded_for"] == 1
    await tick(container)
    assert (await device_rows(client, rid))["fw-1"]["status"] == "completed"
    assert probes.probed == ["http://192.168.1.42:8080/health"]
    assert await events_of(client, rid, "health_check_not_runnable") == []
    assert (await rollout(client, rid))["status"] == "completed"


async def test_a_failing_server_probe_fails_the_iotistic_device_which_is_rolled_back(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, probes: FakeProbes
) -> None:
    probes.failing = frozenset({"192.168.1.66"})
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=1,
        health_check_config=[WEB_EITHER],
    )
    sick = await iotistic_device(client, "io-sick", ip="192.168.1.66")
    rid = await push(client)
    await sick.apply_target()
    await tick(container)  # first failure: one retry left
    assert (await device_rows(client, rid))["io-sick"]["status"] == "health_checking"
    await tick(container)  # not due again before its interval
    assert len(probes.probed) == 1
    clock.advance(timedelta(seconds=10))
    await tick(container)
    row = (await device_rows(client, rid))["io-sick"]
    assert row["status"] == "failed" and row["health_check_details"]["failed_check"] == "web"
    assert "ConnectError" in row["health_check_details"]["checks"]["web"]["last_error"]
    assert await sick.target_image() == OLD  # sent back to its own old image
    await sick.report(OLD)
    assert (await device_rows(client, rid))["io-sick"]["status"] == "rolled_back"


async def test_checks_nobody_can_run_are_reported_once_and_never_fail_the_device(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, probes: FakeProbes
) -> None:
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=0,
        soak_seconds=120,
        health_check_timeout_seconds=300,
        health_check_config=[WEB_ON_DEVICE, MQTT_EITHER, CUSTOM],
    )
    addressed = await iotistic_device(client, "io-1", ip="192.168.1.42")
    unaddressed = await iotistic_device(client, "io-2", ip=None)
    rid = await push(client)
    for device in (addressed, unaddressed):
        await device.apply_target()

    await tick(container)
    await tick(container)  # said once, not on every tick
    rows = await device_rows(client, rid)
    # io-1: web and db cannot run; mqtt is probed from the server and passes
    assert rows["io-1"]["status"] == "completed"
    assert rows["io-1"]["health_check_details"]["not_runnable"] == {
        "web": "its agent does not run http checks",
        "db": "its agent does not run custom checks",
    }
    assert probes.probed == ["192.168.1.42:1883"]
    # io-2: nothing can run; judged on its containers staying up for the soak instead
    assert rows["io-2"]["status"] == "health_checking"
    assert set(rows["io-2"]["health_check_details"]["not_runnable"]) == {"web", "mqtt", "db"}
    events = {
        e["device_uuid"]: e for e in await events_of(client, rid, "health_check_not_runnable")
    }
    assert sorted(events) == ["io-1", "io-2"]
    assert events["io-1"]["message"] == (
        "not runnable on this device: web: its agent does not run http checks; "
        "db: its agent does not run custom checks; judged on mqtt"
    )
    assert events["io-2"]["message"].endswith(
        "judged on its new containers staying up for 120 s instead"
    )
    assert events["io-2"]["event_data"]["judged_on"] == ["containers-running"]

    clock.advance(timedelta(seconds=120))
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows["io-2"]["status"] == "completed"  # never failed on the health timeout
    assert len(await events_of(client, rid, "health_check_not_runnable")) == 2
    detail = await rollout(client, rid)
    assert detail["status"] == "completed" and detail["failed_devices"] == 0


async def test_a_device_whose_agent_never_answers_its_own_checks_fails_naming_them(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, probes: FakeProbes
) -> None:
    """An agent that says it runs http checks and then never posts a result is not silently
    failed either: the timeout names the check it waited for."""
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=1,
        health_check_timeout_seconds=300,
        health_check_config=[WEB_ON_DEVICE],
    )
    mute = await fleetwave_device(client, "fw-mute")
    rid = await push(client)
    await mute.apply_target()
    clock.advance(timedelta(seconds=300))
    await tick(container)
    row = (await device_rows(client, rid))["fw-mute"]
    assert row["status"] == "failed" and row["error_message"] == "no health verdict within 300 s"
    [failed] = await events_of(client, rid, "health_check_failed")
    assert failed["message"] == "no health verdict within 300 s: no passing result from web"
    assert probes.probed == []
