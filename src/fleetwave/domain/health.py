"""Health checks: how a policy describes them, and the verdict their results give.

A policy's ``health_check_config`` is a list of checks (or ``{"checks": [...]}``), each
``{"type": "http" | "tcp" | "container_running" | "custom", ...}`` with ``timeout_seconds``
(default 30), ``retries`` (default 3), ``interval_seconds`` (default 10) and, for http and tcp,
``run_on``: ``device`` (the agent runs it; it sees ``localhost``), ``server`` (fleetwave probes
``{device_ip}``) or ``device_or_server`` (the agent runs it if it can, else fleetwave probes
``{device_ip}``; see ``check_placement``). ``container_running`` is judged from the device's
state reports; ``custom`` runs a command on the device. With health checks on and no checks
given, the default is that the new containers run and stay up for the soak period.

Two more types are judged by fleetwave, never by the agent (``run_on`` is ``server``):
``metric`` judges a device on the metrics of its own state reports over a window after it runs
the new image (``domain.metric_checks``); ``prometheus`` judges a whole batch on a Prometheus
query after its soak (``domain.analysis``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fleetwave.domain.errors import InvalidInput, Problem

CHECK_TYPES = ("http", "tcp", "container_running", "custom", "metric", "prometheus")
RUN_ON = ("device", "server", "device_or_server")
DEVICE_IP = "{device_ip}"
COMMON = {"type", "name", "timeout_seconds", "retries", "interval_seconds", "run_on"}
FIELDS = {
    "http": COMMON | {"url", "expected_status", "body_contains", "method"},
    "tcp": COMMON | {"host", "port"},
    "container_running": COMMON | {"service", "min_uptime_seconds"},
    "custom": COMMON | {"command"},
    "metric": {
        "type",
        "name",
        "run_on",
        "metric",
        "min",
        "max",
        "max_increase_percent",
        "window_seconds",
    }
    | {"aggregate", "min_reports"},
    "prometheus": {"type", "name", "run_on", "url", "query", "min", "max", "timeout_seconds"},
}
# Judged by fleetwave itself: never sent to the agent.
SERVER_JUDGED = ("metric", "prometheus")
AGGREGATES = ("avg", "max", "p95")
# The numeric fields of a state report a metric check may name; any other name is a key of
# the report's ``metrics`` object, written ``metrics.<key>``.
REPORT_METRICS = (
    "cpu_usage",
    "memory_usage",
    "memory_total",
    "storage_usage",
    "storage_total",
    "temperature",
    "uptime",
)
METRICS_PREFIX = "metrics."


@dataclass(frozen=True)
class CheckSpec:
    name: str
    type: str
    run_on: str = "device"
    timeout_seconds: float = 30
    retries: int = 3
    interval_seconds: float = 10
    url: str | None = None
    expected_status: int = 200
    body_contains: str | None = None
    host: str | None = None
    port: int | None = None
    service: str | None = None
    min_uptime_seconds: float | None = None
    command: tuple[str, ...] = ()
    metric: str | None = None
    min: float | None = None
    max: float | None = None
    max_increase_percent: float | None = None
    window_seconds: float = 120
    aggregate: str = "avg"
    min_reports: int = 3
    query: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "run_on": self.run_on,
            "timeout_seconds": self.timeout_seconds,
            "retries": self.retries,
            "interval_seconds": self.interval_seconds,
        }
        by_type: dict[str, dict[str, Any]] = {
            "http": {
                "url": self.url,
                "expected_status": self.expected_status,
                "body_contains": self.body_contains,
            },
            "tcp": {"host": self.host, "port": self.port},
            "container_running": {
                "service": self.service,
                "min_uptime_seconds": self.min_uptime_seconds,
            },
            "custom": {"command": list(self.command)},
            "metric": {
                "metric": self.metric,
                "min": self.min,
                "max": self.max,
                "max_increase_percent": self.max_increase_percent,
                "window_seconds": self.window_seconds,
                "aggregate": self.aggregate,
                "min_reports": self.min_reports,
            },
            "prometheus": {"url": self.url, "query": self.query, "min": self.min, "max": self.max},
        }
        if self.type in SERVER_JUDGED:
            data = {k: v for k, v in data.items() if k in ("name", "type", "run_on")}
            if self.type == "prometheus":
                data["timeout_seconds"] = self.timeout_seconds
        extra = by_type[self.type]
        return data | {k: v for k, v in extra.items() if v is not None}

    @property
    def names_the_device(self) -> bool:
        """Whether the check targets ``{device_ip}`` (so probing it needs the device's address)."""
        return DEVICE_IP in (self.url or "") or DEVICE_IP in (self.host or "")

    def with_device(self, device_ip: str | None) -> CheckSpec:
        """The check with ``{device_ip}`` filled in (server-side probes)."""
        ip = device_ip or "0.0.0.0"  # noqa: S104 - an unreachable placeholder, never bound
        host = f"[{ip}]" if ":" in ip else ip
        return CheckSpec(
            **(
                self.__dict__
                | {
                    "url": self.url.replace("{device_ip}", host) if self.url else None,
                    "host": self.host.replace("{device_ip}", ip) if self.host else None,
                }
            )
        )


def parse_checks(config: Any, *, field_name: str = "health_check_config") -> list[CheckSpec]:
    """Validate a policy's checks; every problem is named with its path."""
    if config is None:
        return []
    raw = config.get("checks") if isinstance(config, dict) else config
    path = f"{field_name}.checks" if isinstance(config, dict) else field_name
    if not isinstance(raw, list):
        raise InvalidInput.one(path, "must be a list of checks")
    problems: list[Problem] = []
    checks = [_parse_check(item, f"{path}[{i}]", i, problems) for i, item in enumerate(raw)]
    names = [c.name for c in checks if c is not None]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(Problem(path, f"two checks are named {duplicated[0]!r}"))
    if problems:
        raise InvalidInput(problems)
    return [c for c in checks if c is not None]


def default_checks(soak_seconds: float) -> list[CheckSpec]:
    return [
        CheckSpec(
            name="containers-running",
            type="container_running",
            retries=0,
            min_uptime_seconds=soak_seconds,
        )
    ]


def effective_checks(enabled: bool, config: Any, soak_seconds: float) -> list[CheckSpec]:
    if not enabled:
        return []
    checks = parse_checks(config)
    if all(check.type == "prometheus" for check in checks):  # a batch's analysis judges no device
        return default_checks(soak_seconds) + checks
    return checks


def _parse_check(item: Any, path: str, index: int, problems: list[Problem]) -> CheckSpec | None:
    if not isinstance(item, dict):
        problems.append(Problem(path, "must be an object"))
        return None
    kind = item.get("type")
    if kind not in CHECK_TYPES:
        problems.append(Problem(f"{path}.type", f"must be one of {', '.join(CHECK_TYPES)}"))
        return None
    before = len(problems)
    for unknown in sorted(set(item) - FIELDS[kind]):
        problems.append(Problem(f"{path}.{unknown}", f"is not a field of a {kind} check"))
    timeout = _number(item, "timeout_seconds", 30, path, problems, minimum=0.1, maximum=3600)
    retries = int(_number(item, "retries", 3, path, problems, minimum=0, maximum=20))
    interval = _number(item, "interval_seconds", 10, path, problems, minimum=0, maximum=3600)
    run_on = item.get("run_on", "server" if kind in SERVER_JUDGED else "device")
    if run_on not in RUN_ON:
        problems.append(Problem(f"{path}.run_on", "must be device, server or device_or_server"))
    elif kind in SERVER_JUDGED and run_on != "server":
        problems.append(Problem(f"{path}.run_on", f"a {kind} check is judged by fleetwave: server"))
    elif run_on != "device" and kind not in ("http", "tcp", *SERVER_JUDGED):
        problems.append(Problem(f"{path}.run_on", f"a {kind} check runs on the device"))
    spec = CheckSpec(
        name=str(item.get("name") or f"{kind}-{index + 1}"),
        type=kind,
        run_on=run_on if run_on in RUN_ON else "device",
        timeout_seconds=timeout,
        retries=retries,
        interval_seconds=interval,
    )
    details = {
        "http": _http,
        "tcp": _tcp,
        "container_running": _container,
        "custom": _custom,
        "metric": _metric,
        "prometheus": _prometheus,
    }[kind](item, path, problems)
    if len(problems) > before:
        return None
    check = CheckSpec(**(spec.__dict__ | details))
    if check.run_on == "device_or_server" and not check.names_the_device:
        where = "url" if kind == "http" else "host"
        problems.append(
            Problem(
                f"{path}.{where}",
                "a check that may run from the server must name the device as {device_ip}",
            )
        )
        return None
    return check


def _http(item: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    url = item.get("url")
    if not isinstance(url, str) or not url:
        problems.append(Problem(f"{path}.url", "an http check needs a url"))
        return {}
    parts = urlsplit(url.replace("{device_ip}", "device"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(Problem(f"{path}.url", "must be an http:// or https:// URL"))
    status = item.get("expected_status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        problems.append(Problem(f"{path}.expected_status", "must be an HTTP status (100-599)"))
    body = item.get("body_contains")
    if body is not None and not isinstance(body, str):
        problems.append(Problem(f"{path}.body_contains", "must be a string"))
    return {"url": url, "expected_status": status, "body_contains": body}


def _tcp(item: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    host, port = item.get("host", "{device_ip}"), item.get("port")
    if not isinstance(host, str) or not host:
        problems.append(Problem(f"{path}.host", "must be a host name, an address or {device_ip}"))
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.append(Problem(f"{path}.port", "must be a port number (1-65535)"))
    return {"host": host, "port": port}


def _container(item: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    service = item.get("service")
    if service is not None and (not isinstance(service, str) or not service):
        problems.append(Problem(f"{path}.service", "must name a service"))
    uptime = _number(item, "min_uptime_seconds", 0, path, problems, minimum=0, maximum=86400)
    return {"service": service, "min_uptime_seconds": uptime}


def _custom(item: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    command = item.get("command")
    if isinstance(command, str):
        problems.append(Problem(f"{path}.command", "must be a list (program, arguments); no shell"))
        return {}
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        problems.append(Problem(f"{path}.command", "must be a non-empty list of strings"))
        return {}
    if not command[0].startswith("/"):
        problems.append(Problem(f"{path}.command", "the program must be an absolute path"))
    return {"command": tuple(command)}


def _metric(item: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    metric = item.get("metric")
    if not isinstance(metric, str) or not known_metric(metric):
        problems.append(
            Problem(
                f"{path}.metric",
                f"must be one of {', '.join(REPORT_METRICS)} or metrics.<key> (a key of the "
                "report's metrics object)",
            )
        )
    bounds = _bounds(item, path, problems, ("min", "max", "max_increase_percent"))
    if bounds.get("max_increase_percent") is not None and bounds["max_increase_percent"] < 0:
        problems.append(Problem(f"{path}.max_increase_percent", "must be 0 or more"))
    window = _number(item, "window_seconds", 120, path, problems, minimum=1, maximum=3600)
    aggregate = item.get("aggregate", "avg")
    if aggregate not in AGGREGATES:
        problems.append(Problem(f"{path}.aggregate", f"must be one of {', '.join(AGGREGATES)}"))
    reports = _number(item, "min_reports", 3, path, problems, minimum=1, maximum=10000)
    return bounds | {
        "metric": metric,
        "window_seconds": window,
        "aggregate": aggregate,
        "min_reports": int(reports),
    }


def _prometheus(item: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    url = item.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(Problem(f"{path}.url", "must be an http:// or https:// URL of Prometheus"))
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        problems.append(Problem(f"{path}.query", "a prometheus check needs a query (PromQL)"))
    return _bounds(item, path, problems, ("min", "max")) | {"url": url, "query": query}


def known_metric(name: str) -> bool:
    """A report field, or ``metrics.<key>`` with a key a report may carry."""
    if name in REPORT_METRICS:
        return True
    key = name.removeprefix(METRICS_PREFIX)
    return name.startswith(METRICS_PREFIX) and metric_key_problem(key) is None


def metric_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a key of a report's ``metrics`` object, or None."""
    if not 0 < len(key) <= 64:
        return "must be 1-64 characters"
    if not all(c.isascii() and (c.isalnum() or c in "_-.:") for c in key):
        return "may hold only letters, digits and _ - . :"
    return None


def _bounds(
    item: dict[str, Any], path: str, problems: list[Problem], names: tuple[str, ...]
) -> dict[str, Any]:
    """The bounds given (at least one; ``min`` not above ``max``)."""
    found: dict[str, Any] = {}
    for name in names:
        value = item.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(f"{path}.{name}", "must be a number"))
        elif not -1e300 < value < 1e300:  # no NaN or infinity; a huge int would not convert
            problems.append(Problem(f"{path}.{name}", "must be a finite number"))
        else:
            found[name] = float(value)
    if not found and not any(item.get(name) is not None for name in names):
        problems.append(Problem(path, f"needs a bound: {' or '.join(names)}"))
    low, high = found.get("min"), found.get("max")
    if low is not None and high is not None and low > high:
        problems.append(Problem(f"{path}.min", f"{low:g} is above max {high:g}: no value passes"))
    return found


def _number(
    item: dict[str, Any],
    name: str,
    default: float,
    path: str,
    problems: list[Problem],
    *,
    minimum: float,
    maximum: float,
) -> float:
    value = item.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(Problem(f"{path}.{name}", "must be a number"))
        return default
    if not minimum <= value <= maximum:
        problems.append(Problem(f"{path}.{name}", f"must be between {minimum:g} and {maximum:g}"))
        return default
    return float(value)


# --- verdicts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One attempt of one check, as the agent reports it or the server measured it."""

    check: str
    passed: bool
    at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "passed" | "failed" | "pending" | "timeout"
    details: dict[str, Any] = field(default_factory=dict)


def verdict(
    checks: Sequence[CheckSpec],
    results: Sequence[CheckResult],
    running_since: datetime,
    now: datetime,
    timeout: timedelta,
    metrics: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
) -> Verdict:
    """All checks passed → passed; one failed more than its retries → failed; no verdict by
    ``running_since + timeout`` → timeout; otherwise still pending.

    ``container_running`` checks pass by time: the device has kept the new containers up
    (a crash would already have failed it, from its report) for ``min_uptime_seconds``.
    ``metric`` checks come judged (``metrics``: name → (state, details), from
    ``domain.metric_checks``); one that is ``unknown`` (too few reports) ends the wait as a
    timeout does.
    """
    by_check: dict[str, list[CheckResult]] = {}
    for result in sorted(results, key=lambda r: r.at):
        if result.at >= running_since:
            by_check.setdefault(result.check, []).append(result)
    details: dict[str, Any] = {}
    pending: list[str] = []
    unknown: list[str] = []
    for check in checks:
        if check.type == "metric":
            judged, seen = (metrics or {}).get(check.name, ("pending", {"type": "metric"}))
            details[check.name] = seen
            if judged == "failed":
                return Verdict("failed", details | {"failed_check": check.name})
            if judged != "passed":
                (unknown if judged == "unknown" else pending).append(check.name)
            continue
        if check.type == "container_running":
            uptime = (now - running_since).total_seconds()
            ok = uptime >= (check.min_uptime_seconds or 0)
            details[check.name] = {"type": check.type, "passed": ok, "uptime_seconds": uptime}
            if not ok:
                pending.append(check.name)
            continue
        attempts = by_check.get(check.name, [])
        failures = [a for a in attempts if not a.passed]
        state: dict[str, Any] = {
            "type": check.type,
            "attempts": len(attempts),
            "passed": any(a.passed for a in attempts),
        }
        if failures:
            state["last_error"] = failures[-1].detail
        details[check.name] = state
        if state["passed"]:
            continue
        if len(failures) > check.retries:
            return Verdict("failed", details | {"failed_check": check.name})
        pending.append(check.name)
    if unknown:
        return Verdict("timeout", details | {"waiting_for": unknown + pending, "unknown": unknown})
    if not pending:
        return Verdict("passed", details)
    if now >= running_since + timeout:
        return Verdict("timeout", details | {"waiting_for": pending})
    return Verdict("pending", details)


def results_from_json(data: Mapping[str, Any] | None) -> list[CheckResult]:
    """Results as kept in ``health_check_details["results"]``."""
    if not data:
        return []
    return [
        CheckResult(r["check"], bool(r["passed"]), datetime.fromisoformat(r["at"]), r.get("detail"))
        for r in data.get("results", [])
    ]


def results_to_json(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    return [
        {"check": r.check, "passed": r.passed, "at": r.at.isoformat(), "detail": r.detail}
        for r in results
    ]
