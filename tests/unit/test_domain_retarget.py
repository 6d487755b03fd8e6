"""Moving a target state's services to a new version, and putting them back (a rollback)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleetwave.domain.target_state import restore, retarget, service_key

REPO = "docker.io/iotistic/myapp"
DIGEST = "sha256:" + "0123456789abcdef" * 4
OLD_DIGEST = "sha256:" + "fedcba9876543210" * 4


def svc(service_id: int, name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {
        "serviceId": service_id,
        "serviceName": name,
        "imageName": image,
        "config": {"image": image, "ports": ["8080:80"], "environment": {"MODE": "prod"}},
        **extra,
    }


def a_fleet_target() -> dict[str, Any]:
    return {
        "1001": {
            "appId": 1001,
            "appName": "web",
            "services": [
                svc(1, "app", "iotistic/myapp:v1", labels={"team": "edge"}),
                svc(2, "worker", "docker.io/iotistic/myapp:v1"),
                svc(3, "db", "postgres:16"),
            ],
        },
        "1002": {
            "appId": 1002,
            "appName": "edge",
            "extra": {"kept": True},
            "services": [
                svc(1, "agent", f"index.docker.io/iotistic/myapp:v1.5@{OLD_DIGEST}"),
                svc(2, "proxy", "ghcr.io/iotistic/myapp:v1"),
                svc(3, "lookalike", "iotistic/myapp-extra:v1"),
                svc(4, "nested", "iotistic/myapp/sub:v1"),
            ],
        },
    }


def images(apps: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(imageName, config.image) of every service, keyed like a rollout keys them."""
    return {
        service_key(app_id, s): (s.get("imageName"), s.get("config", {}).get("image"))
        for app_id, app in apps.items()
        for s in app["services"]
    }


# --- retarget -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "key", "expected"),
    [
        pytest.param(None, "1001/app", "iotistic/myapp:v2", id="short name"),
        pytest.param(None, "1001/worker", "docker.io/iotistic/myapp:v2", id="docker.io spelling"),
        pytest.param(
            None, "1002/agent", "index.docker.io/iotistic/myapp:v2", id="index spelling, digest"
        ),
        pytest.param(None, "1001/db", "postgres:16", id="other image untouched"),
        pytest.param(None, "1002/proxy", "ghcr.io/iotistic/myapp:v1", id="other registry"),
        pytest.param(None, "1002/lookalike", "iotistic/myapp-extra:v1", id="longer name"),
        pytest.param(None, "1002/nested", "iotistic/myapp/sub:v1", id="deeper path"),
        pytest.param(DIGEST, "1001/app", f"iotistic/myapp:v2@{DIGEST}", id="pinned: short"),
        pytest.param(
            DIGEST,
            "1002/agent",
            f"index.docker.io/iotistic/myapp:v2@{DIGEST}",
            id="pinned: digest replaced",
        ),
        pytest.param(DIGEST, "1001/db", "postgres:16", id="pinned: other image untouched"),
    ],
)
def test_retarget_writes_both_image_fields_of_every_service_running_the_repository(
    digest: str | None, key: str, expected: str
) -> None:
    new_apps, _ = retarget(a_fleet_target(), REPO, "v2", digest)

    assert images(new_apps)[key] == (expected, expected)


@pytest.mark.parametrize(
    "digest",
    [pytest.param(None, id="tag only"), pytest.param(DIGEST, id="pinned")],
)
def test_retarget_reports_each_changed_service_with_its_previous_image(
    digest: str | None,
) -> None:
    _, changed = retarget(a_fleet_target(), REPO, "v2", digest)

    assert changed == {
        "1001/app": "iotistic/myapp:v1",
        "1001/worker": "docker.io/iotistic/myapp:v1",
        "1002/agent": f"index.docker.io/iotistic/myapp:v1.5@{OLD_DIGEST}",
    }


