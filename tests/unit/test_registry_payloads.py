"""Registry webhook payloads: each provider's published examples, their variants, and bad shapes.

The fixtures are the providers' own examples (tests/fixtures/webhooks/SOURCES.md says which).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetwave.registries.payloads import (
    PROVIDERS,
    Ignored,
    PayloadError,
    PushedImage,
    detect_provider,
    parse,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"

DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
PACKAGE_HEADERS = {"X-GitHub-Event": "package", "X-GitHub-Delivery": DELIVERY}
REGISTRY_PACKAGE_HEADERS = {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": DELIVERY}

GHCR_DIGEST = "sha256:a607f9535723f072b1db02ddb4f963eb5ec917140bdb2b5127c233d7bbd27149"
DISTRIBUTION_DIGEST = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
HARBOR_DIGEST = "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"
ACR_DIGEST = "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d"

NO_TAG = "no tag: manifest pushed by digest"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def changed(name: str, change: Callable[[Any], object]) -> Any:
    """A fixture with one thing changed (the change mutates a deep copy)."""
    payload = copy.deepcopy(load(name))
    change(payload)
    return payload


# --- The published examples (and their documented variants) ---------------------------------

FIXTURE_CASES = [
    pytest.param(
        "dockerhub",
        "dockerhub/push.json",
        {},
        [PushedImage("dockerhub", "svendowideit/testhook", "latest", None, None, "1417566161")],
        id="dockerhub push",
    ),
    pytest.param(
        "ghcr",
        "ghcr/package_published_container.json",
        PACKAGE_HEADERS,
        [
            PushedImage(
                "ghcr",
                "ghcr.io/codertocat/hello-world",
                "v1.2.0",
                GHCR_DIGEST,
                DELIVERY,
                "2019-05-09T23:28:29Z",
            )
        ],
        id="ghcr package published (container)",
    ),
    pytest.param(
        "ghcr",
        "ghcr/registry_package_published_container.json",
        REGISTRY_PACKAGE_HEADERS,
        [
            PushedImage(
                "ghcr",
                "ghcr.io/codertocat/hello-world",
                "latest",
                GHCR_DIGEST,
                DELIVERY,
                "2019-05-09T23:30:02Z",
            )
        ],
        id="ghcr registry_package published (container)",
    ),
    pytest.param(
        "ghcr",
        "ghcr/package_published_npm.json",
        PACKAGE_HEADERS,
        [Ignored("not a container package: npm")],
        id="ghcr npm package",
    ),
    pytest.param(
        "ghcr",
        "ghcr/package_published_untagged.json",
        PACKAGE_HEADERS,
        [Ignored(NO_TAG)],
        id="ghcr container version without a tag",
    ),
    pytest.param(
        "distribution",
        "distribution/push_manifest_tag.json",
        {},
        [
            PushedImage(
                "distribution",
                "registrycluster.local/library/test",
                "latest",
                DISTRIBUTION_DIGEST,
                "asdf-asdf-asdf-asdf-3",
                "2006-01-02T15:04:05Z",
            )
        ],
        id="distribution manifest push with tag",
    ),
    pytest.param(
        "distribution",
        "distribution/push_by_digest.json",
        {},
        [Ignored(NO_TAG)],
        id="distribution manifest push by digest",
    ),
    pytest.param(
        "distribution",
        "distribution/push_blob.json",
        {},
        [Ignored("blob event")],
        id="distribution blob push",
    ),
    pytest.param(
        "distribution",
        "distribution/pull.json",
        {},
        [Ignored("pull event")],
        id="distribution pull",
    ),
    pytest.param(
        "distribution",
        "distribution/delete.json",
        {},
        [Ignored("delete event")],
        id="distribution delete",
    ),
    pytest.param(
        "distribution",
        "distribution/envelope.json",
        {},
        [Ignored(NO_TAG), Ignored("blob event"), Ignored("blob event")],
        id="distribution envelope: one item per event",
    ),
    pytest.param(
        "harbor",
        "harbor/push_artifact.json",
        {},
        [
            PushedImage(
                "harbor",
                "hub.harbor.com/test-webhook/debian",
                "latest",
                HARBOR_DIGEST,
                None,
                "1586922308",
            )
        ],
        id="harbor PUSH_ARTIFACT",
    ),
    pytest.param(
        "harbor",
        "harbor/pull_artifact.json",
        {},
        [Ignored("pull event")],
        id="harbor PULL_ARTIFACT",
    ),
    pytest.param(
        "quay",
        "quay/repo_push.json",
        {},
        [
            PushedImage("quay", "quay.io/dgangaia/test", "latest", None, None, None),
            PushedImage("quay", "quay.io/dgangaia/test", "v2.0.1", None, None, None),
        ],
        id="quay push of two tags",
    ),
    pytest.param(
        "acr",
        "acr/push.json",
        {},
        [
            PushedImage(
                "acr",
                "myregistry.azurecr.io/hello-world",
                "v1",
                ACR_DIGEST,
                "cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
                "2017-11-17T16:52:01.343145347Z",
            )
        ],
        id="acr push",
    ),
    pytest.param("acr", "acr/delete.json", {}, [Ignored("delete event")], id="acr delete"),
]


@pytest.mark.parametrize(("provider", "fixture", "headers", "expected"), FIXTURE_CASES)
def test_published_payloads(
    provider: str,
    fixture: str,
    headers: dict[str, str],
    expected: list[PushedImage | Ignored],
) -> None:
    assert parse(provider, load(fixture), headers) == expected


def test_every_provider_has_a_fixture_directory() -> None:
    assert sorted(path.name for path in FIXTURES.iterdir() if path.is_dir()) == sorted(PROVIDERS)


# --- Variants: what the published examples do not show --------------------------------------


def _without_request(payload: Any) -> None:
    del payload["events"][0]["request"]


def _media_type(value: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["events"][0]["target"]["mediaType"] = value

    return change


def _no_media_type(url: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        target = payload["events"][0]["target"]
        del target["mediaType"]
        target["url"] = url

    return change


def _gitlab(payload: Any) -> None:
    event = payload["events"][0]
    event["request"]["host"] = "registry.gitlab.com"
    event["target"]["repository"] = "acme/iot/myapp"
    event["target"]["tag"] = "v3.1.0"


def _local_registry(payload: Any) -> None:
    event = payload["events"][0]
    event["request"]["host"] = "127.0.0.1:5000"
    event["target"]["repository"] = "team/app"


def _action(value: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["events"][0]["action"] = value

    return change


def _two_events(payload: Any) -> None:
    second = copy.deepcopy(payload["events"][0])
    second["id"] = "second"
    second["target"]["tag"] = "v2"
    payload["events"].append(second)


DISTRIBUTION_VARIANTS = [
    pytest.param(
        changed("distribution/push_manifest_tag.json", _without_request),
        [("example.com/library/test", "latest")],
        id="host from target.url when there is no request",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _media_type("application/vnd.oci.image.index.v1+json"),
        ),
        [("registrycluster.local/library/test", "latest")],
        id="OCI index counts",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _media_type("application/vnd.oci.image.manifest.v1+json"),
        ),
        [("registrycluster.local/library/test", "latest")],
        id="OCI manifest counts",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _media_type("application/vnd.docker.distribution.manifest.list.v2+json"),
        ),
        [("registrycluster.local/library/test", "latest")],
        id="docker manifest list counts",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _media_type("application/vnd.oci.image.config.v1+json"),
        ),
        [Ignored("blob event")],
        id="OCI config is a blob",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _media_type("application/vnd.oci.image.layer.v1.tar+gzip"),
        ),
        [Ignored("blob event")],
        id="OCI layer is a blob",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _no_media_type("https://example.com/v2/library/test/manifests/latest"),
        ),
        [("registrycluster.local/library/test", "latest")],
        id="no mediaType, manifest URL",
    ),
    pytest.param(
        changed(
            "distribution/push_manifest_tag.json",
            _no_media_type("https://example.com/v2/library/test/blobs/sha256:c3b3"),
        ),
        [Ignored("blob event")],
        id="no mediaType, blob URL",
    ),
    pytest.param(
        changed("distribution/push_manifest_tag.json", _action("mount")),
        [Ignored("mount event")],
        id="mount",
    ),
    pytest.param(
        changed("distribution/push_by_digest.json", _gitlab),
        [("registry.gitlab.com/acme/iot/myapp", "v3.1.0")],
        id="GitLab registry, nested project path",
    ),
    pytest.param(
        changed("distribution/push_manifest_tag.json", _local_registry),
        [("127.0.0.1:5000/team/app", "latest")],
        id="registry with a port",
    ),
    pytest.param(
        changed("distribution/push_manifest_tag.json", _two_events),
        [
            ("registrycluster.local/library/test", "latest"),
            ("registrycluster.local/library/test", "v2"),
        ],
        id="two tagged pushes in one envelope",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), DISTRIBUTION_VARIANTS)
def test_distribution_variants(payload: Any, expected: list[tuple[str, str] | Ignored]) -> None:
    got = [
        item if isinstance(item, Ignored) else (item.repository, item.tag)
        for item in parse("distribution", payload, {})
    ]
    assert got == expected


def test_distribution_event_id_and_time_are_kept_per_event() -> None:
    payload = changed("distribution/push_manifest_tag.json", _two_events)
    items = parse("distribution", payload, {})
    assert [(i.delivery_id, i.pushed_at) for i in items if isinstance(i, PushedImage)] == [
        ("asdf-asdf-asdf-asdf-3", "2006-01-02T15:04:05Z"),
        ("second", "2006-01-02T15:04:05Z"),
    ]


def _package_version(payload: Any) -> Any:
    return payload["package"]["package_version"]


def _drop_package_url(payload: Any) -> None:
    del _package_version(payload)["package_url"]


def _mixed_case_package_url(payload: Any) -> None:
    _package_version(payload)["package_url"] = "ghcr.io/Codertocat/Hello-World:v1.2.0"


def _zero_version_times(payload: Any) -> None:
    _package_version(payload)["created_at"] = "0001-01-01T00:00:00Z"
    _package_version(payload)["updated_at"] = "0001-01-01T00:00:00Z"
    payload["package"]["updated_at"] = "2019-05-10T08:00:00Z"


def _package_type(value: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["package"]["package_type"] = value
        del payload["package"]["registry"]

    return change


def _package_action(value: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["action"] = value

    return change


CONTAINER = "ghcr/package_published_container.json"
HELLO = "ghcr.io/codertocat/hello-world"

GHCR_VARIANTS = [
    pytest.param(
        changed(CONTAINER, _drop_package_url),
        PACKAGE_HEADERS,
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-09T23:28:29Z")],
        id="no package_url: owner login lowercased / package name",
    ),
    pytest.param(
        changed(CONTAINER, _mixed_case_package_url),
        PACKAGE_HEADERS,
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-09T23:28:29Z")],
        id="package_url in mixed case: lowercased",
    ),
    pytest.param(
        changed(CONTAINER, _package_action("updated")),
        PACKAGE_HEADERS,
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-09T23:28:29Z")],
        id="updated counts",
    ),
    pytest.param(
        changed(CONTAINER, _package_action("deleted")),
        PACKAGE_HEADERS,
        [Ignored("package deleted")],
        id="other actions are ignored",
    ),
    pytest.param(load(CONTAINER), {"X-GitHub-Event": "ping"}, [Ignored("ping event")], id="ping"),
    pytest.param(
        load(CONTAINER),
        {"x-github-event": "package", "X-GITHUB-DELIVERY": DELIVERY},
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-09T23:28:29Z")],
        id="header names in any case",
    ),
    pytest.param(
        load(CONTAINER),
        {},
        [(HELLO, "v1.2.0", None, "2019-05-09T23:28:29Z")],
        id="no headers: event from the payload's shape, no delivery id",
    ),
    pytest.param(
        changed(CONTAINER, _package_type("container")),
        PACKAGE_HEADERS,
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-09T23:28:29Z")],
        id="package_type container (lowercase)",
    ),
    pytest.param(
        changed(CONTAINER, _package_type("docker")),
        PACKAGE_HEADERS,
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-09T23:28:29Z")],
        id="package_type docker",
    ),
    pytest.param(
        changed(CONTAINER, _package_type("maven")),
        PACKAGE_HEADERS,
        [Ignored("not a container package: maven")],
        id="package_type maven",
    ),
    pytest.param(
        changed(CONTAINER, _zero_version_times),
        PACKAGE_HEADERS,
        [(HELLO, "v1.2.0", DELIVERY, "2019-05-10T08:00:00Z")],
        id="zero version times: the package's update time",
    ),
]


@pytest.mark.parametrize(("payload", "headers", "expected"), GHCR_VARIANTS)
def test_ghcr_variants(
    payload: Any,
    headers: dict[str, str],
    expected: list[tuple[str, str, str | None, str | None] | Ignored],
) -> None:
    got = [
        item
        if isinstance(item, Ignored)
        else (item.repository, item.tag, item.delivery_id, item.pushed_at)
        for item in parse("ghcr", payload, headers)
    ]
    assert got == expected


def _harbor_resources(*resources: dict[str, Any]) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["event_data"]["resources"] = list(resources)

    return change


def _harbor_type(value: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["type"] = value

    return change


def _harbor_id(payload: Any) -> None:
    payload["id"] = "f1b2c3d4"


HARBOR_PUSH = "harbor/push_artifact.json"
HARBOR_VARIANTS = [
    pytest.param(
        changed(
            HARBOR_PUSH,
            _harbor_resources(
                {
                    "digest": HARBOR_DIGEST,
                    "tag": "v1",
                    "resource_url": "harbor.local:8443/library/app:v1",
                },
                {
                    "digest": HARBOR_DIGEST,
                    "resource_url": "harbor.local:8443/library/app@" + HARBOR_DIGEST,
                },
            ),
        ),
        [
            PushedImage(
                "harbor", "harbor.local:8443/library/app", "v1", HARBOR_DIGEST, None, "1586922308"
            ),
            Ignored(NO_TAG),
        ],
        id="one item per resource; a port stays; untagged resource ignored",
    ),
    pytest.param(
        changed(
            HARBOR_PUSH,
            _harbor_resources(
                {
                    "digest": HARBOR_DIGEST,
                    "tag": "v2",
                    "resource_url": "harbor.local:8443/library/app@" + HARBOR_DIGEST,
                }
            ),
        ),
        [
            PushedImage(
                "harbor", "harbor.local:8443/library/app", "v2", HARBOR_DIGEST, None, "1586922308"
            )
        ],
        id="resource_url by digest: the digest goes, the port stays",
    ),
    pytest.param(
        changed(HARBOR_PUSH, _harbor_type("DELETE_ARTIFACT")),
        [Ignored("delete event")],
        id="DELETE_ARTIFACT",
    ),
    pytest.param(
        changed(HARBOR_PUSH, _harbor_type("SCANNING_COMPLETED")),
        [Ignored("SCANNING_COMPLETED event")],
        id="SCANNING_COMPLETED",
    ),
    pytest.param(
        changed(HARBOR_PUSH, _harbor_id),
        [
            PushedImage(
                "harbor",
                "hub.harbor.com/test-webhook/debian",
                "latest",
                HARBOR_DIGEST,
                "f1b2c3d4",
                "1586922308",
            )
        ],
        id="an id, when the payload has one, is the delivery id",
    ),
    pytest.param(
        changed(HARBOR_PUSH, _harbor_resources()),
        [],
        id="no resources, nothing to do",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), HARBOR_VARIANTS)
def test_harbor_variants(payload: Any, expected: list[PushedImage | Ignored]) -> None:
    assert parse("harbor", payload, {}) == expected


def _quay_tags(value: Any) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["updated_tags"] = value

    return change


QUAY_VARIANTS = [
    pytest.param(
        changed(
            "quay/repo_push.json",
            _quay_tags(
                {"latest": "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc"}
            ),
        ),
        [PushedImage("quay", "quay.io/dgangaia/test", "latest", None, None, None)],
        id="early Quay: tag -> image id, which is not a digest",
    ),
    pytest.param(
        changed("quay/repo_push.json", _quay_tags({"v1": ACR_DIGEST})),
        [PushedImage("quay", "quay.io/dgangaia/test", "v1", ACR_DIGEST, None, None)],
        id="a digest when the payload has one",
    ),
    pytest.param(
        changed("quay/repo_push.json", _quay_tags([])),
        [Ignored("no tag in updated_tags")],
        id="no tags",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), QUAY_VARIANTS)
def test_quay_variants(payload: Any, expected: list[PushedImage | Ignored]) -> None:
    assert parse("quay", payload, {}) == expected


def _acr_action(value: str) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        payload["action"] = value

    return change


def _acr_no_tag(payload: Any) -> None:
    del payload["target"]["tag"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(changed("acr/push.json", _acr_no_tag), [Ignored(NO_TAG)], id="no tag"),
        pytest.param(
            changed("acr/push.json", _acr_action("chart_push")),
            [Ignored("chart_push event")],
            id="chart_push",
        ),
        pytest.param(
            changed("acr/push.json", _acr_action("quarantine")),
            [Ignored("quarantine event")],
            id="quarantine",
        ),
    ],
)
def test_acr_variants(payload: Any, expected: list[PushedImage | Ignored]) -> None:
    assert parse("acr", payload, {}) == expected


def test_dockerhub_float_push_time_is_written_as_the_integer_it_is() -> None:
    payload = changed("dockerhub/push.json", lambda p: p["push_data"].update(pushed_at=1.7e9))
    [item] = parse("dockerhub", payload, {})
    assert isinstance(item, PushedImage)
    assert item.pushed_at == "1700000000"


# --- Payloads not of the provider's shape ----------------------------------------------------


def _delete(*path: str | int) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        node = payload
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]

    return change


def _set(value: Any, *path: str | int) -> Callable[[Any], None]:
    def change(payload: Any) -> None:
        node = payload
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return change


MANIFEST_TAG = "distribution/push_manifest_tag.json"
MALFORMED = [
    pytest.param("dockerhub", [], {}, "payload must be a JSON object", id="not an object"),
    pytest.param("dockerhub", {}, {}, "repository is missing", id="dockerhub: nothing"),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _delete("repository", "repo_name")),
        {},
        "repository.repo_name is missing",
        id="dockerhub: no repo_name",
    ),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _set(5, "repository", "repo_name")),
        {},
        "repository.repo_name must be a string",
        id="dockerhub: numeric repo_name",
    ),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _set("", "repository", "repo_name")),
        {},
        "repository.repo_name is empty",
        id="dockerhub: empty repo_name",
    ),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _set(["x"], "repository")),
        {},
        "repository must be an object",
        id="dockerhub: repository a list",
    ),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _delete("push_data")),
        {},
        "push_data is missing",
        id="dockerhub: no push_data",
    ),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _delete("push_data", "tag")),
        {},
        "push_data.tag is missing",
        id="dockerhub: no tag",
    ),
    pytest.param(
        "dockerhub",
        changed("dockerhub/push.json", _set(True, "push_data", "pushed_at")),
        {},
        "push_data.pushed_at must be a string or a number",
        id="dockerhub: boolean push time",
    ),
    pytest.param(
        "ghcr",
        {"action": "published"},
        {},
        "package is missing (and there is no X-GitHub-Event header)",
        id="ghcr: no package, no header",
    ),
    pytest.param(
        "ghcr",
        {"action": "published"},
        PACKAGE_HEADERS,
        "package is missing",
        id="ghcr: no package",
    ),
    pytest.param(
        "ghcr",
        changed(CONTAINER, _delete("action")),
        PACKAGE_HEADERS,
        "action is missing",
        id="ghcr: no action",
    ),
    pytest.param(
        "ghcr",
        changed(CONTAINER, lambda p: [p["package"].pop(k) for k in ("package_type", "registry")]),
        PACKAGE_HEADERS,
        "package.package_type is missing",
        id="ghcr: no package_type",
    ),
    pytest.param(
        "ghcr",
        changed(CONTAINER, _delete("package", "package_version", "container_metadata")),
        PACKAGE_HEADERS,
        "package.package_version.container_metadata is missing",
        id="ghcr: no container_metadata",
    ),
    pytest.param(
        "ghcr",
        changed(
            "ghcr/registry_package_published_container.json",
            _delete("registry_package", "package_version"),
        ),
        REGISTRY_PACKAGE_HEADERS,
        "registry_package.package_version is missing",
        id="ghcr: registry_package without package_version",
    ),
    pytest.param(
        "ghcr",
        changed(
            CONTAINER, _set(7, "package", "package_version", "container_metadata", "tag", "name")
        ),
        PACKAGE_HEADERS,
        "package.package_version.container_metadata.tag.name must be a string",
        id="ghcr: numeric tag name",
    ),
    pytest.param(
        "ghcr",
        changed(
            CONTAINER,
            lambda p: [
                p["package"]["package_version"].pop("package_url"),
                p["package"].pop("owner"),
            ],
        ),
        PACKAGE_HEADERS,
        "package.owner is missing",
        id="ghcr: neither package_url nor owner",
    ),
    pytest.param("distribution", {}, {}, "events is missing", id="distribution: nothing"),
    pytest.param(
        "distribution", {"events": {}}, {}, "events must be a list", id="distribution: events dict"
    ),
    pytest.param(
        "distribution", {"events": [5]}, {}, "events[0] must be an object", id="distribution: 5"
    ),
    pytest.param(
        "distribution",
        changed(MANIFEST_TAG, _delete("events", 0, "action")),
        {},
        "events[0].action is missing",
        id="distribution: no action",
    ),
    pytest.param(
        "distribution",
        changed(MANIFEST_TAG, _delete("events", 0, "target")),
        {},
        "events[0].target is missing",
        id="distribution: no target",
    ),
    pytest.param(
        "distribution",
        changed(MANIFEST_TAG, _delete("events", 0, "target", "repository")),
        {},
        "events[0].target.repository is missing",
        id="distribution: no repository",
    ),
    pytest.param(
        "distribution",
        changed(
            MANIFEST_TAG,
            lambda p: [p["events"][0].pop("request"), p["events"][0]["target"].pop("url")],
        ),
        {},
        "events[0].request.host is missing (and events[0].target.url has no host)",
        id="distribution: no host anywhere",
    ),
    pytest.param(
        "distribution",
        changed(
            MANIFEST_TAG,
            lambda p: [p["events"][0]["target"].pop(k) for k in ("mediaType", "url")],
        ),
        {},
        "events[0].target.mediaType is missing",
        id="distribution: neither mediaType nor url",
    ),
    pytest.param(
        "distribution",
        changed("distribution/envelope.json", _delete("events", 2, "target")),
        {},
        "events[2].target is missing",
        id="distribution: the bad event is named by its index",
    ),
    pytest.param("harbor", {}, {}, "type is missing", id="harbor: nothing"),
    pytest.param(
        "harbor",
        changed(HARBOR_PUSH, _delete("event_data")),
        {},
        "event_data is missing",
        id="harbor: no event_data",
    ),
    pytest.param(
        "harbor",
        changed(HARBOR_PUSH, _delete("event_data", "resources")),
        {},
        "event_data.resources is missing",
        id="harbor: no resources",
    ),
    pytest.param(
        "harbor",
        changed(HARBOR_PUSH, _delete("event_data", "resources", 0, "resource_url")),
        {},
        "event_data.resources[0].resource_url is missing",
        id="harbor: no resource_url",
    ),
    pytest.param(
        "harbor",
        changed(HARBOR_PUSH, _set(["x"], "event_data", "resources", 0)),
        {},
        "event_data.resources[0] must be an object",
        id="harbor: resource a list",
    ),
    pytest.param(
        "quay",
        changed("quay/repo_push.json", _delete("docker_url")),
        {},
        "docker_url is missing",
        id="quay: no docker_url",
    ),
    pytest.param(
        "quay",
        changed("quay/repo_push.json", _delete("updated_tags")),
        {},
        "updated_tags is missing",
        id="quay: no updated_tags",
    ),
    pytest.param(
        "quay",
        changed("quay/repo_push.json", _set("latest", "updated_tags")),
        {},
        "updated_tags must be a list",
        id="quay: updated_tags a string",
    ),
    pytest.param(
        "quay",
        changed("quay/repo_push.json", _set(["latest", ""], "updated_tags")),
        {},
        "updated_tags[1] must be a tag name",
        id="quay: empty tag",
    ),
    pytest.param("acr", {}, {}, "action is missing", id="acr: nothing"),
    pytest.param(
        "acr",
        changed("acr/push.json", _delete("request")),
        {},
        "request is missing",
        id="acr: no request",
    ),
    pytest.param(
        "acr",
        changed("acr/push.json", _delete("request", "host")),
        {},
        "request.host is missing",
        id="acr: no host",
    ),
    pytest.param(
        "acr",
        changed("acr/push.json", _delete("target", "repository")),
        {},
        "target.repository is missing",
        id="acr: no repository",
    ),
    pytest.param(
        "acr",
        changed("acr/push.json", _set("v1", "target")),
        {},
        "target must be an object",
        id="acr: target a string",
    ),
]


@pytest.mark.parametrize(("provider", "payload", "headers", "message"), MALFORMED)
def test_malformed_payloads_name_the_field(
    provider: str, payload: Any, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(PayloadError) as raised:
        parse(provider, payload, headers)
    assert str(raised.value) == message


def test_payload_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="repository is missing"):
        parse("dockerhub", {}, {})


def test_unknown_provider_is_not_a_payload_problem() -> None:
    with pytest.raises(ValueError, match="unknown provider 'gcr'") as raised:
        parse("gcr", load("dockerhub/push.json"), {})
    assert not isinstance(raised.value, PayloadError)


# --- Recognising the provider ----------------------------------------------------------------


@pytest.mark.parametrize(("provider", "fixture", "headers", "expected"), FIXTURE_CASES)
def test_detect_provider_recognises_every_published_payload(
    provider: str, fixture: str, headers: dict[str, str], expected: object
) -> None:
    assert detect_provider(load(fixture), headers) == provider


@pytest.mark.parametrize(
    ("payload", "headers", "expected"),
    [
        pytest.param(load(CONTAINER), {}, "ghcr", id="GitHub package without headers"),
        pytest.param({"zen": "Keep it simple."}, {"X-GITHUB-EVENT": "ping"}, "ghcr", id="ping"),
        pytest.param(
            load("dockerhub/push.json"),
            {"x-github-event": "package"},
            "ghcr",
            id="the GitHub header wins",
        ),
        pytest.param({"events": []}, {}, "distribution", id="empty envelope"),
        pytest.param({}, {}, None, id="empty object"),
        pytest.param({"hello": "world"}, {}, None, id="unknown shape"),
        pytest.param([{"events": []}], {}, None, id="not an object"),
        pytest.param(None, {}, None, id="null"),
        pytest.param(
            {"push_data": {"tag": "x"}, "repository": {"name": "app"}},
            {},
            None,
            id="push_data without repository.repo_name",
        ),
        pytest.param(
            {"action": "push", "target": {"repository": "app"}},
            {},
            None,
            id="action and target without request",
        ),
    ],
)
def test_detect_provider_shapes(
    payload: Any, headers: dict[str, str], expected: str | None
) -> None:
    assert detect_provider(payload, headers) == expected
