"""What the agent needs of a container runtime, whichever runs the containers.

``DockerRuntime`` drives the Docker Engine API (Docker or Podman's compatible socket);
``SimulatedRuntime`` keeps containers in memory for tests, demos and the fleet simulator.
Containers the agent manages carry labels that name their service, so that an agent that
restarts finds them again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

MANAGED = "io.fleetwave.managed"
SERVICE = "io.fleetwave.service"  # "<appId>/<serviceName>"
IMAGE = "io.fleetwave.image"  # the reference as the target names it (engines rewrite theirs)
CONFIG = "io.fleetwave.config"  # a digest of the service's configuration: a change restarts it
DEVICE = "io.fleetwave.device"  # the uuid of the device whose agent made the container
PREVIOUS = "io.fleetwave.previous-image"  # what the service ran before: kept for a rollback


class RuntimeFailure(Exception):
    """A runtime operation failed; ``kind`` says which (pull_failed, start_failed)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ServiceSpec:
    """A service as the target state describes it."""

    key: str  # "<appId>/<serviceName>"
    app_id: str
    service_name: str
    service_id: int | None
    image: str
    config: dict[str, Any] = field(default_factory=dict)
    previous_image: str | None = None  # set by the reconciler when it replaces a container

    @property
    def labels(self) -> dict[str, str]:
        own = {str(k): str(v) for k, v in (self.config.get("labels") or {}).items()}
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()
        ours = {MANAGED: "true", SERVICE: self.key, IMAGE: self.image, CONFIG: digest[:16]}
        previous = {PREVIOUS: self.previous_image} if self.previous_image else {}
        return own | ours | previous


@dataclass(frozen=True)
class Container:
    id: str
    key: str
    image: str
    state: str  # running | exited | created | ...
    started_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None


class Runtime(Protocol):
    async def containers(self) -> list[Container]: ...

    async def has_image(self, image: str) -> bool: ...

    async def pull(self, image: str) -> None: ...

    async def start(self, spec: ServiceSpec) -> Container: ...

    async def remove(self, container: Container) -> None: ...

    async def remove_image(self, image: str) -> None: ...

    async def answer_check(self, kind: str) -> tuple[bool, str] | None:
        """A network check (http, tcp) answered by the runtime itself, for services that exist
        only in it (the simulated runtime); None: probe the real address."""
        ...