def test_retarget_keeps_everything_but_the_image() -> None:
    new_apps, _ = retarget(a_fleet_target(), REPO, "v2")

    app = new_apps["1001"]["services"][0]
    assert app["labels"] == {"team": "edge"}
    assert app["serviceId"] == 1
    assert app["config"]["ports"] == ["8080:80"]
    assert app["config"]["environment"] == {"MODE": "prod"}
    assert new_apps["1002"]["extra"] == {"kept": True}
    assert new_apps["1002"]["appName"] == "edge"
    assert [s["serviceName"] for s in new_apps["1002"]["services"]] == [
        "agent",
        "proxy",
        "lookalike",
        "nested",
    ]


def test_retarget_leaves_its_input_untouched() -> None:
    apps = a_fleet_target()
    before = copy.deepcopy(apps)

    retarget(apps, REPO, "v2", DIGEST)

    assert apps == before


@pytest.mark.parametrize(
    ("image", "tag", "digest"),
    [
        pytest.param("iotistic/myapp:v2", "v2", None, id="same tag"),
        pytest.param(f"iotistic/myapp:v2@{DIGEST}", "v2", DIGEST, id="same tag and digest"),
        pytest.param("docker.io/iotistic/myapp:v2", "v2", None, id="same tag, long spelling"),
    ],
)
def test_a_service_already_on_the_target_is_not_reported_as_changed(
    image: str, tag: str, digest: str | None
) -> None:
    apps = {"1": {"appId": 1, "appName": "a", "services": [svc(1, "app", image)]}}

    new_apps, changed = retarget(apps, REPO, tag, digest)

    assert changed == {}
    assert new_apps == apps


def test_a_service_on_the_tag_but_another_digest_is_moved_to_the_digest() -> None:
    apps = {"1": {"appId": 1, "appName": "a", "services": [svc(1, "app", "iotistic/myapp:v2")]}}

    new_apps, changed = retarget(apps, REPO, "v2", DIGEST)

    assert changed == {"1/app": "iotistic/myapp:v2"}
    assert images(new_apps)["1/app"] == (f"iotistic/myapp:v2@{DIGEST}",) * 2


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param(
            {"serviceId": 1, "serviceName": "app", "config": {"image": "iotistic/myapp:v1"}},
            {
                "serviceId": 1,
                "serviceName": "app",
                "imageName": "iotistic/myapp:v2",
                "config": {"image": "iotistic/myapp:v2"},
            },
            id="only config.image",
        ),
        pytest.param(
            {"serviceId": 1, "serviceName": "app", "imageName": "iotistic/myapp:v1"},
            {
                "serviceId": 1,
                "serviceName": "app",
                "imageName": "iotistic/myapp:v2",
                "config": {"image": "iotistic/myapp:v2"},
            },
            id="only imageName, no config",
        ),
        pytest.param(
            {"serviceId": 1, "serviceName": "app", "imageName": "", "config": {"image": "x:1"}},
            {"serviceId": 1, "serviceName": "app", "imageName": "", "config": {"image": "x:1"}},
            id="another image in config.image",
        ),
        pytest.param(
            {"serviceId": 1, "serviceName": "app", "imageName": "IOTISTIC/MYAPP:v1"},
            {"serviceId": 1, "serviceName": "app", "imageName": "IOTISTIC/MYAPP:v1"},
            id="unparseable image untouched",
        ),
        pytest.param(
            {"serviceId": 1, "serviceName": "app"},
            {"serviceId": 1, "serviceName": "app"},
            id="no image at all",
        ),
    ],
)
def test_retarget_reads_either_image_field_and_writes_both(
    service: dict[str, Any], expected: dict[str, Any]
) -> None:
    apps = {"1": {"appId": 1, "appName": "a", "services": [service]}}

    new_apps, _ = retarget(apps, REPO, "v2")

    assert new_apps["1"]["services"] == [expected]


