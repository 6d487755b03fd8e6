"""Health checks as a policy writes them (``parse_checks``), the default when none are given
(``effective_checks``), and the verdict their results give (``verdict``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.health import (
    CheckResult,
    CheckSpec,
    default_checks,
    effective_checks,
    parse_checks,
    results_from_json,
    results_to_json,
    verdict,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=300)
HTTP = {"type": "http", "url": "http://{device_ip}:8080/health"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fields_of(error: InvalidInput) -> list[str]:
    return [problem.field for problem in error.problems]


# --- parse_checks: what is accepted ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {
                "type": "http",
                "name": "web",
                "url": "https://{device_ip}:8443/health",
                "expected_status": 204,
                "body_contains": "ok",
                "method": "GET",
                "run_on": "server",
                "timeout_seconds": 5,
                "retries": 1,
                "interval_seconds": 2,
            },
            CheckSpec(
                name="web",
                type="http",
                run_on="server",
                timeout_seconds=5,
                retries=1,
                interval_seconds=2,
                url="https://{device_ip}:8443/health",
                expected_status=204,
                body_contains="ok",
            ),
            id="http",
        ),
        pytest.param(
            {"type": "http", "url": "http://localhost/"},
            CheckSpec(name="http-1", type="http", url="http://localhost/"),
            id="http with defaults",
        ),
        pytest.param(
            {"type": "tcp", "name": "db", "host": "10.0.0.5", "port": 5432, "run_on": "server"},
            CheckSpec(name="db", type="tcp", run_on="server", host="10.0.0.5", port=5432),
            id="tcp",
        ),
        pytest.param(
            {"type": "tcp", "port": 1},
            CheckSpec(name="tcp-1", type="tcp", host="{device_ip}", port=1),
            id="tcp to the device by default, lowest port",
        ),
        pytest.param(
            {"type": "tcp", "port": 65535, "host": "localhost"},
            CheckSpec(name="tcp-1", type="tcp", host="localhost", port=65535),
            id="tcp highest port",
        ),
        pytest.param(
            {"type": "container_running", "service": "app", "min_uptime_seconds": 120},
            CheckSpec(
                name="container_running-1",
                type="container_running",
                service="app",
                min_uptime_seconds=120,
            ),
            id="container_running",
        ),
        pytest.param(
            {"type": "container_running"},
            CheckSpec(name="container_running-1", type="container_running", min_uptime_seconds=0),
            id="container_running, every service",
        ),
        pytest.param(
            {"type": "custom", "name": "db-ready", "command": ["/opt/checks/db", "--quick"]},
            CheckSpec(name="db-ready", type="custom", command=("/opt/checks/db", "--quick")),
            id="custom",
        ),
    ],
)
def test_parse_checks_accepts_each_type(raw: dict[str, Any], expected: CheckSpec) -> None:
    assert parse_checks([raw]) == [expected]


def test_defaults_are_timeout_30_retries_3_interval_10_on_the_device() -> None:
    [check] = parse_checks([HTTP])
    assert (check.timeout_seconds, check.retries, check.interval_seconds) == (30, 3, 10)
    assert check.run_on == "device" and check.expected_status == 200


def test_checks_may_be_a_bare_list_or_under_checks() -> None:
    bare = parse_checks([HTTP, {"type": "tcp", "port": 22}])
    wrapped = parse_checks({"checks": [HTTP, {"type": "tcp", "port": 22}]})
    assert bare == wrapped and [c.name for c in bare] == ["http-1", "tcp-2"]


@pytest.mark.parametrize("config", [None, [], {"checks": []}])
def test_no_checks(config: Any) -> None:
    assert parse_checks(config) == []


def test_as_json_round_trips() -> None:
    checks = parse_checks(
        [
            HTTP | {"run_on": "server", "retries": 0},
            {"type": "tcp", "port": 22},
            {"type": "container_running", "min_uptime_seconds": 5},
            {"type": "custom", "command": ["/bin/true"]},
        ]
    )
    assert parse_checks([c.as_json() for c in checks]) == checks


def test_with_device_fills_in_the_address() -> None:
    [http, tcp] = parse_checks([HTTP, {"type": "tcp", "port": 22}])
    assert http.with_device("127.0.0.2").url == "http://127.0.0.2:8080/health"
    assert http.with_device("fe80::1").url == "http://[fe80::1]:8080/health"
    assert tcp.with_device("127.0.0.3").host == "127.0.0.3"


# --- parse_checks: what is refused, the field named -----------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        pytest.param({"type": "http"}, "health_check_config[0].url", "url", id="http, no url"),
        pytest.param(
            {"type": "http", "url": ""}, "health_check_config[0].url", "url", id="http, empty url"
        ),
        pytest.param(
            {"type": "http", "url": "ftp://{device_ip}/health"},
            "health_check_config[0].url",
            "http://",
            id="bad scheme",
        ),
        pytest.param(
            {"type": "http", "url": "/health"},
            "health_check_config[0].url",
            "http://",
            id="no host",
        ),
        pytest.param(
            HTTP | {"expected_status": 700},
            "health_check_config[0].expected_status",
            "100-599",
            id="bad status",
        ),
        pytest.param(
            {"type": "tcp", "port": 0}, "health_check_config[0].port", "1-65535", id="port 0"
        ),
        pytest.param(
            {"type": "tcp", "port": 70000},
            "health_check_config[0].port",
            "1-65535",
            id="port 70000",
        ),
        pytest.param({"type": "tcp"}, "health_check_config[0].port", "port", id="no port"),
        pytest.param(
            {"type": "tcp", "port": "22"},
            "health_check_config[0].port",
            "port",
            id="port as text",
        ),
        pytest.param(
            HTTP | {"timeout_seconds": -1},
            "health_check_config[0].timeout_seconds",
            "between",
            id="negative timeout",
        ),
        pytest.param(
            HTTP | {"timeout_seconds": 0},
            "health_check_config[0].timeout_seconds",
            "between",
            id="zero timeout",
        ),
        pytest.param(
            HTTP | {"retries": -1},
            "health_check_config[0].retries",
            "between",
            id="negative retries",
        ),
        pytest.param(
            HTTP | {"interval_seconds": "10s"},
            "health_check_config[0].interval_seconds",
            "number",
            id="interval as text",
        ),
        pytest.param(
            {"type": "ping", "host": "x"},
            "health_check_config[0].type",
            "http, tcp, container_running, custom",
            id="unknown type",
        ),
        pytest.param({"url": "http://x/"}, "health_check_config[0].type", "http", id="no type"),
        pytest.param(
            HTTP | {"headers": {"a": "b"}},
            "health_check_config[0].headers",
            "not a field of a http check",
            id="unknown field",
        ),
        pytest.param(
            {"type": "tcp", "port": 22, "url": "http://x/"},
            "health_check_config[0].url",
            "not a field of a tcp check",
            id="a field of another type",
        ),
        pytest.param(
            HTTP | {"run_on": "cloud"},
            "health_check_config[0].run_on",
            "device, server or device_or_server",
            id="unknown run_on",
        ),
        pytest.param(
            {"type": "custom", "command": ["/opt/check"], "run_on": "server"},
            "health_check_config[0].run_on",
            "runs on the device",
            id="custom on the server",
        ),
        pytest.param(
            {"type": "container_running", "run_on": "server"},
            "health_check_config[0].run_on",
            "runs on the device",
            id="container_running on the server",
        ),
        pytest.param(
            {"type": "custom", "command": "/opt/check && rm -rf /"},
            "health_check_config[0].command",
            "no shell",
            id="custom command as a string",
        ),
        pytest.param(
            {"type": "custom", "command": ["checks/db.sh"]},
            "health_check_config[0].command",
            "absolute path",
            id="custom relative program",
        ),
        pytest.param(
            {"type": "custom", "command": []},
            "health_check_config[0].command",
            "non-empty",
            id="custom empty command",
        ),
        pytest.param(
            {"type": "custom", "command": ["/opt/check", 3]},
            "health_check_config[0].command",
            "strings",
            id="custom non-string argument",
        ),
        pytest.param(
            {"type": "custom"}, "health_check_config[0].command", "list", id="custom no command"
        ),
        pytest.param(
            {"type": "container_running", "min_uptime_seconds": -5},
            "health_check_config[0].min_uptime_seconds",
            "between",
            id="negative uptime",
        ),
        pytest.param("http", "health_check_config[0]", "object", id="not an object"),
    ],
)
def test_parse_checks_refuses_naming_the_field(raw: Any, field: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_checks([raw])
    assert field in fields_of(caught.value), caught.value.problems
    [problem] = [p for p in caught.value.problems if p.field == field]
    assert fragment in problem.message


def test_paths_under_checks_name_the_checks_key() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_checks({"checks": [HTTP, {"type": "tcp", "port": 0}]})
    assert fields_of(caught.value) == ["health_check_config.checks[1].port"]


def test_checks_must_be_a_list() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_checks({"checks": {"type": "http"}})
    assert fields_of(caught.value) == ["health_check_config.checks"]
    with pytest.raises(InvalidInput) as caught:
        parse_checks("http://x/")
    assert fields_of(caught.value) == ["health_check_config"]


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_checks([HTTP | {"name": "web"}, {"type": "tcp", "port": 80, "name": "web"}])
    [problem] = caught.value.problems
    assert problem.field == "health_check_config" and "'web'" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_checks(
            [
                {"type": "http", "url": "gopher://x", "retries": 99},
                {"type": "tcp", "port": 0},
                {"type": "nope"},
            ]
        )
    assert sorted(fields_of(caught.value)) == [
        "health_check_config[0].retries",
        "health_check_config[0].url",
        "health_check_config[1].port",
        "health_check_config[2].type",
    ]


def test_the_field_name_can_be_chosen() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_checks([{"type": "tcp"}], field_name="checks")
    assert fields_of(caught.value) == ["checks[0].port"]


# --- effective_checks -----------------------------------------------------------------------


def test_no_checks_given_means_the_containers_run_for_the_soak_period() -> None:
    [check] = effective_checks(True, None, 90)
    assert check.type == "container_running" and check.min_uptime_seconds == 90
    assert check.run_on == "device" and check.retries == 0
    assert effective_checks(True, [], 45) == default_checks(45)
    assert effective_checks(True, {"checks": []}, 45) == default_checks(45)


def test_given_checks_replace_the_default() -> None:
    assert effective_checks(True, [HTTP], 90) == parse_checks([HTTP])


def test_health_checks_off_means_no_checks() -> None:
    assert effective_checks(False, None, 90) == []
    assert effective_checks(False, [HTTP], 90) == []


def test_effective_checks_still_validates() -> None:
    with pytest.raises(InvalidInput):
        effective_checks(True, [{"type": "tcp"}], 60)


# --- verdict --------------------------------------------------------------------------------

WEB = CheckSpec(name="web", type="http", url="http://{device_ip}/", retries=2)
PORT = CheckSpec(name="port", type="tcp", host="{device_ip}", port=22, retries=0)
UP = CheckSpec(name="up", type="container_running", min_uptime_seconds=60, retries=0)


def ok(check: str, seconds: float, detail: str | None = None) -> CheckResult:
    return CheckResult(check, True, at(seconds), detail)


def bad(check: str, seconds: float, detail: str | None = None) -> CheckResult:
    return CheckResult(check, False, at(seconds), detail)


def test_passed_when_every_check_passed() -> None:
    found = verdict([WEB, PORT], [ok("web", 1), ok("port", 2)], T0, at(3), TIMEOUT)
    assert found.outcome == "passed"
    assert found.details["web"] == {"type": "http", "attempts": 1, "passed": True}


def test_a_pass_after_failures_within_retries_passes() -> None:
    results = [bad("web", 1, "HTTP 502"), bad("web", 11, "HTTP 502"), ok("web", 21)]
    found = verdict([WEB], results, T0, at(22), TIMEOUT)
    assert found.outcome == "passed"
    assert (
        found.details["web"]["attempts"] == 3 and found.details["web"]["last_error"] == "HTTP 502"
    )


def test_pending_while_failures_are_within_retries() -> None:
    results = [bad("web", 1), bad("web", 11)]  # retries 2: two failures are allowed
    assert verdict([WEB], results, T0, at(12), TIMEOUT).outcome == "pending"


def test_failed_when_a_check_failed_more_than_its_retries() -> None:
    results = [
        ok("port", 1),
        bad("web", 1, "HTTP 500"),
        bad("web", 11, "HTTP 502"),
        bad("web", 21, "HTTP 503, expected 200"),
    ]
    found = verdict([WEB, PORT], results, T0, at(22), TIMEOUT)
    assert found.outcome == "failed"
    assert found.details["failed_check"] == "web"
    assert found.details["web"] == {
        "type": "http",
        "attempts": 3,
        "passed": False,
        "last_error": "HTTP 503, expected 200",
    }


def test_no_retries_fails_at_the_first_failure() -> None:
    found = verdict([PORT], [bad("port", 1, "refused")], T0, at(2), TIMEOUT)
    assert found.outcome == "failed" and found.details["failed_check"] == "port"
    assert found.details["port"]["last_error"] == "refused"


def test_one_failed_check_fails_even_when_another_is_pending() -> None:
    found = verdict([WEB, PORT], [bad("port", 1)], T0, at(2), TIMEOUT)
    assert found.outcome == "failed" and found.details["failed_check"] == "port"


def test_pending_until_every_check_has_passed() -> None:
    found = verdict([WEB, PORT], [ok("web", 1)], T0, at(2), TIMEOUT)
    assert found.outcome == "pending"
    assert found.details["port"] == {"type": "tcp", "attempts": 0, "passed": False}


def test_timeout_at_running_since_plus_timeout() -> None:
    results = [bad("web", 1)]
    just_before = T0 + TIMEOUT - timedelta(microseconds=1)
    assert verdict([WEB, PORT], results, T0, just_before, TIMEOUT).outcome == "pending"
    found = verdict([WEB, PORT], results, T0, T0 + TIMEOUT, TIMEOUT)
    assert found.outcome == "timeout"
    assert found.details["waiting_for"] == ["web", "port"]


def test_a_verdict_reached_in_time_is_not_a_timeout() -> None:
    late = T0 + TIMEOUT * 2
    assert verdict([WEB], [ok("web", 1)], T0, late, TIMEOUT).outcome == "passed"
    assert verdict([PORT], [bad("port", 1)], T0, late, TIMEOUT).outcome == "failed"


def test_container_running_passes_by_uptime() -> None:
    found = verdict([UP], [], T0, at(59), TIMEOUT)
    assert found.outcome == "pending" and found.details["up"]["passed"] is False
    assert found.details["up"]["uptime_seconds"] == 59
    found = verdict([UP], [], T0, at(60), TIMEOUT)
    assert found.outcome == "passed" and found.details["up"] == {
        "type": "container_running",
        "passed": True,
        "uptime_seconds": 60,
    }


def test_container_running_without_uptime_passes_at_once() -> None:
    [check] = default_checks(0)
    assert verdict([check], [], T0, T0, TIMEOUT).outcome == "passed"


def test_container_running_too_short_times_out() -> None:
    long_soak = CheckSpec(name="up", type="container_running", min_uptime_seconds=600)
    found = verdict([long_soak], [], T0, T0 + TIMEOUT, TIMEOUT)
    assert found.outcome == "timeout" and found.details["waiting_for"] == ["up"]


def test_container_running_and_probes_together() -> None:
    assert verdict([UP, PORT], [ok("port", 1)], T0, at(30), TIMEOUT).outcome == "pending"
    assert verdict([UP, PORT], [ok("port", 1)], T0, at(61), TIMEOUT).outcome == "passed"


def test_results_before_running_since_are_ignored() -> None:
    earlier = [ok("port", -10), bad("web", -30), bad("web", -20), bad("web", -10)]
    found = verdict([WEB, PORT], earlier, T0, at(1), TIMEOUT)
    assert found.outcome == "pending"
    assert found.details["web"]["attempts"] == 0 and found.details["port"]["attempts"] == 0
    found = verdict([PORT], [bad("port", -1), ok("port", 0)], T0, at(1), TIMEOUT)
    assert found.outcome == "passed"  # a result at running_since counts


def test_results_of_unknown_checks_are_ignored() -> None:
    assert verdict([PORT], [bad("gone", 1), ok("port", 1)], T0, at(2), TIMEOUT).outcome == (
        "passed"
    )


def test_results_are_read_in_time_order() -> None:
    results = [bad("web", 21, "last"), bad("web", 1, "first"), bad("web", 11, "second")]
    found = verdict([WEB], results, T0, at(22), TIMEOUT)
    assert found.details["web"]["last_error"] == "last"


def test_no_checks_pass_at_once() -> None:
    assert verdict([], [], T0, T0, TIMEOUT).outcome == "passed"


def test_results_round_trip_through_json() -> None:
    results = [ok("web", 1, "HTTP 200"), bad("port", 2)]
    assert results_from_json({"results": results_to_json(results)}) == results
    assert results_from_json(None) == [] and results_from_json({}) == []
    assert results_from_json({"verdict": "pending"}) == []
