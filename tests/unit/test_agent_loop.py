"""The agent loop (``Agent.step``): poll, apply, report at most every ``report_interval``, run
the device-side health checks after the report that shows the new container, back off on
errors, and find its containers again after a restart.

Fakes only for what we own: a fake device client that answers polls like the server (a new
state when the ETag differs, ``None`` when it matches) and records reports and health posts, the
simulated runtime, a manual monotonic clock and a sleep that returns at once (moving the clock).
"""

from __future__ import annotations

import copy
import random
from typing import Any, cast

import httpx
import pytest
from tests.integration.health_helpers import HttpServer

from fleetwave.agent import agent as agent_module
from fleetwave.agent.agent import Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.runtime import Container, ServiceSpec
from fleetwave.agent.simulated import Behaviour, SimulatedRuntime
from fleetwave.domain.health import CheckSpec
from fleetwave.health.custom import CustomChecks

UUID = "dev-1"
KEY = "1001/web"


def target(image: str, **extension: Any) -> dict[str, Any]:
    """A served state with one service, ``web`` of app 1001, running ``image``."""
    state: dict[str, Any] = {
        "apps": {
            "1001": {
                "appId": 1001,
                "services": [
                    {"serviceName": "web", "serviceId": 1, "imageName": image, "config": {}}
                ],
            }
        },
        "config": {},
    }
    if extension:
        state["fleetwave"] = extension
    return state


class FakeDeviceClient:
    """Answers polls as the server does and keeps every report and health post, in order."""

    def __init__(self, etag: str, state: dict[str, Any]) -> None:
        self.uuid = UUID
        self.etag, self.state = etag, state
        self.polls: list[str | None] = []
        self.sent: list[tuple[str, Any]] = []  # ("report", state) | ("health", post)
        self.unreachable = 0  # this many polls fail before the server answers again
        self.long_poll_max: float | None = None  # this server offers no long-poll

    def serve(self, etag: str, state: dict[str, Any]) -> None:
        self.etag, self.state = etag, state

    async def poll(self, etag: str | None, **_: Any) -> tuple[str | None, dict[str, Any] | None]:
        self.polls.append(etag)
        if self.unreachable:
            self.unreachable -= 1
            raise httpx.ConnectError("connection refused")
        if etag == self.etag:
            return etag, None
        return self.etag, copy.deepcopy(self.state)

    async def report(self, state: dict[str, Any]) -> None:
        self.sent.append(("report", copy.deepcopy(state)))

    async def health(
        self, path: str, rollout_id: str | None, results: list[dict[str, Any]]
    ) -> None:
        self.sent.append(("health", {"path": path, "rollout_id": rollout_id, "results": results}))

    @property
    def reports(self) -> list[dict[str, Any]]:
        return [body for kind, body in self.sent if kind == "report"]


class ManualMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InstantSleep:
    """Returns at once; the manual clock moves on by the time asked for."""

    def __init__(self, clock: ManualMonotonic) -> None:
        self.clock = clock
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.clock.advance(seconds)


