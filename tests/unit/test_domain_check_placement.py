"""Which of a rollout's checks run where for a device, by what its agent declares and whether
it reported an address (``place``, ``placement``), and how many of a policy's devices cannot
run each check (``coverage``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fleetwave.domain.capabilities import parse_capabilities
from fleetwave.domain.check_placement import (
    DEVICE,
    REPORTS,
    SERVER,
    DeviceGroup,
    NotRunnable,
    coverage,
    place,
    placement,
)
from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.health import CheckSpec, parse_checks

FLEETWAVE = frozenset({"checks.http", "checks.tcp", "progress"})
WITH_CUSTOM = FLEETWAVE | {"checks.custom"}
IOTISTIC: frozenset[str] = frozenset()
SOAK = timedelta(seconds=90)


def check(**fields: Any) -> CheckSpec:
    [spec] = parse_checks([fields])
    return spec


HTTP_DEVICE = check(type="http", name="web", url="http://localhost:8080/health")
HTTP_EITHER = check(
    type="http", name="web", url="http://{device_ip}:8080/health", run_on="device_or_server"
)
HTTP_SERVER = check(type="http", name="web", url="http://{device_ip}:8080/health", run_on="server")
HTTP_SERVER_FIXED = check(
    type="http", name="gateway", url="http://gateway.example/ok", run_on="server"
)
TCP_DEVICE = check(type="tcp", name="mqtt", host="localhost", port=1883)
TCP_EITHER = check(type="tcp", name="mqtt", port=1883, run_on="device_or_server")
CUSTOM = check(type="custom", name="db", command=["/opt/checks/db"])
RUNNING = check(type="container_running", name="up", min_uptime_seconds=30)

NO_AGENT = NotRunnable("http", no_agent=True)


@pytest.mark.parametrize(
    ("spec", "capabilities", "has_address", "expected"),
    [
        # container_running is read from reports, whatever the agent
        pytest.param(RUNNING, IOTISTIC, False, REPORTS, id="container_running, iotistic"),
        pytest.param(RUNNING, FLEETWAVE, True, REPORTS, id="container_running, fleetwave"),
        # run_on: device
        pytest.param(HTTP_DEVICE, FLEETWAVE, True, DEVICE, id="device http, agent runs http"),
        pytest.param(HTTP_DEVICE, FLEETWAVE, False, DEVICE, id="device http, no address needed"),
        pytest.param(HTTP_DEVICE, IOTISTIC, True, NO_AGENT, id="device http, iotistic"),
        pytest.param(
            TCP_DEVICE,
            frozenset({"checks.http"}),
            True,
            NotRunnable("tcp", no_agent=True),
            id="device tcp, agent runs http only",
        ),
        pytest.param(CUSTOM, WITH_CUSTOM, True, DEVICE, id="custom, allowed on the agent"),
        pytest.param(
            CUSTOM,
            FLEETWAVE,
            True,
            NotRunnable("custom", no_agent=True),
            id="custom, agent started without custom checks",
        ),
        pytest.param(
            CUSTOM, IOTISTIC, True, NotRunnable("custom", no_agent=True), id="custom, iotistic"
        ),
        # run_on: device_or_server
        pytest.param(HTTP_EITHER, FLEETWAVE, True, DEVICE, id="either, agent runs it"),
        pytest.param(HTTP_EITHER, FLEETWAVE, False, DEVICE, id="either, agent runs it, no ip"),
        pytest.param(HTTP_EITHER, IOTISTIC, True, SERVER, id="either, iotistic with an address"),
        pytest.param(
            HTTP_EITHER,
            IOTISTIC,
            False,
            NotRunnable("http", no_agent=True, no_address=True),
            id="either, iotistic without an address",
        ),
        pytest.param(TCP_EITHER, IOTISTIC, True, SERVER, id="either tcp, iotistic"),
        pytest.param(
            TCP_EITHER, frozenset({"checks.http"}), True, SERVER, id="either tcp, agent: http only"
        ),
        # run_on: server
        pytest.param(HTTP_SERVER, FLEETWAVE, True, SERVER, id="server, fleetwave"),
        pytest.param(HTTP_SERVER, IOTISTIC, True, SERVER, id="server, iotistic"),
        pytest.param(
            HTTP_SERVER,
            IOTISTIC,
            False,
            NotRunnable("http", no_address=True),
            id="server, no address to probe",
        ),
        pytest.param(
            HTTP_SERVER_FIXED, IOTISTIC, False, SERVER, id="server, a fixed host needs no address"
        ),
        # words the server does not know change nothing
        pytest.param(
            HTTP_DEVICE,
            frozenset({"checks.grpc", "telepathy"}),
            True,
            NO_AGENT,
            id="unknown capabilities",
        ),
    ],
)
def test_place(
    spec: CheckSpec, capabilities: frozenset[str], has_address: bool, expected: object
) -> None:
    assert place(spec, capabilities, has_address) == expected


@pytest.mark.parametrize(
    ("reason", "devices", "text"),
    [
        pytest.param(NO_AGENT, 1, "its agent does not run http checks", id="agent, one"),
        pytest.param(NO_AGENT, 3, "their agent does not run http checks", id="agent, several"),
        pytest.param(
            NotRunnable("tcp", no_address=True),
            1,
            "it has reported no address to probe",
            id="address, one",
        ),
        pytest.param(
            NotRunnable("tcp", no_agent=True, no_address=True),
            2,
            "their agent does not run tcp checks and they have reported no address to probe",
            id="both, several",
        ),
    ],
)
def test_not_runnable_says_why(reason: NotRunnable, devices: int, text: str) -> None:
    assert reason.reason(devices=devices) == text


def test_placement_sorts_the_checks_and_names_those_nobody_runs() -> None:
    found = placement([HTTP_DEVICE, TCP_EITHER, CUSTOM, RUNNING], IOTISTIC, has_address=True)
    assert found.device == ()
    assert found.server == (TCP_EITHER,)
    assert found.reports == (RUNNING,)
    assert found.not_runnable == {
        "web": "its agent does not run http checks",
        "db": "its agent does not run custom checks",
    }
    assert found.judged(SOAK) == [TCP_EITHER, RUNNING]


def test_a_device_that_can_run_every_check_is_judged_on_all_of_them() -> None:
    found = placement([HTTP_DEVICE, TCP_EITHER, CUSTOM, RUNNING], WITH_CUSTOM, has_address=False)
    assert found.device == (HTTP_DEVICE, TCP_EITHER, CUSTOM)
    assert found.not_runnable == {}
    assert found.judged(SOAK) == [HTTP_DEVICE, TCP_EITHER, CUSTOM, RUNNING]


def test_a_device_that_can_run_none_of_its_checks_is_judged_on_the_default() -> None:
    found = placement([HTTP_DEVICE, CUSTOM], IOTISTIC, has_address=True)
    [default] = found.judged(SOAK)
    assert default.type == "container_running" and default.min_uptime_seconds == 90
    assert set(found.not_runnable) == {"web", "db"}


def test_no_checks_at_all_are_judged_on_nothing() -> None:
    assert placement([], IOTISTIC, has_address=False).judged(SOAK) == []


# --- coverage ---------------------------------------------------------------------------------


def groups(*rows: tuple[frozenset[str], bool, int]) -> list[DeviceGroup]:
    return [DeviceGroup(caps, address, n) for caps, address, n in rows]


def test_coverage_counts_the_devices_that_cannot_run_each_check() -> None:
    fleet = groups((FLEETWAVE, True, 37), (IOTISTIC, True, 2), (IOTISTIC, False, 1))
    warnings = coverage([HTTP_DEVICE, TCP_EITHER, RUNNING], fleet)
    assert [w.as_json() for w in warnings] == [
        {
            "check": "web",
            "type": "http",
            "devices": 3,
            "total": 40,
            "message": "3 of 40 devices cannot run http checks (web): "
            "their agent does not run http checks",
        },
        {
            "check": "mqtt",
            "type": "tcp",
            "devices": 1,
            "total": 40,
            "message": "1 of 40 devices cannot run tcp checks (mqtt): "
            "its agent does not run tcp checks and it has reported no address to probe",
        },
    ]


def test_coverage_gives_each_reason_once() -> None:
    fleet = groups((IOTISTIC, False, 2), (FLEETWAVE, False, 3), (IOTISTIC, True, 4))
    [warning] = coverage([HTTP_SERVER], fleet)
    assert (warning.devices, warning.total) == (5, 9)
    assert warning.reasons == ("they have reported no address to probe",)


@pytest.mark.parametrize(
    ("checks", "fleet"),
    [
        pytest.param([HTTP_DEVICE, TCP_DEVICE], groups((FLEETWAVE, False, 5)), id="all capable"),
        pytest.param([RUNNING], groups((IOTISTIC, False, 5)), id="reports only"),
        pytest.param([HTTP_EITHER], groups((IOTISTIC, True, 5)), id="probed from the server"),
        pytest.param([HTTP_DEVICE], [], id="no device covered"),
    ],
)
def test_no_warning_when_every_device_can_run_every_check(
    checks: list[CheckSpec], fleet: list[DeviceGroup]
) -> None:
    assert coverage(checks, fleet) == []


# --- the checks a policy may write ----------------------------------------------------------


def test_device_or_server_checks_must_name_the_device() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_checks(
            [
                {"type": "http", "url": "http://localhost:8080/", "run_on": "device_or_server"},
                {"type": "tcp", "host": "127.0.0.1", "port": 80, "run_on": "device_or_server"},
                {"type": "custom", "command": ["/opt/x"], "run_on": "device_or_server"},
                {"type": "http", "url": "http://{device_ip}/", "run_on": "anywhere"},
            ]
        )
    assert [(p.field, p.message) for p in refused.value.problems] == [
        (
            "health_check_config[0].url",
            "a check that may run from the server must name the device as {device_ip}",
        ),
        (
            "health_check_config[1].host",
            "a check that may run from the server must name the device as {device_ip}",
        ),
        ("health_check_config[2].run_on", "a custom check runs on the device"),
        ("health_check_config[3].run_on", "must be device, server or device_or_server"),
    ]


# --- capabilities in a report -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, (), id="absent: none"),
        pytest.param([], (), id="empty"),
        pytest.param(
            ["progress", "checks.tcp", "checks.http", "progress"],
            ("checks.http", "checks.tcp", "progress"),
            id="sorted, without repeats",
        ),
        pytest.param(["checks.grpc"], ("checks.grpc",), id="unknown words kept"),
    ],
)
def test_parse_capabilities(value: Any, expected: tuple[str, ...]) -> None:
    problems: list[Problem] = []
    assert parse_capabilities(value, "caps", problems) == expected
    assert problems == []


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param("checks.http", "caps", id="not a list"),
        pytest.param(["x"] * 33, "caps", id="too many"),
        pytest.param(["ok", 7], "caps[1]", id="not a word"),
        pytest.param([""], "caps[0]", id="empty word"),
        pytest.param(["x" * 65], "caps[0]", id="too long"),
        pytest.param(["checks\nhttp"], "caps[0]", id="control character"),
    ],
)
def test_parse_capabilities_refuses_naming_the_field(value: Any, field: str) -> None:
    problems: list[Problem] = []
    parse_capabilities(value, "caps", problems)
    assert [p.field for p in problems] == [field]
