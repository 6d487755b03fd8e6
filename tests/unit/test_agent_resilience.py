"""The agent survives what a field brings: odd configurations, an engine that is away, a
health result that could not be sent."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from docker.errors import DockerException
from tests.unit.test_agent_loop import Device, services, target

from fleetwave.agent import agent as agent_module
from fleetwave.agent.container_config import container_name, create_options
from fleetwave.agent.runtime import Container, ServiceSpec
from fleetwave.domain.health import CheckSpec

DOCKER_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # moby's validContainerNamePattern


def spec(service_name: str = "web", config: dict[str, Any] | None = None) -> ServiceSpec:
    return ServiceSpec(
        f"1001/{service_name}", "1001", service_name, 1, "iotistic/web:v1", config or {}
    )


def test_a_container_name_always_starts_as_the_engine_requires() -> None:
    assert DOCKER_NAME.match(container_name(spec("_worker"), "dev-1"))


def test_a_port_range_is_published() -> None:
    ports = create_options(spec(config={"ports": ["8000-8001:8000-8001"]}), "dev-1")["ports"]
    assert ports == {"8000/tcp": 8000, "8001/tcp": 8001}


async def test_a_configuration_the_agent_cannot_translate_fails_the_service_not_the_agent() -> None:
    device = Device(report_interval=0)

    async def start(spec: ServiceSpec) -> Container:
        create_options(spec, "dev-1")  # as DockerRuntime.start does
        return await type(device.runtime).start(device.runtime, spec)

    device.runtime.start = start  # type: ignore[method-assign]
    state = target("iotistic/web:v1")
    state["apps"]["1001"]["services"][0]["config"] = {"ports": ["8080:http"]}
    device.client.serve("e1", state)

    await device.agent.step()

    assert services(device.client.reports[-1])[0]["status"] == "start_failed"


async def test_an_engine_that_is_briefly_away_makes_the_agent_back_off_not_end() -> None:
    device = Device()

    async def containers() -> list[Container]:
        raise DockerException("Error while fetching server API version: connection refused")

    device.runtime.containers = containers  # type: ignore[method-assign]

    assert await device.agent.step() == 15


async def test_a_health_result_that_could_not_be_posted_is_posted_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def run_check(check: CheckSpec) -> tuple[bool, str]:
        return True, "HTTP 200"

    monkeypatch.setattr(agent_module, "run_check", run_check)
    device = Device(report_interval=0)
    checks = [{"type": "http", "url": "http://{device_ip}/", "retries": 0}]
    device.client.serve("e1", target("iotistic/web:v1", rollout_id="r-1", health_checks=checks))
    health = device.client.health

    async def refused_once(*args: Any) -> None:
        device.client.health = health  # type: ignore[method-assign]
        raise httpx.ConnectError("connection refused")

    device.client.health = refused_once  # type: ignore[method-assign]

    await device.agent.step()  # the post fails: backoff
    for _ in range(3):
        await device.agent.step()

    assert "health" in [kind for kind, _ in device.client.sent]


async def test_a_simulated_service_answers_its_checks_and_an_unhealthy_tag_fails_them() -> None:
    from fleetwave.agent.simulated import Behaviour, SimulatedRuntime

    runtime = SimulatedRuntime({"v2": Behaviour(unhealthy=True)}, images={"app:v1", "app:v2"})
    assert await runtime.answer_check("http") == (
        False,
        "simulated http check: nothing is running",
    )
    web = ServiceSpec("1001/web", "1001", "web", 1, "app:v1")
    first = await runtime.start(web)
    assert await runtime.answer_check("http") == (True, "simulated http check: HTTP 200")
    await runtime.remove(first)
    await runtime.start(ServiceSpec("1001/web", "1001", "web", 1, "app:v2"))
    passed, detail = await runtime.answer_check("tcp") or (True, "")
    assert not passed and "app:v2 answers HTTP 503" in detail
    assert await SimulatedRuntime(answers_checks=False).answer_check("http") is None


async def test_a_restarted_agent_still_drops_the_image_before_the_previous_one() -> None:
    device = Device()
    await device.agent.step()
    device.client.serve("e2", target("iotistic/web:v2"))
    await device.agent.step()

    device.restart()  # the labels, not the agent's memory, say what ran before
    device.client.serve("e3", target("iotistic/web:v3"))
    await device.agent.step()

    assert device.runtime.images == {"iotistic/web:v2", "iotistic/web:v3"}
    [running] = await device.runtime.containers()
    assert running.labels["io.fleetwave.previous-image"] == "iotistic/web:v2"


async def test_a_rollback_keeps_the_image_it_left_and_drops_nothing_it_needs() -> None:
    device = Device()
    await device.agent.step()
    device.client.serve("e2", target("iotistic/web:v2"))
    await device.agent.step()
    device.client.serve("e3", target("iotistic/web:v1"))  # rolled back
    await device.agent.step()

    assert device.runtime.images == {"iotistic/web:v1", "iotistic/web:v2"}
    [running] = await device.runtime.containers()
    assert running.image == "iotistic/web:v1"
    assert running.labels["io.fleetwave.previous-image"] == "iotistic/web:v2"
