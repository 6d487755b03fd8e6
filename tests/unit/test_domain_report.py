"""A device's state report: accepted whole, or rejected naming each bad field."""

from __future__ import annotations

from typing import Any

import pytest

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.report import METRICS, parse_state_report

UUID = "d6a1c0de-0000-4000-8000-000000000001"

CURRENT_APPS = {
    "1001": {
        "appId": 1001,
        "appName": "web",
        "services": [
            {
                "serviceId": 1,
                "serviceName": "app",
                "imageName": "iotistic/myapp:v2.0.0",
                "status": "running",
                "containerId": "4f1c2a9e0b7d",
                "config": {"image": "iotistic/myapp:v2.0.0"},
            }
        ],
    }
}

FULL_REPORT = {
    "apps": CURRENT_APPS,
    "config": {"RESIN_HOST_LOG": "1"},
    "is_online": True,
    "os_version": "Debian 12",
    "supervisor_version": "1.4.2",
    "local_ip": "192.168.1.20",
    "mac_address": "02:42:ac:11:00:02",
    "cpu_usage": 12.5,
    "memory_usage": 512,
    "memory_total": 2048,
    "storage_usage": 10.25,
    "storage_total": 64,
    "temperature": 48.0,
    "uptime": 86400,
}


def problems_of(report: Any) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        parse_state_report(report, field_prefix=UUID)
    return caught.value.problems


def test_full_iotistic_report_is_taken_apart() -> None:
    report = parse_state_report(FULL_REPORT, field_prefix=UUID)

    assert report.apps == CURRENT_APPS
    assert report.config == {"RESIN_HOST_LOG": "1"}
    assert report.is_online is True
    assert report.os_version == "Debian 12"
    assert report.supervisor_version == "1.4.2"
    assert report.local_ip == "192.168.1.20"


def test_system_info_gathers_the_metrics_and_local_ip_only() -> None:
    report = parse_state_report(FULL_REPORT, field_prefix=UUID)

    assert report.system_info == {
        "cpu_usage": 12.5,
        "memory_usage": 512,
        "memory_total": 2048,
        "storage_usage": 10.25,
        "storage_total": 64,
        "temperature": 48.0,
        "uptime": 86400,
        "local_ip": "192.168.1.20",
    }


def test_system_info_leaves_out_metrics_the_device_did_not_send() -> None:
    report = parse_state_report({"cpu_usage": 3, "uptime": 10}, field_prefix=UUID)

    assert report.system_info == {"cpu_usage": 3, "uptime": 10}


def test_empty_report_means_online_and_nothing_else() -> None:
    report = parse_state_report({}, field_prefix=UUID)

    assert report.apps is None
    assert report.config is None
    assert report.is_online is True
    assert report.os_version is None
    assert report.supervisor_version is None
    assert report.local_ip is None
    assert report.system_info == {}


def test_device_can_report_itself_offline() -> None:
    assert parse_state_report({"is_online": False}, field_prefix=UUID).is_online is False


def test_unknown_fields_are_tolerated() -> None:
    report = parse_state_report({"future_metric": [1], "apps": {}}, field_prefix=UUID)

    assert report.apps == {}


def test_null_metrics_and_text_fields_are_accepted() -> None:
    report = parse_state_report(
        {"cpu_usage": None, "os_version": None, "local_ip": None}, field_prefix=UUID
    )

    assert report.os_version is None
    assert report.local_ip is None


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        pytest.param("10.0.0.5", "10.0.0.5", id="ipv4"),
        pytest.param("2001:DB8:0:0:0:0:0:0001", "2001:db8::1", id="ipv6 long form"),
        pytest.param("FE80::1", "fe80::1", id="ipv6 upper case"),
    ],
)
def test_local_ip_is_normalized(given: str, normalized: str) -> None:
    assert parse_state_report({"local_ip": given}, field_prefix=UUID).local_ip == normalized


def test_system_info_carries_the_same_normalized_local_ip_as_the_report() -> None:
    report = parse_state_report({"local_ip": "2001:DB8:0:0:0:0:0:0001"}, field_prefix=UUID)

    assert report.system_info["local_ip"] == report.local_ip == "2001:db8::1"


def service_with(**fields: Any) -> dict[str, Any]:
    return {"apps": {"1001": {"services": [{"serviceName": "app", **fields}]}}}


