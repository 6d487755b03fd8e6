"""Container-registry webhook payloads taken apart: which image was pushed, with which tag.

Six providers send six shapes (DESIGN.md §3, "Registries (webhooks in)"). Each is reduced to a
list with one item per event the payload carries: a ``PushedImage`` for a tagged manifest push,
or an ``Ignored`` saying in words why the event is not one (a pull, a delete, a blob, a manifest
pushed by digest only, a package that is not a container ...). A payload that is not of the
provider's shape raises ``PayloadError`` naming the missing or bad field.

Pure: no I/O, standard library only. Authenticity is checked separately (``verification``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PROVIDERS = ("dockerhub", "ghcr", "distribution", "harbor", "quay", "acr")

# Media types of what a device can pull by tag: image manifests and multi-platform indexes.
# Anything else a registry reports pushing (layers, configs) is a blob.
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    }
)

NO_TAG = "no tag: manifest pushed by digest"
BLOB_EVENT = "blob event"
GITHUB_PACKAGE_EVENTS = ("package", "registry_package")
GITHUB_PUSH_ACTIONS = ("published", "updated")
_CONTAINER_PACKAGE_TYPES = ("container", "docker")
_ZERO_TIME_PREFIX = "0001-01-01"  # GitHub's "no time" in package_version.created_at


@dataclass(frozen=True)
class PushedImage:
    provider: str
    repository: str
    tag: str
    digest: str | None
    delivery_id: str | None
    pushed_at: str | None


@dataclass(frozen=True)
class Ignored:
    reason: str


class PayloadError(ValueError):
    """The payload is not of the provider's shape; the message names the missing or bad field."""


Item = PushedImage | Ignored
_Parser = Callable[[dict[str, Any], dict[str, str]], list[Item]]


def parse(provider: str, payload: Any, headers: Mapping[str, str]) -> list[PushedImage | Ignored]:
    """One item per event in the payload. Raises ``PayloadError`` for a payload not of the
    provider's shape, and ``ValueError`` for a provider not in ``PROVIDERS``."""
    parser = _PARSERS.get(provider)
    if parser is None:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    if not isinstance(payload, dict):
        raise PayloadError("payload must be a JSON object")
    return parser(payload, _lowercase_keys(headers))


def detect_provider(payload: Any, headers: Mapping[str, str]) -> str | None:
    """The provider whose shape the payload (and headers) have, or None if none fits."""
    if _lowercase_keys(headers).get("x-github-event"):
        return "ghcr"
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("events"), list):
        return "distribution"
    if "type" in payload and isinstance(payload.get("event_data"), dict):
        return "harbor"
    repository = payload.get("repository")
    if (
        isinstance(payload.get("push_data"), dict)
        and isinstance(repository, dict)
        and "repo_name" in repository
    ):
        return "dockerhub"
    if "docker_url" in payload and "updated_tags" in payload:
        return "quay"
    if (
        "action" in payload
        and isinstance(payload.get("target"), dict)
        and isinstance(payload.get("request"), dict)
    ):
        return "acr"
    if "action" in payload and any(isinstance(payload.get(k), dict) for k in GITHUB_PACKAGE_EVENTS):
        return "ghcr"
    return None


# --- Docker Hub ------------------------------------------------------------------------------


def _dockerhub(payload: dict[str, Any], headers: dict[str, str]) -> list[Item]:
    repository = _required_object(payload, "repository", "")
    push_data = _required_object(payload, "push_data", "")
    return [
        PushedImage(
            provider="dockerhub",
            repository=_required_text(repository, "repo_name", "repository"),
            tag=_required_text(push_data, "tag", "push_data"),
            digest=None,
            delivery_id=None,
            pushed_at=_scalar_text(push_data, "pushed_at", "push_data"),
        )
    ]


# --- GitHub Container Registry (``package`` and ``registry_package`` events) ------------------


