"""A device's services, target against running: what each service should run (its target
state) beside what it last reported running, and a word for how the two compare.

The device page and ``fleetwave devices show`` both show this table; the comparison is the
engine's own (:func:`fleetwave.domain.images.same_image`: a pinned target reported back as
``repo@sha256:…`` is the same image).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleetwave.domain.device_progress import (
    FAILED_WORDS,
    PULLING_WORDS,
    RUNNING_WORDS,
    UPDATING_WORDS,
)
from fleetwave.domain.images import same_image
from fleetwave.domain.target_state import service_image, service_key

# How a service's running state compares with its target.
AS_TARGETED = "as targeted"  # the target's image, running
CHANGING = "changing"  # pulling, starting: on its way
NOT_RUNNING = "not running"  # the target's image, but exited, crashed…
DIFFERENT = "different image"  # runs another image than its target names
NOT_REPORTED = "not reported"  # in the target, absent from the last report
NOT_TARGETED = "not in the target"  # reported, but no longer (or never) targeted


@dataclass(frozen=True)
class ServiceState:
    service: str  # "<appId>/<serviceName>", as a rollout's old_images name it
    target: str | None
    running: str | None
    status: str | None  # as the device reported it
    verdict: str

    @property
    def settled(self) -> bool:
        return self.verdict == AS_TARGETED


def compare_services(
    target_apps: Mapping[str, Any] | None, current_apps: Mapping[str, Any] | None
) -> list[ServiceState]:
    """Every service of the target and of the last report, target order first."""
    targets = _services(target_apps)
    reported = _services(current_apps)
    rows = []
    for key in [*targets, *(k for k in reported if k not in targets)]:
        target = targets[key]["image"] if key in targets else None
        found = reported.get(key)
        running = found["image"] if found else None
        status = found["status"] if found else None
        rows.append(ServiceState(key, target, running, status, _verdict(target, found)))
    return rows


def _verdict(target: str | None, found: Mapping[str, Any] | None) -> str:
    if found is None:
        return NOT_REPORTED
    if target is None:
        return NOT_TARGETED
    word = (found["status"] or "").lower()
    if word in PULLING_WORDS or word in UPDATING_WORDS:
        return CHANGING
    if not same_image(found["image"], target):
        return DIFFERENT
    if word in FAILED_WORDS:
        return NOT_RUNNING
    return AS_TARGETED if word in RUNNING_WORDS or not word else NOT_RUNNING


def _services(apps: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for app_id, app in (apps or {}).items():
        if not isinstance(app, Mapping):
            continue
        for service in app.get("services") or []:
            if isinstance(service, Mapping):
                status = service.get("status")
                found[service_key(app_id, service)] = {
                    "image": service_image(service),
                    "status": str(status) if status is not None else None,
                }
    return found
