"""Where each of a rollout's health checks runs for one device, or why it cannot run there.

A check runs on the device only if the device's agent declares that it runs that kind
(``domain.capabilities``); the iotistic agent declares nothing and never posts a result, so a
device-side check would fail it on the health timeout for want of an answer. Instead:

| check | agent runs the type | agent does not |
|---|---|---|
| ``container_running`` | judged from reports | judged from reports |
| ``run_on: device`` | on the device | not runnable |
| ``run_on: device_or_server`` | on the device | fleetwave probes ``{device_ip}`` |
| ``run_on: server`` | fleetwave probes ``{device_ip}`` | fleetwave probes ``{device_ip}`` |

A probe of ``{device_ip}`` needs the address the device reported; without one the check is
not runnable either. A device is judged on the checks that can run; when none of its checks
can, on the default check (its new containers stay up for the soak period), never on a
timeout waiting for results nobody will send. The policy page counts the devices a policy
covers that cannot run each check (:func:`coverage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from fleetwave.domain.capabilities import runs_on_device
from fleetwave.domain.health import CheckSpec, default_checks

DEVICE, SERVER, REPORTS = "device", "server", "reports"


@dataclass(frozen=True)
class NotRunnable:
    """Why nobody can run a check for a device: its agent does not run the type (and the
    check may not be probed from the server instead), or a probe needs an address it never
    reported."""

    check_type: str
    no_agent: bool = False
    no_address: bool = False

    def reason(self, *, devices: int = 1) -> str:
        one = devices == 1
        parts = []
        if self.no_agent:
            whose = "its agent does" if one else "their agent does"
            parts.append(f"{whose} not run {self.check_type} checks")
        if self.no_address:
            who = "it has" if one else "they have"
            parts.append(f"{who} reported no address to probe")
        return " and ".join(parts)


def place(check: CheckSpec, capabilities: frozenset[str], has_address: bool) -> str | NotRunnable:
    """Who runs ``check`` for a device: ``device``, ``server`` or ``reports``; or why nobody
    can."""
    if check.type in ("container_running", "metric"):
        return REPORTS
    probe = has_address or not check.names_the_device
    if check.run_on == "server":
        return SERVER if probe else NotRunnable(check.type, no_address=True)
    if runs_on_device(check.type, capabilities):
        return DEVICE
    if check.run_on == "device_or_server":
        return SERVER if probe else NotRunnable(check.type, no_agent=True, no_address=True)
    return NotRunnable(check.type, no_agent=True)


@dataclass(frozen=True)
class Placement:
    """A rollout's checks for one device, sorted by who runs them."""

    device: tuple[CheckSpec, ...] = ()
    server: tuple[CheckSpec, ...] = ()
    reports: tuple[CheckSpec, ...] = ()
    not_runnable: Mapping[str, str] = field(default_factory=dict)  # check name → why

    def judged(self, soak: timedelta) -> list[CheckSpec]:
        """The checks the device's verdict is made of: those that run, or, when none can, the
        default (its new containers stay up for ``soak``)."""
        runnable = [*self.device, *self.server, *self.reports]
        if runnable or not self.not_runnable:
            return runnable
        return default_checks(soak.total_seconds())


def placement(
    checks: Sequence[CheckSpec], capabilities: Iterable[str], has_address: bool
) -> Placement:
    sorted_out: dict[str, list[CheckSpec]] = {DEVICE: [], SERVER: [], REPORTS: []}
    not_runnable: dict[str, str] = {}
    declared = frozenset(capabilities)
    for check in device_checks(checks):
        where = place(check, declared, has_address)
        if isinstance(where, NotRunnable):
            not_runnable[check.name] = where.reason()
        else:
            sorted_out[where].append(check)
    return Placement(
        tuple(sorted_out[DEVICE]),
        tuple(sorted_out[SERVER]),
        tuple(sorted_out[REPORTS]),
        not_runnable,
    )


def device_checks(checks: Sequence[CheckSpec]) -> list[CheckSpec]:
    """The checks that judge each device (a ``prometheus`` analysis judges a whole batch)."""
    return [check for check in checks if check.type != "prometheus"]


# --- what a policy's devices can run ----------------------------------------------------------


@dataclass(frozen=True)
class DeviceGroup:
    """Devices a policy covers that declare the same capabilities and do or do not have an
    address (one row of a grouped count)."""

    capabilities: frozenset[str]
    has_address: bool
    devices: int


@dataclass(frozen=True)
class CoverageWarning:
    check: str
    type: str
    devices: int  # how many cannot run it
    total: int  # of how many the policy covers
    reasons: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"{self.devices} of {self.total} devices cannot run {self.type} checks "
            f"({self.check}): {'; '.join(self.reasons)}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "type": self.type,
            "devices": self.devices,
            "total": self.total,
            "message": self.message,
        }


def coverage(checks: Sequence[CheckSpec], groups: Sequence[DeviceGroup]) -> list[CoverageWarning]:
    """For each check some covered devices cannot run, how many of them, and why."""
    total = sum(group.devices for group in groups)
    warnings = []
    for check in device_checks(checks):
        unable = 0
        why: dict[NotRunnable, None] = {}  # in order, without repeats
        for group in groups:
            where = place(check, group.capabilities, group.has_address)
            if isinstance(where, NotRunnable):
                unable += group.devices
                why[where] = None
        if unable:
            reasons = tuple(w.reason(devices=unable) for w in why)
            warnings.append(CoverageWarning(check.name, check.type, unable, total, reasons))
    return warnings
