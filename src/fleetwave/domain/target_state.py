"""The device target state in the iotistic format: validation, image fields and ETags.

Apps are keyed by appId; each app has a list of services. A service's image lives in both
``imageName`` and ``config.image``: we read either and always write both (DESIGN.md §2).
Unknown fields are kept as they are, so agents that know more than we do lose nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.images import engine_reference, try_parse_image, with_version
from fleetwave.domain.text_rules import label_problem

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")

Apps = dict[str, Any]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def state_etag(
    apps: Mapping[str, Any],
    config: Mapping[str, Any],
    extensions: Mapping[str, Any] | None = None,
) -> str:
    """A strong ETag over the content a device is served: equal content, equal tag."""
    served = served_state(apps, config, extensions)
    digest = hashlib.sha256(canonical_json(served).encode()).hexdigest()
    return f'"{digest[:32]}"'


def served_state(
    apps: Mapping[str, Any], config: Mapping[str, Any], extensions: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a device's poll returns for it: apps and config, and fleetwave's extension."""
    state: dict[str, Any] = {"apps": engine_apps(apps), "config": config}
    if extensions:
        state["fleetwave"] = extensions
    return state


def engine_apps(apps: Mapping[str, Any]) -> Mapping[str, Any]:
    """``apps`` as devices are served them: pinned images in the form engines report back
    unchanged (``repo@sha256:…``, see :func:`~fleetwave.domain.images.engine_reference`).
    The stored target keeps the readable ``repo:v3@sha256:…``; ``apps`` is returned as it
    is when nothing is pinned with a tag (the usual case, and no copy)."""
    served: dict[str, Any] | None = None
    for app_id, app in apps.items():
        services = app.get("services") if isinstance(app, dict) else None
        if not isinstance(services, list) or not any(map(_pinned_with_tag, services)):
            continue
        served = served if served is not None else dict(apps)
        served[app_id] = app | {"services": [_engine_service(s) for s in services]}
    return apps if served is None else served


def _pinned_with_tag(service: Any) -> bool:
    if not isinstance(service, dict):
        return False
    config = service.get("config")
    images = (service.get("imageName"), config.get("image") if isinstance(config, dict) else None)
    return any(isinstance(i, str) and engine_reference(i) != i for i in images)


def _engine_service(service: Any) -> Any:
    if not _pinned_with_tag(service):
        return service
    served = dict(service)
    if isinstance(image := served.get("imageName"), str):
        served["imageName"] = engine_reference(image)
    config = served.get("config")
    if isinstance(config, dict) and isinstance(image := config.get("image"), str):
        served["config"] = config | {"image": engine_reference(image)}
    return served


def service_image(service: Mapping[str, Any]) -> str | None:
    """The image a service runs, from either of the two fields that carry it."""
    config = service.get("config")
    image = service.get("imageName") or (config.get("image") if isinstance(config, dict) else None)
    return image if isinstance(image, str) and image else None


MAX_ID = 2**63 - 1  # appId and serviceId: what a BIGINT, and every engine's label, can hold


def id_problem(value: Any) -> str | None:
    """What is wrong with an appId or serviceId, if anything: a whole number 0..2^63-1."""
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be an integer"
    if not 0 <= value <= MAX_ID:
        return f"must be from 0 to {MAX_ID:,}"
    return None


def normalize_target_apps(apps: Any, *, field: str = "apps") -> Apps:
    """Validate ``apps`` and return a copy with both image fields filled in every service.

    Raises :class:`InvalidInput` listing every problem with its path, e.g.
    ``apps.1001.services[0].imageName``.
    """
    problems: list[Problem] = []
    if not isinstance(apps, dict):
        raise InvalidInput.one(field, "must be an object keyed by appId")
    normalized: Apps = {}
    for app_key, app in apps.items():
        path = f"{field}.{app_key}"
        normalized[app_key] = _normalize_app(app_key, app, path, problems)
    if problems:
        raise InvalidInput(problems)
    return normalized


def _normalize_app(app_key: str, app: Any, path: str, problems: list[Problem]) -> Any:
    if not app_key.isdigit():
        problems.append(Problem(path, "app keys must be numeric appIds"))
    if not isinstance(app, dict):
        problems.append(Problem(path, "must be an object"))
        return app
    app = dict(app)
    app_id = app.get("appId")
    if (problem := id_problem(app_id)) is not None:
        problems.append(Problem(f"{path}.appId", problem))
    elif str(app_id) != app_key:
        problems.append(Problem(f"{path}.appId", f"is {app_id} but the app is keyed {app_key}"))
    if not _nonempty_str(app.get("appName")):
        problems.append(Problem(f"{path}.appName", "must be a non-empty string"))
    services = app.get("services", [])
    if not isinstance(services, list):
        problems.append(Problem(f"{path}.services", "must be a list"))
        return app
    app["services"] = [
        _normalize_service(service, f"{path}.services[{i}]", problems)
        for i, service in enumerate(services)
    ]
    names = [s.get("serviceName") for s in app["services"] if isinstance(s, dict)]
    duplicated = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    if duplicated:
        problems.append(Problem(f"{path}.services", f"duplicate serviceName {duplicated[0]!r}"))
    return app


