"""A device's progress through a rollout, read from its reports (DESIGN.md §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleetwave.domain.device_progress import (
    FAILED_NEW,
    FAILED_OLD,
    PULLING,
    RUNNING_NEW,
    RUNNING_OLD,
    UPDATING,
    AfterFailure,
    ServiceReport,
    after_failure,
    counter_changes,
    failure_message,
    next_status,
    observe,
    reported_services,
    reported_tag,
    retry_backoff,
)
from fleetwave.domain.vocabulary import DEVICE_ROLLOUT_STATUSES

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

REPO = "registry.example.com/acme/app"
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64
NEW = f"{REPO}:1.2.0@{DIGEST}"  # the rollout pins the digest
NEW_TAG_ONLY = f"{REPO}:1.2.0"
NEW_OTHER_DIGEST = f"{REPO}:1.2.0@{OTHER_DIGEST}"
NEW_TAGLESS = f"{REPO}@{DIGEST}"  # how Podman reports a container made from NEW
PINNED_OLD = f"{REPO}:1.1.0@{OTHER_DIGEST}"
OLD_WEB = f"{REPO}:1.1.0"
OLD_WORKER = f"{REPO}:1.0.9"

WEB, WORKER, DB = "1001/web", "1001/worker", "1002/db"
ONE = {WEB: OLD_WEB}
TWO = {WEB: OLD_WEB, WORKER: OLD_WORKER}


def svc(image: str | None, state: str, error: str | None = None) -> ServiceReport:
    return ServiceReport(image=image, state=state, error=error)


# --- observe ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("services", "old_images", "expected"),
    [
        # one service
        pytest.param({WEB: svc(OLD_WEB, "pulling")}, ONE, PULLING, id="pulling"),
        pytest.param({WEB: svc(OLD_WEB, "downloading")}, ONE, PULLING, id="downloading"),
        pytest.param({WEB: svc(OLD_WEB, "pull")}, ONE, PULLING, id="pull"),
        pytest.param({WEB: svc(NEW, "installing")}, ONE, UPDATING, id="installing the new image"),
        pytest.param({WEB: svc(NEW, "starting")}, ONE, UPDATING, id="starting the new image"),
        pytest.param({WEB: svc(NEW, "created")}, ONE, UPDATING, id="created on the new image"),
        pytest.param(
            {WEB: svc(NEW, "restarting")}, ONE, FAILED_NEW, id="restarting: it exited, a crash"
        ),
        pytest.param({WEB: svc(NEW, "stopped")}, ONE, FAILED_NEW, id="stopped (Podman's word)"),
        pytest.param({WEB: svc(OLD_WEB, "stopping")}, ONE, UPDATING, id="old image stopping"),
        pytest.param({WEB: svc(NEW, "")}, ONE, UPDATING, id="new image, no state yet"),
        pytest.param({WEB: svc(NEW, "running")}, ONE, RUNNING_NEW, id="running the new image"),
        pytest.param({WEB: svc(NEW, "healthy")}, ONE, RUNNING_NEW, id="healthy on the new image"),
        pytest.param({WEB: svc(NEW, "up")}, ONE, RUNNING_NEW, id="up on the new image"),
        pytest.param({WEB: svc(NEW, "exited")}, ONE, FAILED_NEW, id="exited on the new image"),
        pytest.param({WEB: svc(NEW, "dead")}, ONE, FAILED_NEW, id="dead on the new image"),
        pytest.param({WEB: svc(NEW, "stopped")}, ONE, FAILED_NEW, id="stopped (Podman's exited)"),
        pytest.param({WEB: svc(NEW, "unhealthy")}, ONE, FAILED_NEW, id="unhealthy, new image"),
        pytest.param({WEB: svc(NEW, "start_failed")}, ONE, FAILED_NEW, id="start_failed"),
        pytest.param({WEB: svc(OLD_WEB, "running")}, ONE, RUNNING_OLD, id="running the old image"),
        pytest.param({WEB: svc(OLD_WEB, "exited")}, ONE, FAILED_OLD, id="exited on the old image"),
        pytest.param({WEB: svc(None, "running")}, ONE, None, id="running, image not reported"),
        pytest.param({WEB: svc(f"{REPO}:0.9.0", "running")}, ONE, None, id="some third image"),
        # which image counts as the new one
        pytest.param(
            {WEB: svc(NEW_TAG_ONLY, "running")}, ONE, RUNNING_NEW, id="tag without the digest"
        ),
        pytest.param(
            {WEB: svc(NEW_TAG_ONLY, "exited")}, ONE, FAILED_NEW, id="tag without digest, exited"
        ),
        pytest.param(
            {WEB: svc(NEW_OTHER_DIGEST, "running")}, ONE, None, id="same tag, another digest"
        ),
        pytest.param(
            {WEB: svc(NEW_OTHER_DIGEST, "exited")},
            ONE,
            None,
            id="another digest exiting is not the new image failing",
        ),
        pytest.param(
            {WEB: svc(NEW_TAGLESS, "running")}, ONE, RUNNING_NEW, id="digest without the tag"
        ),
        pytest.param(
            {WEB: svc(NEW_TAGLESS, "exited")}, ONE, FAILED_NEW, id="digest without tag, exited"
        ),
        pytest.param(
            {WEB: svc(f"{REPO}@{OTHER_DIGEST}", "running")}, ONE, None, id="tagless, other digest"
        ),
        pytest.param(
            {WEB: svc(f"{REPO}@{OTHER_DIGEST}", "running")},
            {WEB: PINNED_OLD},
            RUNNING_OLD,
            id="back on a pinned old image, reported without its tag",
        ),
        # services the rollout does not change
        pytest.param({DB: svc(NEW, "running")}, ONE, None, id="unrelated service only"),
        pytest.param({DB: svc(NEW, "exited")}, ONE, None, id="unrelated service failing"),
        pytest.param({}, ONE, None, id="empty report"),
        pytest.param(
            {WEB: svc(NEW, "running"), DB: svc(NEW, "exited")},
            ONE,
            RUNNING_NEW,
            id="an unrelated failure does not count",
        ),
        # several services changed by the rollout
        pytest.param(
            {WEB: svc(NEW, "running"), WORKER: svc(NEW, "running")},
            TWO,
            RUNNING_NEW,
            id="both running the new image",
        ),
        pytest.param(
            {WEB: svc(NEW, "running"), WORKER: svc(OLD_WORKER, "running")},
            TWO,
            UPDATING,
            id="one new, one still old: updating",
        ),
        pytest.param(
            {WEB: svc(NEW, "running"), WORKER: svc(OLD_WORKER, "pulling")},
            TWO,
            PULLING,
            id="one new, the other pulling",
        ),
        pytest.param(
            {WEB: svc(NEW, "running"), WORKER: svc(NEW, "starting")},
            TWO,
            UPDATING,
            id="one running, the other starting",
        ),
        pytest.param(
            {WEB: svc(NEW, "exited"), WORKER: svc(OLD_WORKER, "running")},
            TWO,
            FAILED_NEW,
            id="one failed on the new image",
        ),
        pytest.param(
            {WEB: svc(NEW, "running"), WORKER: svc(NEW, "dead")},
            TWO,
            FAILED_NEW,
            id="one running, the other dead on the new image",
        ),
        pytest.param(
            {WEB: svc(OLD_WEB, "running"), WORKER: svc(OLD_WORKER, "running")},
            TWO,
            RUNNING_OLD,
            id="both back on their own old images",
        ),
        pytest.param(
            {WEB: svc(OLD_WORKER, "running"), WORKER: svc(OLD_WEB, "running")},
            TWO,
            None,
            id="old images swapped are not each one's own",
        ),
        pytest.param(
            {WEB: svc(OLD_WEB, "running"), WORKER: svc(OLD_WORKER, "pulling")},
            TWO,
            PULLING,
            id="one old, the other pulling",
        ),
    ],
)
def test_observe(
    services: dict[str, ServiceReport], old_images: dict[str, str], expected: str | None
) -> None:
    assert observe(services, old_images, NEW) == expected


# --- reported_tag: the tag a device runs, also when its engine dropped it ----------------------


@pytest.mark.parametrize(
    ("services", "old_images", "expected"),
    [
        pytest.param({WEB: svc(NEW, "running")}, ONE, "1.2.0", id="the tag it reports"),
        pytest.param({WEB: svc(f"{REPO}@{DIGEST}", "running")}, ONE, "1.2.0", id="new, tagless"),
        pytest.param(
            {WEB: svc(f"{REPO}@{OTHER_DIGEST}", "running")},
            {WEB: PINNED_OLD},
            "1.1.0",
            id="old, tagless",
        ),
        pytest.param(
            {WEB: svc(f"{REPO}@sha256:{'c' * 64}", "running")}, ONE, None, id="unknown digest"
        ),
        pytest.param({WEB: svc(None, "running")}, ONE, None, id="no image"),
        pytest.param({DB: svc(NEW, "running")}, ONE, None, id="another service"),
    ],
)
def test_reported_tag(
    services: dict[str, ServiceReport], old_images: dict[str, str], expected: str | None
) -> None:
    assert reported_tag(services, old_images, NEW) == expected


# --- next_status over the transition table ----------------------------------------------------

OBSERVATIONS = (PULLING, UPDATING, RUNNING_NEW, FAILED_NEW, RUNNING_OLD, FAILED_OLD)

EXPECTED_TRANSITIONS = {
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


@pytest.mark.parametrize(
    ("status", "observation", "expected"),
    [
        pytest.param(status, observation, target, id=f"{status} + {observation} → {target}")
        for (status, observation), target in EXPECTED_TRANSITIONS.items()
    ],
)
def test_next_status_follows_the_transition_table(
    status: str, observation: str, expected: str
) -> None:
    assert next_status(status, observation) == expected


@pytest.mark.parametrize(
    ("status", "observation"),
    [
        pytest.param(status, observation, id=f"{status} + {observation}")
        for status in DEVICE_ROLLOUT_STATUSES
        for observation in OBSERVATIONS
        if (status, observation) not in EXPECTED_TRANSITIONS
    ],
)
def test_every_other_pair_leaves_the_status_alone(status: str, observation: str) -> None:
    # e.g. no going back from updating to pulling, nothing after completed, a pending device
    # (its batch not started) is not moved by what it happens to run
    assert next_status(status, observation) is None


@pytest.mark.parametrize("status", DEVICE_ROLLOUT_STATUSES)
def test_a_report_that_says_nothing_changes_nothing(status: str) -> None:
    assert next_status(status, None) is None


@pytest.mark.parametrize(
    ("status", "observation", "expected"),
    [
        pytest.param("updating", PULLING, None, id="updating does not go back to pulling"),
        pytest.param("health_checking", RUNNING_NEW, None, id="health_checking waits the soak"),
        pytest.param("completed", FAILED_NEW, None, id="completed stays completed"),
        pytest.param("completed", RUNNING_OLD, None, id="completed, then old image: stays"),
        pytest.param("pending", RUNNING_NEW, None, id="pending: its batch not started"),
        pytest.param("rolled_back", RUNNING_OLD, None, id="rolled back already"),
        pytest.param("failed", RUNNING_NEW, None, id="failed stays failed on the new image"),
        pytest.param("Scheduled", PULLING, None, id="statuses are exact"),
    ],
)
def test_invalid_pairs_return_none(status: str, observation: str, expected: None) -> None:
    assert next_status(status, observation) is expected


@pytest.mark.parametrize(
    ("status", "observation", "expected"),
    [
        pytest.param("failed", RUNNING_OLD, "rolled_back", id="failed, back on its old image"),
        pytest.param("completed", RUNNING_OLD, "rolled_back", id="rolled back by an operator"),
        pytest.param("health_checking", RUNNING_OLD, "rolled_back", id="rolled back mid-check"),
        pytest.param("failed", FAILED_OLD, "rollback_failed", id="the old image fails too"),
        pytest.param("rollback_failed", RUNNING_OLD, "rolled_back", id="recovers later"),
        pytest.param("rollback_failed", FAILED_OLD, None, id="already flagged"),
        pytest.param("failed", RUNNING_NEW, None, id="still on the new image: not yet"),
        pytest.param("failed", None, None, id="nothing said"),
    ],
)
def test_after_a_rollback_the_old_images_decide(
    status: str, observation: str | None, expected: str | None
) -> None:
    assert next_status(status, observation, rollback_requested=True) == expected


def test_without_a_rollback_running_the_old_image_means_nothing() -> None:
    # a scheduled device still runs its old image until it acts on the new target
    assert next_status("scheduled", RUNNING_OLD) is None
    assert next_status("failed", RUNNING_OLD) is None


# --- failures, retries and backoff ------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_count", "max_retries", "expected"),
    [
        pytest.param(
            0, 3, AfterFailure("scheduled", 1, NOW + timedelta(seconds=30)), id="1st retry in 30s"
        ),
        pytest.param(
            1, 3, AfterFailure("scheduled", 2, NOW + timedelta(seconds=60)), id="2nd retry in 60s"
        ),
        pytest.param(
            2, 3, AfterFailure("scheduled", 3, NOW + timedelta(seconds=120)), id="3rd in 120s"
        ),
        pytest.param(3, 3, AfterFailure("failed", 3, None), id="no retries left: failed"),
        pytest.param(0, 0, AfterFailure("failed", 0, None), id="no retries allowed: failed"),
        pytest.param(5, 3, AfterFailure("failed", 5, None), id="past the limit: failed"),
        pytest.param(
            9, 10, AfterFailure("scheduled", 10, NOW + timedelta(minutes=15)), id="capped wait"
        ),
    ],
)
def test_after_failure(retry_count: int, max_retries: int, expected: AfterFailure) -> None:
    assert after_failure(retry_count, max_retries, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        pytest.param(0, timedelta(seconds=30), id="0 (never below the first)"),
        pytest.param(1, timedelta(seconds=30), id="1: 30 s"),
        pytest.param(2, timedelta(seconds=60), id="2: 60 s"),
        pytest.param(3, timedelta(seconds=120), id="3: 120 s"),
        pytest.param(4, timedelta(seconds=240), id="4: 4 min"),
        pytest.param(5, timedelta(seconds=480), id="5: 8 min"),
        pytest.param(6, timedelta(minutes=15), id="6: 16 min capped at 15"),
        pytest.param(7, timedelta(minutes=15), id="7: capped"),
        pytest.param(50, timedelta(minutes=15), id="50: capped"),
    ],
)
def test_retry_backoff_doubles_up_to_15_minutes(attempt: int, expected: timedelta) -> None:
    assert retry_backoff(attempt) == expected


# --- counters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moves", "expected"),
    [
        pytest.param([("pending", "scheduled", 5)], {}, id="pending → scheduled: nothing"),
        pytest.param([("scheduled", "pulling", 2)], {}, id="scheduled → pulling: nothing"),
        pytest.param(
            [("updating", "health_checking", 2)],
            {"updated_devices": 2},
            id="updating → health_checking: updated",
        ),
        pytest.param(
            [("health_checking", "completed", 1)],
            {"healthy_devices": 1},
            id="health_checking → completed: healthy only",
        ),
        pytest.param(
            [("updating", "completed", 1)],
            {"updated_devices": 1, "healthy_devices": 1},
            id="updating → completed (no health check): both",
        ),
        pytest.param(
            [("skipped", "completed", 1)],
            {"updated_devices": 1, "healthy_devices": 1},
            id="skipped → completed: both",
        ),
        pytest.param(
            [("health_checking", "failed", 1)],
            {"updated_devices": -1, "failed_devices": 1},
            id="health_checking → failed: no longer updated, failed",
        ),
        pytest.param(
            [("scheduled", "failed", 3)], {"failed_devices": 3}, id="scheduled → failed (timeout)"
        ),
        pytest.param(
            [("failed", "rolled_back", 1)],
            {"failed_devices": -1, "rolled_back_devices": 1},
            id="failed → rolled_back: moves the count",
        ),
        pytest.param(
            [("rollback_failed", "rolled_back", 1)],
            {"failed_devices": -1, "rolled_back_devices": 1},
            id="rollback_failed → rolled_back: moves the count",
        ),
        pytest.param(
            [("failed", "rollback_failed", 1)], {}, id="failed → rollback_failed: still failed"
        ),
        pytest.param(
            [("failed", "scheduled", 2)], {"failed_devices": -2}, id="retry of failed devices"
        ),
        pytest.param(
            [("rolled_back", "scheduled", 1)],
            {"rolled_back_devices": -1},
            id="retry of a rolled back device",
        ),
        pytest.param([("scheduled", "skipped", 4)], {}, id="scheduled → skipped: nothing"),
        pytest.param([("completed", "completed", 4)], {}, id="no move: nothing"),
        pytest.param([("updating", "health_checking", 0)], {}, id="no device: nothing"),
        pytest.param([], {}, id="no moves"),
        pytest.param(
            [("updating", "health_checking", 3), ("health_checking", "completed", 2)],
            {"updated_devices": 3, "healthy_devices": 2},
            id="moves add up",
        ),
        pytest.param(
            [("scheduled", "failed", 1), ("failed", "rolled_back", 1)],
            {"rolled_back_devices": 1},
            id="changes that cancel out are left out",
        ),
    ],
)
def test_counter_changes(moves: list[tuple[str, str, int]], expected: dict[str, int]) -> None:
    assert counter_changes(moves) == expected


# --- reading a report -------------------------------------------------------------------------


def test_reported_services_are_keyed_by_app_id_and_service_name() -> None:
    apps: dict[str, Any] = {
        "1001": {
            "appId": 1001,
            "services": [
                {"serviceName": "web", "imageName": NEW, "status": "Running"},
                {"serviceName": "worker", "config": {"image": OLD_WORKER}, "status": "EXITED"},
            ],
        },
        "1002": {"services": [{"serviceId": 7, "imageName": "postgres:16", "status": "running"}]},
    }
    assert reported_services(apps) == {
        "1001/web": ServiceReport(image=NEW, state="running"),
        "1001/worker": ServiceReport(image=OLD_WORKER, state="exited"),
        "1002/7": ServiceReport(image="postgres:16", state="running"),
    }


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param(
            {"serviceName": "web", "imageName": NEW, "status": "exited", "error": "OOM"},
            ServiceReport(NEW, "exited", "OOM"),
            id="error",
        ),
        pytest.param(
            {"serviceName": "web", "imageName": NEW, "status": "dead", "errorMessage": "no"},
            ServiceReport(NEW, "dead", "no"),
            id="errorMessage",
        ),
        pytest.param(
            {"serviceName": "web", "imageName": NEW, "status": "exited", "error": 137},
            ServiceReport(NEW, "exited", "137"),
            id="error code as text",
        ),
        pytest.param(
            {"serviceName": "web", "imageName": NEW},
            ServiceReport(NEW, ""),
            id="no status: empty state",
        ),
        pytest.param(
            {"serviceName": "web", "status": "Pulling"},
            ServiceReport(None, "pulling"),
            id="no image yet",
        ),
        pytest.param(
            {"serviceName": "web", "imageName": "", "config": {"image": NEW}, "status": "up"},
            ServiceReport(NEW, "up"),
            id="empty imageName: config.image",
        ),
    ],
)
def test_reported_service_fields(service: dict[str, Any], expected: ServiceReport) -> None:
    assert reported_services({"1001": {"services": [service]}}) == {"1001/web": expected}


@pytest.mark.parametrize(
    "apps",
    [
        pytest.param({}, id="no apps"),
        pytest.param({"1001": "not an app"}, id="app not an object"),
        pytest.param({"1001": {}}, id="app without services"),
        pytest.param({"1001": {"services": None}}, id="services null"),
        pytest.param({"1001": {"services": ["web", 3, None]}}, id="services not objects"),
    ],
)
def test_malformed_reports_give_no_services(apps: dict[str, Any]) -> None:
    assert reported_services(apps) == {}


# --- an agent that reports container states only (the iotistic agent) -------------------------


def iotistic_service(image: str, state: str) -> dict[str, Any]:
    """A service as the iotistic agent's ``getCurrentState`` reports it: Docker's or Podman's
    state of the container, lowercased, never ``pulling`` or ``updating``."""
    return {
        "serviceId": 1,
        "serviceName": "web",
        "imageName": image,
        "appId": 1001,
        "appName": "web",
        "containerId": "4f2a" * 16,
        "status": state,
        "config": {"image": image, "ports": ["8080:80"]},
    }


@pytest.mark.parametrize(
    ("status", "image", "state", "expected"),
    [
        pytest.param("scheduled", OLD_WEB, "running", None, id="told, still on the old image"),
        pytest.param(
            "scheduled", NEW, "running", "health_checking", id="running the new image: updated"
        ),
        pytest.param(
            "scheduled", NEW_TAG_ONLY, "running", "health_checking", id="the tag, not the digest"
        ),
        pytest.param("scheduled", NEW, "created", "updating", id="created, not started yet"),
        pytest.param("scheduled", NEW, "exited", "failure", id="exited at once"),
        pytest.param("scheduled", NEW, "restarting", "failure", id="crash-looping at once"),
        pytest.param("scheduled", NEW, "dead", "failure", id="dead"),
        pytest.param("health_checking", NEW, "running", None, id="still running: the soak"),
        pytest.param("health_checking", NEW, "exited", "failure", id="exited during the soak"),
        pytest.param("health_checking", NEW, "restarting", "failure", id="restarted by its policy"),
        pytest.param("health_checking", NEW, "paused", None, id="paused: no verdict from it"),
    ],
)
def test_container_states_alone_move_a_device(
    status: str, image: str, state: str, expected: str | None
) -> None:
    apps = {"1001": {"appId": 1001, "services": [iotistic_service(image, state)]}}
    assert next_status(status, observe(reported_services(apps), ONE, NEW)) == expected


def test_a_report_read_then_observed() -> None:
    apps = {"1001": {"services": [{"serviceName": "web", "imageName": NEW, "status": "Exited"}]}}
    assert observe(reported_services(apps), ONE, NEW) == FAILED_NEW


@pytest.mark.parametrize(
    ("services", "old_images", "expected"),
    [
        pytest.param(
            {WEB: svc(NEW, "exited", "exit code 137: OOM killed")},
            ONE,
            "1001/web is exited: exit code 137: OOM killed",
            id="names the service, its state and the error",
        ),
        pytest.param(
            {WEB: svc(NEW, "dead")}, ONE, "1001/web is dead", id="no error text: state only"
        ),
        pytest.param(
            {WEB: svc(NEW, "running"), WORKER: svc(NEW, "crashed", "segfault")},
            TWO,
            "1001/worker is crashed: segfault",
            id="the failing one of two",
        ),
        pytest.param(
            {DB: svc(NEW, "exited", "not ours"), WEB: svc(NEW, "running")},
            ONE,
            "the new image failed",
            id="an unrelated failure is not named",
        ),
        pytest.param({}, ONE, "the new image failed", id="nothing to name"),
        pytest.param(
            {WEB: svc(NEW, "restarting")},
            ONE,
            "1001/web is restarting (it exited; its restart policy starts it again)",
            id="restarting is explained",
        ),
    ],
)
def test_failure_message(
    services: dict[str, ServiceReport], old_images: dict[str, str], expected: str
) -> None:
    assert failure_message(services, old_images) == expected
