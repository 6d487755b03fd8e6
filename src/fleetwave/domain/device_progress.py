"""A device's progress through a rollout, read from what it reports (DESIGN.md §4).

A report names what each service runs and in which state. Against the rollout's record of
the device (the services it changes, their old images, the new image) that becomes one
observation — pulling, updating, running the new image, the new image failing, running the
old images again — and the transition table says where the device's status goes.

Container states alone are enough: an agent that never says ``pulling`` or ``updating`` (the
iotistic agent reports Docker's or Podman's state of each container) moves a device from
``scheduled`` straight to ``health_checking`` when the new image runs, and to a failure when
it has exited. A container the engine is ``restarting`` has exited and is being started again
by its restart policy (``restart: always``, the iotistic format's usual one): a crash, even if
the next report catches it ``running`` for a moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleetwave.domain.images import same_image, try_parse_image
from fleetwave.domain.target_state import service_image, service_key

PULLING_WORDS = {"pulling", "downloading", "download", "pull"}
UPDATING_WORDS = {"updating", "installing", "starting", "created", "stopping"}
RUNNING_WORDS = {"running", "up", "healthy", "idle"}
FAILED_WORDS = {
    "exited",
    "stopped",  # Podman's word for a container whose process ended (Docker says "exited")
    "restarting",  # the engine's restart policy starts it again after it exited
    "dead",
    "failed",
    "error",
    "crashed",
    "pull_failed",
    "start_failed",
    "unhealthy",
}

PULLING, UPDATING, RUNNING_NEW, FAILED_NEW, RUNNING_OLD, FAILED_OLD = (
    "pulling",
    "updating",
    "running_new",
    "failed_new",
    "running_old",
    "failed_old",
)

# (status now, what the device reports) → status next. Failures are resolved by
# ``after_failure``: a retry while retries are left, else ``failed``.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("scheduled", PULLING): "pulling",
    ("scheduled", UPDATING): "updating",
    ("pulling", UPDATING): "updating",
    ("scheduled", RUNNING_NEW): "health_checking",
    ("pulling", RUNNING_NEW): "health_checking",
    ("updating", RUNNING_NEW): "health_checking",
    ("skipped", RUNNING_NEW): "completed",
    ("scheduled", FAILED_NEW): "failure",
    ("pulling", FAILED_NEW): "failure",
    ("updating", FAILED_NEW): "failure",
    ("health_checking", FAILED_NEW): "failure",
}

# Once a device was sent back to its old images: where its reports take it, from any status.
AFTER_ROLLBACK = {RUNNING_OLD: "rolled_back", FAILED_OLD: "rollback_failed"}


@dataclass(frozen=True)
class ServiceReport:
    image: str | None
    state: str  # lowercased "status" the device gave
    error: str | None = None


def reported_services(apps: Mapping[str, Any]) -> dict[str, ServiceReport]:
    """The services of a report's ``apps``, keyed like a rollout's ``old_images``."""
    found = {}
    for app_id, app in apps.items():
        if not isinstance(app, dict):
            continue
        for service in app.get("services") or []:
            if isinstance(service, dict):
                error = service.get("error") or service.get("errorMessage")
                found[service_key(app_id, service)] = ServiceReport(
                    image=service_image(service),
                    state=str(service.get("status") or "").lower(),
                    error=str(error) if error else None,
                )
    return found


def observe(
    services: Mapping[str, ServiceReport], old_images: Mapping[str, str], new_image: str
) -> str | None:
    """What a report says about the rollout's services on this device, if anything."""
    mine = [services[key] for key in old_images if key in services]
    if not mine:
        return None
    on_new = [s for s in mine if same_image(s.image, new_image)]
    if on_new and any(s.state in FAILED_WORDS for s in on_new):
        return FAILED_NEW
    if len(on_new) == len(mine) and all(s.state in RUNNING_WORDS for s in mine):
        return RUNNING_NEW
    on_old = all(same_image(s.image, old_images[k]) for k, s in _keyed(services, old_images))
    if on_old and any(s.state in FAILED_WORDS for s in mine):
        return FAILED_OLD
    if on_old and all(s.state in RUNNING_WORDS for s in mine):
        return RUNNING_OLD
    if any(s.state in PULLING_WORDS for s in mine):
        return PULLING
    if any(s.state in UPDATING_WORDS for s in mine) or on_new:
        return UPDATING
    return None


def reported_tag(
    services: Mapping[str, ServiceReport], old_images: Mapping[str, str], new_image: str
) -> str | None:
    """The tag the device runs, by its first service the rollout changes. An engine may
    report a pinned image without its tag (``repo@sha256:…``): it is then the tag of the
    new or old image it is the same as, if either."""
    image = next((services[k].image for k in old_images if k in services), None)
    ref = try_parse_image(image) if image else None
    if image is None or ref is None or ref.tag is not None:
        return ref.tag if ref is not None else None
    same = next((i for i in (new_image, *old_images.values()) if same_image(image, i)), None)
    same_ref = try_parse_image(same) if same is not None else None
    return same_ref.tag if same_ref is not None else None


def next_status(
    status: str, observation: str | None, rollback_requested: bool = False
) -> str | None:
    if observation is None:
        return None
    if rollback_requested:
        after = AFTER_ROLLBACK.get(observation)
        return after if after != status else None
    return TRANSITIONS.get((status, observation))


def failure_message(services: Mapping[str, ServiceReport], old_images: Mapping[str, str]) -> str:
    for key, service in _keyed(services, old_images):
        if service.state in FAILED_WORDS:
            detail = f": {service.error}" if service.error else ""
            why = " (it exited; its restart policy starts it again)"
            return f"{key} is {service.state}{why if service.state == 'restarting' else ''}{detail}"
    return "the new image failed"


def retry_backoff(attempt: int) -> timedelta:
    """Wait before attempt ``attempt`` (1, 2, …): 30 s, 1 min, 2 min, … at most 15 min."""
    seconds = 30 * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=min(seconds, 15 * 60))


@dataclass(frozen=True)
class AfterFailure:
    status: str  # "scheduled" (a retry) or "failed"
    retry_count: int
    next_attempt_at: datetime | None


def after_failure(retry_count: int, max_retries: int, now: datetime) -> AfterFailure:
    if retry_count < max_retries:
        attempt = retry_count + 1
        return AfterFailure("scheduled", attempt, now + retry_backoff(attempt))
    return AfterFailure("failed", retry_count, None)


# The rollout's counters, by the device statuses they count (kept in step with every change).
COUNTED = {
    "updated_devices": ("health_checking", "completed"),
    "healthy_devices": ("completed",),
    "failed_devices": ("failed", "rollback_failed"),
    "rolled_back_devices": ("rolled_back",),
}


def counter_changes(moves: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """How the counters change when ``n`` devices go from one status to another."""
    changes = dict.fromkeys(COUNTED, 0)
    for before, after, n in moves:
        for counter, statuses in COUNTED.items():
            changes[counter] += n * ((after in statuses) - (before in statuses))
    return {k: v for k, v in changes.items() if v}


def _keyed(
    services: Mapping[str, ServiceReport], old_images: Mapping[str, str]
) -> list[tuple[str, ServiceReport]]:
    return [(key, services[key]) for key in old_images if key in services]