def _ghcr(payload: dict[str, Any], headers: dict[str, str]) -> list[Item]:
    event = headers.get("x-github-event") or next(
        (name for name in GITHUB_PACKAGE_EVENTS if name in payload), None
    )
    if event is None:
        raise PayloadError("package is missing (and there is no X-GitHub-Event header)")
    if event not in GITHUB_PACKAGE_EVENTS:
        return [Ignored(f"{event} event")]
    action = _required_text(payload, "action", "")
    if action not in GITHUB_PUSH_ACTIONS:
        return [Ignored(f"package {action}")]
    package = _required_object(payload, event, "")
    package_type = _optional_text(package, "package_type", event)
    registry = _optional_object(package, "registry", event)
    registry_type = _optional_text(registry, "type", f"{event}.registry") if registry else None
    if package_type is None and registry_type is None:
        raise PayloadError(f"{event}.package_type is missing")
    if not _is_container_package(package_type, registry_type):
        return [Ignored(f"not a container package: {package_type or registry_type}")]

    version_path = f"{event}.package_version"
    version = _required_object(package, "package_version", event)
    metadata_path = f"{version_path}.container_metadata"
    metadata = _required_object(version, "container_metadata", version_path)
    tag_object = _required_object(metadata, "tag", metadata_path)
    tag = _optional_text(tag_object, "name", f"{metadata_path}.tag")
    if tag is None:
        return [Ignored(NO_TAG)]
    return [
        PushedImage(
            provider="ghcr",
            repository=_ghcr_repository(package, version, event),
            tag=tag,
            digest=_optional_text(tag_object, "digest", f"{metadata_path}.tag"),
            delivery_id=headers.get("x-github-delivery") or None,
            pushed_at=_first_time(
                _optional_text(version, "updated_at", version_path),
                _optional_text(version, "created_at", version_path),
                _optional_text(package, "updated_at", event),
            ),
        )
    ]


def _is_container_package(package_type: str | None, registry_type: str | None) -> bool:
    # GitHub's published example payloads pair package_type "npm" with a CONTAINER registry,
    # so the registry's type counts as well as the package's own.
    if package_type is not None and package_type.lower() in _CONTAINER_PACKAGE_TYPES:
        return True
    return registry_type is not None and registry_type.lower() == "container"


def _ghcr_repository(package: dict[str, Any], version: dict[str, Any], event: str) -> str:
    """``ghcr.io/<owner>/<name>`` in lowercase (the only case a reference may use), from the
    version's package_url (``ghcr.io/Owner/name:tag``) or else the package's owner and name."""
    package_url = _optional_text(version, "package_url", f"{event}.package_version")
    if package_url is not None:
        return _strip_reference(package_url).lower()
    owner = _required_object(package, "owner", event)
    login = _required_text(owner, "login", f"{event}.owner")
    name = _required_text(package, "name", event)
    return f"ghcr.io/{login}/{name}".lower()


