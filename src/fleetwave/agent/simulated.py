"""A container runtime in memory, with the failures a fleet really shows, per image tag.

``SimulatedRuntime(behaviours={"v2.0.1": Behaviour(exits_after_start=True)})`` makes every
container of tag v2.0.1 exit right after it starts; a pull can be slow or fail; a container can
run but answer its health check badly. Used by tests, the demo and ``fleetwave simulate``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from fleetwave.agent.output import OutputLine
from fleetwave.agent.runtime import Container, RuntimeFailure, ServiceSpec
from fleetwave.domain.images import try_parse_image


@dataclass(frozen=True)
class Behaviour:
    pull_seconds: float = 0.0
    pull_fails: bool = False
    exits_after_start: bool = False
    unhealthy: bool = False
    crash_output: str = "Error: the application exited (exit code 1)"  # its last words


class SimulatedRuntime:
    def __init__(
        self,
        behaviours: Mapping[str, Behaviour] | None = None,
        *,
        images: set[str] | None = None,
        now: Callable[[], datetime] | None = None,
        answers_checks: bool = True,
        pull_seconds: float = 0.0,
    ) -> None:
        self.behaviours = dict(behaviours or {})
        self.usual = Behaviour(pull_seconds=pull_seconds)  # of a tag with no behaviour given
        self.answers_checks = answers_checks
        self.images: set[str] = set(images or ())
        self._containers: dict[str, Container] = {}
        self._output: dict[str, list[OutputLine]] = {}
        self._last_output_at = 0
        self._ids = itertools.count(1)
        self._now = now or (lambda: datetime.now(UTC))
        self.pulls: list[str] = []

    def behaviour(self, image: str) -> Behaviour:
        ref = try_parse_image(image)
        tag = ref.tag if ref is not None else None
        return self.behaviours.get(tag or "", self.usual)

    def healthy(self, image: str) -> bool:
        return not self.behaviour(image).unhealthy

    async def containers(self) -> list[Container]:
        return list(self._containers.values())

    async def has_image(self, image: str) -> bool:
        return image in self.images

    async def pull(self, image: str) -> None:
        behaviour = self.behaviour(image)
        self.pulls.append(image)
        if behaviour.pull_seconds:
            await asyncio.sleep(behaviour.pull_seconds)
        if behaviour.pull_fails:
            raise RuntimeFailure("pull_failed", f"pull of {image} failed: manifest unknown")
        self.images.add(image)

    async def start(self, spec: ServiceSpec) -> Container:
        if spec.image not in self.images:
            raise RuntimeFailure("start_failed", f"no such image: {spec.image}")
        exits = self.behaviour(spec.image).exits_after_start
        container = Container(
            id=f"sim{next(self._ids):06d}",
            key=spec.key,
            image=spec.image,
            state="exited" if exits else "running",
            started_at=self._now(),
            labels=spec.labels,
            exit_code=1 if exits else None,
        )
        self._containers[container.id] = container
        self.write_output(container.key, f"starting {spec.image}")
        if exits:
            self.write_output(container.key, self.behaviour(spec.image).crash_output, stderr=True)
        return container

    async def remove(self, container: Container) -> None:
        self._containers.pop(container.id, None)
        self._output.pop(container.id, None)

    def write_output(self, key: str, text: str, *, stderr: bool = False) -> None:
        """A line of output from the service ``key``'s container (tests write their own)."""
        # nanoseconds that always grow, as a real engine's (the clock may stand still here)
        at = max(int(self._now().timestamp() * 1_000_000_000), self._last_output_at + 1)
        self._last_output_at = at
        for container in self._containers.values():
            if container.key == key:
                self._output.setdefault(container.id, []).append(OutputLine(at, stderr, text))

    async def logs(self, container: Container, *, since: int | None, tail: int) -> list[OutputLine]:
        """As the Docker API gives them: the last ``tail`` lines, from ``since`` (seconds)."""
        lines = self._output.get(container.id, [])
        if since:
            lines = [line for line in lines if line.at >= since * 1_000_000_000]
        return lines[-tail:] if tail else []

    async def remove_image(self, image: str) -> None:
        if not any(c.image == image for c in self._containers.values()):
            self.images.discard(image)

    async def answer_check(self, kind: str) -> tuple[bool, str] | None:
        """Simulated services answer their checks: badly where a running container's tag is
        configured ``unhealthy`` (or nothing runs). With ``answers_checks=False`` the agent
        probes the real address instead (tests that run a real server there)."""
        if not self.answers_checks:
            return None
        running = [c for c in self._containers.values() if c.state == "running"]
        sick = sorted(c.image for c in running if not self.healthy(c.image))
        if not running:
            return False, f"simulated {kind} check: nothing is running"
        if sick:
            return False, f"simulated {kind} check: {sick[0]} answers HTTP 503"
        return True, f"simulated {kind} check: HTTP 200"

    def crash(self, key: str) -> None:
        """Make a running service's container exit (for tests)."""
        for cid, container in self._containers.items():
            if container.key == key:
                self._containers[cid] = replace(container, state="exited", exit_code=137)