class RecordingRuntime(SimulatedRuntime):
    """Keeps the images it was asked to start, and can run a function during a pull (the
    server's target may change while an image downloads)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**({"answers_checks": False} | kwargs))  # checks go to the network
        self.started: list[str] = []
        self.removed: list[str] = []
        self.during_pull: dict[str, Any] = {}  # image → a function called while it downloads

    async def pull(self, image: str) -> None:
        if image in self.during_pull:
            self.during_pull.pop(image)()
        await super().pull(image)

    async def start(self, spec: ServiceSpec) -> Container:
        self.started.append(spec.image)
        return await super().start(spec)

    async def remove(self, container: Container) -> None:
        self.removed.append(container.image)
        await super().remove(container)


class Device:
    """An agent, its runtime, its clock and the fake server it talks to."""

    def __init__(self, image: str = "iotistic/web:v1", **options: Any) -> None:
        self.client = FakeDeviceClient("e1", target(image))
        self.runtime = RecordingRuntime()
        self.clock = ManualMonotonic()
        self.sleep = InstantSleep(self.clock)
        self.options = {"report_interval": 10, "poll_interval": 60} | options
        self.agent = self.restart()

    def restart(self) -> Agent:
        """A fresh agent over the same runtime, as after the agent process restarts."""
        self.agent = Agent(
            cast(DeviceClient, self.client),
            self.runtime,
            sleep=self.sleep,
            monotonic=self.clock,
            rng=random.Random(7),
            **self.options,
        )
        return self.agent

    async def images_running(self) -> list[tuple[str, str]]:
        return [(c.image, c.state) for c in await self.runtime.containers()]


def services(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for app in report["apps"].values() for s in app["services"]]


def shows_running(report: dict[str, Any], image: str) -> bool:
    return any(s.get("imageName") == image and s["status"] == "running" for s in services(report))


# reporting --------------------------------------------------------------------------------


async def test_a_change_inside_the_interval_is_sent_when_it_ends_as_the_state_is_then() -> None:
    device = Device()
    await device.agent.step()  # t=0: "pulling" goes out at once; "running" must wait
    assert [services(r)[0]["status"] for r in device.client.reports] == ["pulling"]

    device.clock.advance(4)
    device.runtime.crash(KEY)  # the state changes again inside the interval
    await device.agent.flush()
    assert len(device.client.reports) == 1

    device.clock.advance(6)  # t=10: the interval has passed
    await device.agent.flush()
    [_, sent] = device.client.reports
    assert services(sent)[0] | {"containerId": "-"} == {
        "serviceName": "web",
        "imageName": "iotistic/web:v1",
        "status": "exited",
        "containerId": "-",
        "error": "exit code 137",
    }


async def test_every_report_declares_what_the_agent_does(tmp_path: Any) -> None:
    device = Device(report_interval=0)
    await device.agent.step()
    assert {tuple(r["capabilities"]) for r in device.client.reports} == {
        ("checks.http", "checks.tcp", "progress")
    }
    allowed = Device(report_interval=0, custom_checks=CustomChecks(tmp_path))
    await allowed.agent.step()
    assert allowed.client.reports[0]["capabilities"] == [
        "checks.custom",
        "checks.http",
        "checks.tcp",
        "progress",
    ]


async def test_an_unchanged_state_is_not_reported_again() -> None:
    device = Device(report_interval=0)
    await device.agent.step()
    sent = len(device.client.reports)

    device.clock.advance(60)
    await device.agent.step()
    await device.agent.flush()

    assert len(device.client.reports) == sent


async def test_report_now_waits_for_the_interval_then_sends() -> None:
    device = Device()
    await device.agent.step()  # t=0: a report sent, the next one pending
    device.clock.advance(3)

    await device.agent.report_now()

    assert device.sleep.asked == [7]
    assert device.clock() == 10
    assert shows_running(device.client.reports[-1], "iotistic/web:v1")


async def test_report_now_with_nothing_pending_neither_waits_nor_sends() -> None:
    device = Device()
    await device.agent.step()
    await device.agent.report_now()
    sent = len(device.client.reports)
    device.sleep.asked.clear()

    await device.agent.report_now()

    assert device.sleep.asked == []
    assert len(device.client.reports) == sent


# applying targets -------------------------------------------------------------------------


async def test_a_newer_target_arriving_during_a_slow_pull_wins() -> None:
    device = Device()
    await device.agent.step()
    device.client.serve("e2", target("iotistic/web:v2"))
    device.runtime.during_pull["iotistic/web:v2"] = lambda: device.client.serve(
        "e3", target("iotistic/web:v3")
    )
    device.runtime.started.clear()

    device.clock.advance(60)
    await device.agent.step()

    assert await device.images_running() == [("iotistic/web:v3", "running")]
    assert device.runtime.started == ["iotistic/web:v3"]  # v2 downloaded, never started
    assert device.runtime.pulls == ["iotistic/web:v1", "iotistic/web:v2", "iotistic/web:v3"]
    assert device.agent.etag == "e3"
    assert device.client.polls[-2:] == ["e2", "e3"]  # asked with the old ETag mid-apply


async def test_after_an_update_the_previous_image_is_kept_and_the_one_before_dropped() -> None:
    device = Device()
    await device.agent.step()  # v1

    device.client.serve("e2", target("iotistic/web:v2"))
    device.clock.advance(60)
    await device.agent.step()
    assert device.runtime.images == {"iotistic/web:v1", "iotistic/web:v2"}

    device.client.serve("e3", target("iotistic/web:v3"))
    device.clock.advance(60)
    await device.agent.step()
    assert device.runtime.images == {"iotistic/web:v2", "iotistic/web:v3"}
    assert await device.images_running() == [("iotistic/web:v3", "running")]


async def test_a_restarted_agent_finds_its_containers_and_changes_nothing_if_same() -> None:
    device = Device()
    await device.agent.step()
    [before] = await device.runtime.containers()
    device.runtime.started.clear()

    device.restart()  # a fresh Agent: no ETag, no memory of what it started
    device.clock.advance(60)
    await device.agent.step()

    assert device.client.polls[-1] is None  # it asked for the whole state again
    assert await device.runtime.containers() == [before]
    assert (device.runtime.started, device.runtime.removed) == ([], [])
    assert services(device.client.reports[-1])[0]["containerId"] == before.id


# health checks ----------------------------------------------------------------------------


async def test_device_side_checks_are_run_against_the_device_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    urls: list[str | None] = []

    async def run_check(check: CheckSpec) -> tuple[bool, str]:
        urls.append(check.url)
        return True, "HTTP 200"

    monkeypatch.setattr(agent_module, "run_check", run_check)
    device = Device(device_address="192.0.2.7")
    checks = [{"type": "http", "url": "http://{device_ip}:8080/health", "retries": 0}]
    device.client.serve("e1", target("iotistic/web:v1", rollout_id="r-1", health_checks=checks))

    await device.agent.step()

    assert urls == ["http://192.0.2.7:8080/health"]


async def test_health_results_are_posted_after_the_report_that_shows_the_new_container() -> None:
    async with HttpServer(hosts=("127.0.0.1",)) as server:
        device = Device(device_address="127.0.0.1")
        await device.agent.step()  # t=0: v1, a report sent
        checks = [
            {"type": "http", "url": f"http://{{device_ip}}:{server.port}/health", "retries": 0},
            {"type": "container_running", "retries": 0},  # read by the server from reports
        ]
        device.client.serve("e2", target("iotistic/web:v2", rollout_id="r-1", health_checks=checks))
        device.clock.advance(30)
        device.client.sent.clear()

        await device.agent.step()

    kinds = [kind for kind, _ in device.client.sent]
    first_health = kinds.index("health")
    assert shows_running(device.client.sent[first_health - 1][1], "iotistic/web:v2")
    assert not any(shows_running(r, "iotistic/web:v2") for r in device.client.reports[:-1])
    assert [kind for kind, _ in device.client.sent[first_health:]] == ["health"]
    assert device.client.sent[first_health][1] == {
        "path": f"/api/v1/device/{UUID}/health",
        "rollout_id": "r-1",
        "results": [{"check": "http-1", "passed": True, "detail": "HTTP 200"}],
    }
    assert [(r.host, r.path) for r in server.requests] == [("127.0.0.1", "/health")]


async def test_a_failing_check_is_retried_after_its_interval_and_each_attempt_posted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [(False, "HTTP 503, expected 200"), (True, "HTTP 200")]

    async def run_check(check: CheckSpec) -> tuple[bool, str]:
        return answers.pop(0)

    monkeypatch.setattr(agent_module, "run_check", run_check)
    device = Device(report_interval=0)
    checks = [{"type": "http", "url": "http://{device_ip}/", "retries": 2, "interval_seconds": 5}]
    device.client.serve("e1", target("iotistic/web:v1", rollout_id="r-1", health_checks=checks))

    await device.agent.step()

    posts = [body for kind, body in device.client.sent if kind == "health"]
    assert [post["results"][0]["passed"] for post in posts] == [False, True]
    assert device.sleep.asked == [5]


async def test_no_checks_run_when_the_update_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run_check(check: CheckSpec) -> tuple[bool, str]:
        raise AssertionError("checked a failed update")

    monkeypatch.setattr(agent_module, "run_check", run_check)
    device = Device()
    checks = [{"type": "http", "url": "http://{device_ip}/", "retries": 0}]
    device.client.serve("e1", target("iotistic/web:v1", rollout_id="r-1", health_checks=checks))
    device.runtime.behaviours["v1"] = Behaviour(pull_fails=True)

    await device.agent.step()

    assert "health" not in [kind for kind, _ in device.client.sent]


# errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("poll_interval", "waits"),
    [
        pytest.param(60, [15, 30, 60, 60], id="capped by a 60 s interval"),
        pytest.param(100, [15, 30, 60, 100, 100], id="capped by a 100 s interval"),
        pytest.param(10, [10, 10], id="an interval shorter than the first backoff"),
    ],
)
async def test_errors_back_off_doubling_from_15_s_up_to_the_poll_interval(
    poll_interval: float, waits: list[float]
) -> None:
    device = Device(poll_interval=poll_interval)
    device.client.unreachable = len(waits)

    assert [await device.agent.step() for _ in waits] == waits


async def test_a_successful_poll_resets_the_backoff() -> None:
    device = Device(poll_interval=60)
    device.client.unreachable = 3
    for _ in range(3):
        await device.agent.step()

    assert 54 <= await device.agent.step() <= 66  # the poll interval, with jitter
    device.client.unreachable = 1
    assert await device.agent.step() == 15


async def test_containers_keep_running_while_the_server_is_unreachable() -> None:
    device = Device()
    await device.agent.step()
    device.client.unreachable = 3

    for _ in range(3):
        await device.agent.step()

    assert await device.images_running() == [("iotistic/web:v1", "running")]
