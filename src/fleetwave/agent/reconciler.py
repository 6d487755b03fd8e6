"""From a target state and what runs to the steps that make them agree: download-then-kill.

Pure: ``plan(target, running)`` lists the services to change. ``Reconciler.apply`` first pulls
every image the change needs; only when all are present does it stop and remove each old
container and start the new one with the service's configuration. The old image is kept (the
agent drops the one before it), so a rollback needs no download. The same target applied twice
changes nothing, and a newer target that arrives while images download wins: ``superseded``
is asked after each download, before the next one and before the first container stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetwave.agent.runtime import Container, Runtime, RuntimeFailure, ServiceSpec
from fleetwave.domain.target_state import service_image, service_key

Progress = Callable[[str, str, str | None], Awaitable[None]]  # (service key, status, error)
Superseded = Callable[[], Awaitable[bool]]


class TargetSuperseded(Exception):
    """A newer target arrived while this one was being applied; nothing was stopped yet."""


@dataclass(frozen=True)
class Applied:
    failed: list[str]  # keys of the services that could not change
    replaced: dict[str, str]  # key → the image its container ran before this change


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
    if container.image != spec.image or container.state != "running":
        return True
    return any(container.labels.get(k) != v for k, v in spec.labels.items())


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
            if c.old is not None and c.spec is not None and c.spec.image != c.old.image
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
                await self.runtime.start(change.spec)
            except RuntimeFailure as exc:
                failed.append(change.spec.key)
                await progress(change.spec.key, exc.kind, str(exc))
        return Applied(failed, {k: v for k, v in replaced.items() if k not in failed})