@pytest.mark.parametrize(
    ("repository", "image", "expected"),
    [
        pytest.param(
            "registry.local:5000/team/app",
            "registry.local:5000/team/app:v1",
            "registry.local:5000/team/app:v2",
            id="host with port",
        ),
        pytest.param(
            "registry.local:5000/team/app",
            f"registry.local:5000/team/app@{OLD_DIGEST}",
            "registry.local:5000/team/app:v2",
            id="host with port, digest only",
        ),
        pytest.param(
            "docker.io/library/nginx", "nginx:1.25", "nginx:v2", id="official image, short"
        ),
        pytest.param(
            "docker.io/library/nginx",
            "registry-1.docker.io/library/nginx:1.25",
            "registry-1.docker.io/library/nginx:v2",
            id="official image, registry-1 spelling",
        ),
        pytest.param(
            "docker.io/library/nginx",
            "registry.local:5000/library/nginx:1.25",
            "registry.local:5000/library/nginx:1.25",
            id="same path on another registry untouched",
        ),
    ],
)
def test_retarget_matches_the_repository_not_its_spelling(
    repository: str, image: str, expected: str
) -> None:
    apps = {"1": {"appId": 1, "appName": "a", "services": [svc(1, "app", image)]}}

    new_apps, changed = retarget(apps, repository, "v2")

    assert images(new_apps)["1/app"] == (expected, expected)
    assert changed == ({} if expected == image else {"1/app": image})


def test_retarget_of_nothing_is_nothing() -> None:
    assert retarget({}, REPO, "v2") == ({}, {})


# --- restore --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digest",
    [pytest.param(None, id="tag only"), pytest.param(DIGEST, id="pinned")],
)
def test_restore_undoes_retarget(digest: str | None) -> None:
    apps = a_fleet_target()

    moved, changed = retarget(apps, REPO, "v2", digest)

    assert moved != apps
    assert restore(moved, changed) == apps


def test_restore_puts_each_named_service_back_in_both_fields() -> None:
    apps = {
        "1001": {
            "appId": 1001,
            "appName": "web",
            "services": [svc(1, "app", "iotistic/myapp:v2"), svc(2, "db", "postgres:16")],
        },
        "1002": {"appId": 1002, "appName": "edge", "services": [svc(1, "app", "nginx:1.26")]},
    }

    restored = restore(apps, {"1001/app": "iotistic/myapp:v1", "1002/app": "nginx:1.25"})

    assert images(restored) == {
        "1001/app": ("iotistic/myapp:v1", "iotistic/myapp:v1"),
        "1001/db": ("postgres:16", "postgres:16"),
        "1002/app": ("nginx:1.25", "nginx:1.25"),
    }
    assert restored["1001"]["services"][0]["config"]["ports"] == ["8080:80"]


@pytest.mark.parametrize(
    "old_images",
    [
        pytest.param({}, id="nothing to restore"),
        pytest.param({"9999/app": "iotistic/myapp:v0"}, id="unknown app"),
        pytest.param({"1001/ghost": "iotistic/myapp:v0"}, id="unknown service"),
    ],
)
def test_restore_ignores_services_it_was_not_told_about(old_images: dict[str, str]) -> None:
    apps = a_fleet_target()
    before = copy.deepcopy(apps)

    assert restore(apps, old_images) == before
    assert apps == before


def test_restore_writes_both_fields_even_when_only_one_was_set() -> None:
    apps = {
        "1": {
            "appId": 1,
            "appName": "a",
            "services": [{"serviceId": 1, "serviceName": "app", "imageName": "x:2"}],
        }
    }

    assert images(restore(apps, {"1/app": "x:1"})) == {"1/app": ("x:1", "x:1")}


# --- service_key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_id", "service", "expected"),
    [
        pytest.param("1001", {"serviceName": "app", "serviceId": 3}, "1001/app", id="by name"),
        pytest.param("1001", {"serviceId": 3}, "1001/3", id="no name: by id"),
        pytest.param("1001", {"serviceName": "", "serviceId": 3}, "1001/3", id="empty name"),
        pytest.param("7", {"serviceName": "web"}, "7/web", id="other app"),
    ],
)
def test_service_key(app_id: str, service: dict[str, Any], expected: str) -> None:
    assert service_key(app_id, service) == expected