def _first_time(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate is not None and not candidate.startswith(_ZERO_TIME_PREFIX):
            return candidate
    return None


# --- CNCF Distribution (and GitLab's container registry) --------------------------------------


def _distribution(payload: dict[str, Any], headers: dict[str, str]) -> list[Item]:
    events = _required_list(payload, "events", "")
    return [_distribution_event(event, f"events[{index}]") for index, event in enumerate(events)]


def _distribution_event(event: Any, path: str) -> Item:
    if not isinstance(event, dict):
        raise PayloadError(f"{path} must be an object")
    action = _required_text(event, "action", path)
    if action != "push":
        return Ignored(f"{action} event")
    target_path = f"{path}.target"
    target = _required_object(event, "target", path)
    if not _is_manifest(target, target_path):
        return Ignored(BLOB_EVENT)
    tag = _optional_text(target, "tag", target_path)
    if tag is None:
        return Ignored(NO_TAG)
    repository = _required_text(target, "repository", target_path)
    return PushedImage(
        provider="distribution",
        repository=f"{_distribution_host(event, target, path)}/{repository}",
        tag=tag,
        digest=_optional_text(target, "digest", target_path),
        delivery_id=_scalar_text(event, "id", path),
        pushed_at=_scalar_text(event, "timestamp", path),
    )


def _is_manifest(target: dict[str, Any], path: str) -> bool:
    media_type = _optional_text(target, "mediaType", path)
    if media_type is not None:
        return media_type.split(";", 1)[0].strip().lower() in MANIFEST_MEDIA_TYPES
    url_path = urlsplit(_optional_text(target, "url", path) or "").path
    if "/manifests/" in url_path:
        return True
    if "/blobs/" in url_path:
        return False
    raise PayloadError(f"{path}.mediaType is missing")


def _distribution_host(event: dict[str, Any], target: dict[str, Any], path: str) -> str:
    request = _optional_object(event, "request", path)
    host = _optional_text(request, "host", f"{path}.request") if request else None
    if host is None:
        url = _optional_text(target, "url", f"{path}.target")
        if url is not None:
            host = urlsplit(url).netloc or None
    if host is None:
        raise PayloadError(f"{path}.request.host is missing (and {path}.target.url has no host)")
    return host.lower()


# --- Harbor ----------------------------------------------------------------------------------

_HARBOR_EVENT_WORDS = {"PULL_ARTIFACT": "pull event", "DELETE_ARTIFACT": "delete event"}


def _harbor(payload: dict[str, Any], headers: dict[str, str]) -> list[Item]:
    event_type = _required_text(payload, "type", "")
    if event_type != "PUSH_ARTIFACT":
        return [Ignored(_HARBOR_EVENT_WORDS.get(event_type, f"{event_type} event"))]
    data = _required_object(payload, "event_data", "")
    resources = _required_list(data, "resources", "event_data")
    delivery_id = _scalar_text(payload, "id", "")
    pushed_at = _scalar_text(payload, "occur_at", "")
    items: list[Item] = []
    for index, resource in enumerate(resources):
        path = f"event_data.resources[{index}]"
        if not isinstance(resource, dict):
            raise PayloadError(f"{path} must be an object")
        tag = _optional_text(resource, "tag", path)
        if tag is None:
            items.append(Ignored(NO_TAG))
            continue
        items.append(
            PushedImage(
                provider="harbor",
                repository=_strip_reference(_required_text(resource, "resource_url", path)),
                tag=tag,
                digest=_optional_text(resource, "digest", path),
                delivery_id=delivery_id,
                pushed_at=pushed_at,
            )
        )
    return items


# --- Quay ------------------------------------------------------------------------------------


def _quay(payload: dict[str, Any], headers: dict[str, str]) -> list[Item]:
    repository = _without_scheme(_required_text(payload, "docker_url", "")).rstrip("/")
    updated = payload.get("updated_tags")
    # Current Quay sends a list of tags; early Quay sent an object of tag -> image id.
    pairs: list[tuple[Any, Any]]
    if isinstance(updated, list):
        pairs = [(tag, None) for tag in updated]
    elif isinstance(updated, dict):
        pairs = list(updated.items())
    elif updated is None:
        raise PayloadError("updated_tags is missing")
    else:
        raise PayloadError("updated_tags must be a list")
    items: list[Item] = []
    for index, (tag, value) in enumerate(pairs):
        if not isinstance(tag, str) or not tag.strip():
            raise PayloadError(f"updated_tags[{index}] must be a tag name")
        digest = value if isinstance(value, str) and value.startswith("sha256:") else None
        items.append(PushedImage("quay", repository, tag.strip(), digest, None, None))
    return items or [Ignored("no tag in updated_tags")]


# --- Azure Container Registry ----------------------------------------------------------------


def _acr(payload: dict[str, Any], headers: dict[str, str]) -> list[Item]:
    action = _required_text(payload, "action", "")
    if action != "push":
        return [Ignored(f"{action} event")]
    target = _required_object(payload, "target", "")
    tag = _optional_text(target, "tag", "target")
    if tag is None:
        return [Ignored(NO_TAG)]
    repository = _required_text(target, "repository", "target")
    request = _required_object(payload, "request", "")
    host = _required_text(request, "host", "request").lower()
    return [
        PushedImage(
            provider="acr",
            repository=f"{host}/{repository}",
            tag=tag,
            digest=_optional_text(target, "digest", "target"),
            delivery_id=_scalar_text(payload, "id", ""),
            pushed_at=_scalar_text(payload, "timestamp", ""),
        )
    ]


_PARSERS: dict[str, _Parser] = {
    "dockerhub": _dockerhub,
    "ghcr": _ghcr,
    "distribution": _distribution,
    "harbor": _harbor,
    "quay": _quay,
    "acr": _acr,
}


# --- Reading fields, naming the bad one -------------------------------------------------------


def _lowercase_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): value for name, value in headers.items()}


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _required_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = _optional_object(parent, key, path)
    if value is None:
        raise PayloadError(f"{_where(path, key)} is missing")
    return value


def _optional_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadError(f"{_where(path, key)} must be an object")
    return value


def _required_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        raise PayloadError(f"{_where(path, key)} is missing")
    if not isinstance(value, list):
        raise PayloadError(f"{_where(path, key)} must be a list")
    return value


def _required_text(parent: dict[str, Any], key: str, path: str) -> str:
    value = _optional_text(parent, key, path)
    if value is None:
        state = "is empty" if key in parent and parent[key] is not None else "is missing"
        raise PayloadError(f"{_where(path, key)} {state}")
    return value


def _optional_text(parent: dict[str, Any], key: str, path: str) -> str | None:
    """The stripped string, or None when absent, null or blank."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{_where(path, key)} must be a string")
    return value.strip() or None


def _scalar_text(parent: dict[str, Any], key: str, path: str) -> str | None:
    """A string, or a number (a Unix time, a numeric id) written as the payload gives it."""
    value = parent.get(key)
    if isinstance(value, bool):
        raise PayloadError(f"{_where(path, key)} must be a string or a number")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return _optional_text(parent, key, path)


def _without_scheme(reference: str) -> str:
    return reference.split("://", 1)[1] if "://" in reference else reference


def _strip_reference(reference: str) -> str:
    """``host[:port]/path/name[:tag][@digest]`` without its tag and digest (a port stays)."""
    name = _without_scheme(reference).split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    return name