def _normalize_service(service: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(service, dict):
        problems.append(Problem(path, "must be an object"))
        return service
    service = dict(service)
    if (problem := id_problem(service.get("serviceId"))) is not None:
        problems.append(Problem(f"{path}.serviceId", problem))
    if "appId" in service and (problem := id_problem(service["appId"])) is not None:
        problems.append(Problem(f"{path}.appId", problem))  # the agent's copy of its app's
    if not _nonempty_str(service.get("serviceName")):
        problems.append(Problem(f"{path}.serviceName", "must be a non-empty string"))
    config = service.get("config", {})
    if not isinstance(config, dict):
        problems.append(Problem(f"{path}.config", "must be an object"))
        return service
    config = dict(config)
    named = service.get("imageName") or None  # an empty field is an unset field
    configured = config.get("image") or None
    if named is not None and configured is not None and named != configured:
        problems.append(
            Problem(f"{path}.imageName", f"{named!r} differs from config.image {configured!r}")
        )
    image = service_image({"imageName": named, "config": config})
    if image is None or any(ch.isspace() for ch in image) or label_problem(image):
        problems.append(
            Problem(f"{path}.imageName", "must name an image (no spaces or control characters)")
        )
    else:
        service["imageName"] = config["image"] = image
    _check_config(config, f"{path}.config", problems)
    service["config"] = config
    return service


def _check_config(config: dict[str, Any], path: str, problems: list[Problem]) -> None:
    ports = config.get("ports", [])
    if not isinstance(ports, list) or not all(isinstance(p, str | int) for p in ports):
        problems.append(Problem(f"{path}.ports", "must be a list of port mappings"))
    environment = config.get("environment", {})
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool)
        for k, v in environment.items()
    ):
        problems.append(Problem(f"{path}.environment", "must map names to values"))
    volumes = config.get("volumes", [])
    if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
        problems.append(Problem(f"{path}.volumes", "must be a list of strings"))
    restart = config.get("restart")
    if restart is not None and restart not in RESTART_POLICIES:
        problems.append(Problem(f"{path}.restart", f"must be one of {', '.join(RESTART_POLICIES)}"))


def normalize_config(config: Any, *, field: str = "config") -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidInput.one(field, "must be an object")
    return dict(config)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def service_key(app_id: str, service: Mapping[str, Any]) -> str:
    """How a service is named across a rollout: ``"<appId>/<serviceName>"``."""
    return f"{app_id}/{service.get('serviceName') or service.get('serviceId')}"


def retarget(
    apps: Mapping[str, Any], repository: str, tag: str, digest: str | None = None
) -> tuple[Apps, dict[str, str]]:
    """Move every service running ``repository`` to ``tag`` (both image fields).

    Returns the new apps and, for each service changed, the image it ran before.
    """
    changed: dict[str, str] = {}
    new_apps: Apps = {}
    for app_id, app in apps.items():
        services = []
        for service in app.get("services", []):
            image = service_image(service)
            ref = try_parse_image(image) if image else None
            if image and ref is not None and ref.repository == repository:
                new_image = with_version(image, tag, digest)
                if new_image != image:
                    changed[service_key(app_id, service)] = image
                    service = dict(service) | {"imageName": new_image}
                    service["config"] = dict(service.get("config") or {}) | {"image": new_image}
            services.append(service)
        new_apps[app_id] = dict(app) | {"services": services}
    return new_apps, changed


def restore(apps: Mapping[str, Any], old_images: Mapping[str, str]) -> Apps:
    """Put each named service back on the image it ran before (a rollback)."""
    new_apps: Apps = {}
    for app_id, app in apps.items():
        services = []
        for service in app.get("services", []):
            old = old_images.get(service_key(app_id, service))
            if old is not None:
                service = dict(service) | {"imageName": old}
                service["config"] = dict(service.get("config") or {}) | {"image": old}
            services.append(service)
        new_apps[app_id] = dict(app) | {"services": services}
    return new_apps


ATTEMPT_LABEL = "io.fleetwave.attempt"


def mark_attempt(apps: Mapping[str, Any], keys: set[str], attempt: int) -> Apps:
    """Label the named services with the attempt number, so that a retry is a new target
    (a new ETag) that the agent applies again, even though the image is the same."""
    new_apps: Apps = {}
    for app_id, app in apps.items():
        services = []
        for service in app.get("services", []):
            if service_key(app_id, service) in keys:
                config = dict(service.get("config") or {})
                labels = dict(config.get("labels") or {}) | {ATTEMPT_LABEL: str(attempt)}
                service = dict(service) | {"config": config | {"labels": labels}}
            services.append(service)
        new_apps[app_id] = dict(app) | {"services": services}
    return new_apps
