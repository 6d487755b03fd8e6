"""From a target state and what runs to the steps that make them agree: download-then-kill.

Pure: ``plan(target, running)`` lists the services to change. ``Reconciler.apply`` first pulls
every image the change needs; only when all are present does it stop and remove each old
container and start the new one with the service's configuration. The new container's labels
name the image it replaced, which is kept, so a rollback needs no download; the image before
that one is no longer needed (``Applied.unneeded``), and an agent that restarts still knows
it. The same target applied twice changes nothing, and a newer target that arrives while
images download wins: ``superseded`` is asked after each download, before the next one and
before the first container stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fleetwave.agent.runtime import PREVIOUS, Container, Runtime, RuntimeFailure, ServiceSpec
from fleetwave.domain.images import same_image
from fleetwave.domain.target_state import service_image, service_key

Progress = Callable[[str, str, str | None], Awaitable[None]]  # (service key, status, error)
Superseded = Callable[[], Awaitable[bool]]


class TargetSuperseded(Exception):
    """A newer target arrived while this one was being applied; nothing was stopped yet."""


@dataclass(frozen=True)
class Applied:
    failed: list[str]  # keys of the services that could not change
    replaced: dict[str, str]  # key → the image its container ran before this change
    unneeded: set[str] = field(default_factory=set)  # images two updates old, to remove


async def never() -> bool:
    return False


def target_services(apps: Mapping[str, Any]) -> list[ServiceSpec]:
    specs = []
    for app_id, app in apps.items():
        for service in app.get("services", []):
            image = service_image(service)
            if image is None:
                continue
            specs.append(
                ServiceSpec(
                    key=service_key(app_id, service),
                    app_id=str(app_id),
                    service_name=str(service.get("serviceName") or service.get("serviceId")),
                    service_id=service.get("serviceId"),
                    image=image,
                    config=dict(service.get("config") or {}),
                )
            )
    return specs


@dataclass(frozen=True)
class Change:
    spec: ServiceSpec | None  # None: the service is no longer wanted
    old: Container | None  # None: nothing runs it yet


def plan(target: Sequence[ServiceSpec], running: Sequence[Container]) -> list[Change]:
    """The services whose container must change: new, different image or labels, not
    running, or no longer in the target."""
    by_key = {c.key: c for c in running}
    changes = []
    for spec in target:
        current = by_key.get(spec.key)
        if current is None or _differs(spec, current):
            changes.append(Change(spec, current))
    wanted = {s.key for s in target}
    changes += [Change(None, c) for c in running if c.key not in wanted]
    return changes


def _differs(spec: ServiceSpec, container: Container) -> bool:
    """Whether the container must be replaced. The image is compared as an image, not as
    text (``repo:v3@sha256:…`` and ``repo@sha256:…`` are one image: the server serves pinned
    references without their tag), and the labels as they would read with the running
    container's own spelling of it, so that a new spelling alone restarts nothing."""
    if not same_image(container.image, spec.image) or container.state != "running":
        return True
    as_running = _spelled(spec, container.image)
    return any(container.labels.get(k) != v for k, v in as_running.labels.items())


def _spelled(spec: ServiceSpec, image: str) -> ServiceSpec:
    config = spec.config | {"image": image} if "image" in spec.config else spec.config
    return replace(spec, image=image, config=config)


class Reconciler:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def apply(
        self, apps: Mapping[str, Any], progress: Progress, superseded: Superseded = never
    ) -> Applied:
        """Make the runtime run ``apps``; raises :class:`TargetSuperseded` before any container
        is stopped if a newer target arrives meanwhile."""
        target = target_services(apps)
        changes = plan(target, await self.runtime.containers())
        failed: list[str] = []
        pulled = False
        needed = [c.spec for c in changes if c.spec is not None]
        for spec in needed:  # download first ...
            if await self.runtime.has_image(spec.image):
                continue
            if pulled and await superseded():
                raise TargetSuperseded
            await progress(spec.key, "pulling", None)
            pulled = True
            try:
                await self.runtime.pull(spec.image)
            except RuntimeFailure as exc:
                failed.append(spec.key)
                await progress(spec.key, exc.kind, str(exc))
        if pulled and await superseded():  # downloads take time; the target may have moved
            raise TargetSuperseded
        replaced = {
            c.old.key: c.old.image
            for c in changes
            if c.old is not None
            and c.spec is not None
            and not same_image(c.old.image, c.spec.image)
        }
        for change in changes:  # ... then kill and start
            if change.spec is not None and change.spec.key in failed:
                continue  # the old container keeps running
            if change.spec is not None:
                await progress(change.spec.key, "updating", None)
            if change.old is not None:
                await self.runtime.remove(change.old)
            if change.spec is None:
                continue
            try:
                await self.runtime.start(_remembering(change.spec, change.old))
            except RuntimeFailure as exc:
                failed.append(change.spec.key)
                await progress(change.spec.key, exc.kind, str(exc))
        kept = {k: v for k, v in replaced.items() if k not in failed}
        return Applied(failed, kept, _unneeded(changes, kept))


def _remembering(spec: ServiceSpec, old: Container | None) -> ServiceSpec:
    """The spec, labelled with the image its service ran before (carried over when only the
    configuration changes)."""
    if old is None:
        return spec
    previous = old.labels.get(PREVIOUS) if same_image(old.image, spec.image) else old.image
    return replace(spec, previous_image=previous)


def _unneeded(changes: Sequence[Change], replaced: Mapping[str, str]) -> set[str]:
    """Images that were the previous of a container just replaced by a new image: neither
    running nor kept for a rollback any more."""
    unneeded = set()
    for change in changes:
        if change.old is None or change.old.key not in replaced:
            continue
        older = change.old.labels.get(PREVIOUS)
        if older and older != replaced[change.old.key]:
            unneeded.add(older)
    return unneeded