@pytest.mark.parametrize(
    ("report", "field", "message"),
    [
        pytest.param({"apps": []}, "apps", "must be an object keyed by appId", id="apps list"),
        pytest.param({"apps": {"1001": "web"}}, "apps.1001", "must be an object", id="app str"),
        pytest.param(
            {"apps": {"1001": {"services": {}}}},
            "apps.1001.services",
            "must be a list",
            id="services not a list",
        ),
        pytest.param(
            {"apps": {"1001": {"services": ["app"]}}},
            "apps.1001.services[0]",
            "must be an object",
            id="service not an object",
        ),
        pytest.param(
            service_with(status=1),
            "apps.1001.services[0].status",
            "must be a string",
            id="service status",
        ),
        pytest.param(
            service_with(containerId=123),
            "apps.1001.services[0].containerId",
            "must be a string",
            id="service containerId",
        ),
        pytest.param(
            service_with(imageName=["a"]),
            "apps.1001.services[0].imageName",
            "must be a string",
            id="service imageName",
        ),
        pytest.param(
            service_with(serviceName=False),
            "apps.1001.services[0].serviceName",
            "must be a string",
            id="service serviceName",
        ),
        pytest.param({"config": "x"}, "config", "must be an object", id="config"),
        pytest.param({"is_online": "yes"}, "is_online", "must be true or false", id="online str"),
        pytest.param({"is_online": 1}, "is_online", "must be true or false", id="online int"),
        pytest.param({"os_version": 12}, "os_version", "must be a string", id="os_version"),
        pytest.param(
            {"supervisor_version": 1.4},
            "supervisor_version",
            "must be a string",
            id="supervisor_version",
        ),
        pytest.param({"mac_address": {}}, "mac_address", "must be a string", id="mac_address"),
        pytest.param({"local_ip": 10}, "local_ip", "must be a string", id="local_ip number"),
        pytest.param(
            {"local_ip": "10.0.0.256"}, "local_ip", "must be an IP address", id="local_ip bad v4"
        ),
        pytest.param(
            {"local_ip": "localhost"}, "local_ip", "must be an IP address", id="local_ip name"
        ),
        pytest.param(
            {"local_ip": " 10.0.0.1"}, "local_ip", "must be an IP address", id="local_ip space"
        ),
    ],
)
def test_malformed_field_is_rejected_with_its_path(
    report: dict[str, Any], field: str, message: str
) -> None:
    assert problems_of(report) == [Problem(f"{UUID}.{field}", message)]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "value", ["12.5", True, [1], {"v": 1}, float("nan"), float("inf"), float("-inf")]
)
def test_metric_that_is_not_a_finite_number_is_rejected_with_its_path(
    metric: str, value: Any
) -> None:
    expected = [Problem(f"{UUID}.{metric}", "must be a finite number")]
    assert problems_of({metric: value}) == expected


def test_every_metric_the_agent_sends_is_known() -> None:
    assert set(METRICS) == {
        "cpu_usage",
        "memory_usage",
        "memory_total",
        "storage_usage",
        "storage_total",
        "temperature",
        "uptime",
    }


@pytest.mark.parametrize("report", [[], "state", None, 1])
def test_report_that_is_not_an_object_is_rejected_at_the_prefix(report: Any) -> None:
    assert problems_of(report) == [Problem(UUID, "must be an object")]


def test_every_problem_in_a_report_is_named_at_once() -> None:
    problems = problems_of({"is_online": "yes", "cpu_usage": "hot", **service_with(status=0)})

    assert sorted(p.field for p in problems) == [
        f"{UUID}.apps.1001.services[0].status",
        f"{UUID}.cpu_usage",
        f"{UUID}.is_online",
    ]


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("cpu_usage", 10**4000, "must be from 0 to 100"),
        ("cpu_usage", 100.5, "must be from 0 to 100"),
        ("cpu_usage", -0.1, "must be from 0 to 100"),
        ("memory_usage", -1e20, "must be from 0 to 9,007,199,254,740,992"),
        ("memory_total", 2**53 + 1, "must be from 0 to 9,007,199,254,740,992"),
        ("storage_usage", -1, "must be from 0 to 9,007,199,254,740,992"),
        ("storage_total", 1e300, "must be from 0 to 9,007,199,254,740,992"),
        ("temperature", -300, "must be from -273.15 to 1,000"),
        ("temperature", 1000.5, "must be from -273.15 to 1,000"),
        ("uptime", -5, "must be from 0 to 3,155,760,000"),
        ("uptime", 10**10, "must be from 0 to 3,155,760,000"),
    ],
)
def test_metric_outside_what_a_device_can_measure_is_rejected_naming_its_range(
    metric: str, value: Any, message: str
) -> None:
    assert problems_of({metric: value}) == [Problem(f"{UUID}.{metric}", message)]


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("cpu_usage", 0),
        ("cpu_usage", 100),
        ("memory_usage", 2**53),
        ("temperature", -40.5),
        ("temperature", 85),
        ("uptime", 3_155_760_000),
    ],
)
def test_metric_at_the_edges_of_its_range_is_accepted(metric: str, value: Any) -> None:
    assert parse_state_report({metric: value}, field_prefix=UUID).system_info == {metric: value}


@pytest.mark.parametrize(
    ("report", "field", "message"),
    [
        (
            {"os_version": "Debian\x0012"},
            "os_version",
            "contains a NUL character (\\u0000)",
        ),
        (
            {"config": {"NOTE": "\ud800"}},
            "config.NOTE",
            "contains a lone surrogate (\\ud800), which is not a Unicode character",
        ),
        (
            {"anything": {"the agent adds": ["\x00"]}},
            "anything.the agent adds[0]",
            "contains a NUL character (\\u0000)",
        ),
        (
            {"supervisor_version": "1.4\x07"},
            "supervisor_version",
            "contains a control character (\\u0007)",
        ),
        (
            service_with(imageName="fuzz/app:\x1bv9"),
            "apps.1001.services[0].imageName",
            "contains a control character (\\u001b)",
        ),
    ],
)
def test_text_the_database_cannot_store_is_rejected_anywhere_in_a_report(
    report: dict[str, Any], field: str, message: str
) -> None:
    assert problems_of(report) == [Problem(f"{UUID}.{field}", message)]
