"""The container runtime on the Docker Engine API: Docker itself, or Podman's compatible socket.

The ``docker`` SDK is synchronous; each call runs in a worker thread so the agent's loop keeps
polling and reporting while an image downloads. Every container the agent creates carries the
labels of :class:`~fleetwave.agent.runtime.ServiceSpec` plus the device's uuid, so several
agents can share one engine (as the end-to-end tests do) and an agent that restarts finds its
own containers again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container as DockerContainer

from fleetwave.agent.container_config import create_options
from fleetwave.agent.output import OutputLine, split_output
from fleetwave.agent.runtime import DEVICE, IMAGE, MANAGED, SERVICE, Container, RuntimeFailure
from fleetwave.agent.runtime import ServiceSpec as Spec
from fleetwave.domain.images import parse_image

T = TypeVar("T")
STOP_TIMEOUT = 10


class DockerRuntime:
    def __init__(self, device_uuid: str, base_url: str | None = None) -> None:
        self.device_uuid = device_uuid
        self._client = (
            docker.DockerClient(base_url=base_url, timeout=120)
            if base_url
            else docker.from_env(timeout=120)
        )

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def containers(self) -> list[Container]:
        found = await self._call(
            self._client.containers.list,
            all=True,
            filters={"label": [f"{MANAGED}=true", f"{DEVICE}={self.device_uuid}"]},
        )
        return [_container(c) for c in found]

    async def has_image(self, image: str) -> bool:
        try:
            await self._call(self._client.images.get, image)
        except (ImageNotFound, NotFound):
            return False
        return True

    async def pull(self, image: str) -> None:
        ref = parse_image(image)
        repository = image.rsplit("@", 1)[0] if ref.digest else image.rsplit(":", 1)[0]
        tag = ref.digest or ref.tag or "latest"
        try:
            await self._call(self._client.images.pull, repository, tag=tag)
        except DockerException as exc:
            raise RuntimeFailure("pull_failed", f"pull of {image} failed: {_reason(exc)}") from exc

    async def start(self, spec: Spec) -> Container:
        options = create_options(spec, self.device_uuid)  # RuntimeFailure if unreadable
        try:
            created = await self._call(self._client.containers.create, spec.image, **options)
            await self._call(created.start)
            await self._call(created.reload)
        except DockerException as exc:
            raise RuntimeFailure(
                "start_failed", f"start of {spec.image} failed: {_reason(exc)}"
            ) from exc
        return _container(created)

    async def remove(self, container: Container) -> None:
        try:
            found = await self._call(self._client.containers.get, container.id)
            if found.status == "running":
                await self._call(found.stop, timeout=STOP_TIMEOUT)
            await self._call(found.remove, force=True)
        except NotFound:
            return  # already gone: what we wanted

    async def remove_image(self, image: str) -> None:
        try:
            await self._call(self._client.images.remove, image)
        except (NotFound, APIError):
            return  # in use by another container, or gone: keep it

    async def answer_check(self, kind: str) -> tuple[bool, str] | None:
        return None  # real services answer on the network

    async def logs(self, container: Container, *, since: int | None, tail: int) -> list[OutputLine]:
        """The container's output with the engine's timestamps: its last ``tail`` lines, from
        ``since`` (whole seconds since the epoch; the API has no finer grain) if given. Two
        reads, stdout then stderr: one read merges the streams without saying which is which."""
        found: list[OutputLine] = []
        for stderr in (False, True):
            try:
                raw = await self._call(
                    self._client.api.logs,
                    container.id,
                    stdout=not stderr,
                    stderr=stderr,
                    timestamps=True,
                    tail=tail,
                    since=since if since else None,
                )
            except NotFound:
                return []  # removed meanwhile: what it said is gone with it
            found += split_output(raw if isinstance(raw, bytes) else b"", stderr=stderr)
        return found

    def close(self) -> None:
        self._client.close()


ENDED = ("exited", "stopped")  # Docker's word and Podman's for a container whose process ended


def _container(found: DockerContainer) -> Container:
    attrs: dict[str, Any] = found.attrs
    labels: dict[str, str] = dict(found.labels or {})
    state = attrs.get("State") or {}
    return Container(
        id=str(found.id),
        key=labels.get(SERVICE, ""),
        image=labels.get(IMAGE) or str((attrs.get("Config") or {}).get("Image", "")),
        state=str(state.get("Status") or found.status),
        started_at=_timestamp(state.get("StartedAt")),
        labels=labels,
        exit_code=state.get("ExitCode") if state.get("Status") in ENDED else None,
    )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    # Engines write nanoseconds; Python reads microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        return None


def _reason(exc: DockerException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
