"""The agent loop: poll the target, reconcile, check health, report — and keep going.

It polls every ``poll_interval`` seconds (with jitter), backs off on errors
(``min(interval, 15 s · 2^n)``), keeps the running containers through a server outage, and
finds its containers again by their labels after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from fleetwave.agent.client import DeviceClient
from fleetwave.agent.reconciler import Reconciler, target_services
from fleetwave.agent.runtime import Container, Runtime
from fleetwave.domain.health import CheckSpec, parse_checks
from fleetwave.health.custom import CustomChecks
from fleetwave.health.probes import run_check

log = logging.getLogger("fleetwave.agent")
Sleep = Callable[[float], Awaitable[None]]


class Agent:
    def __init__(
        self,
        client: DeviceClient,
        runtime: Runtime,
        *,
        poll_interval: float = 60,
        custom_checks: CustomChecks | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client, self.runtime = client, runtime
        self.reconciler = Reconciler(runtime)
        self.poll_interval = poll_interval
        self.custom = custom_checks or CustomChecks(None)
        self.sleep, self.rng = sleep, rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.etag: str | None = None
        self.progress: dict[str, tuple[str, str | None, str]] = {}  # key → (status, error, image)
        self.last_report: dict[str, Any] | None = None
        self.errors = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = await self.step()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await stop.wait()

    async def step(self) -> float:
        """One poll (and apply, check, report); returns how long to wait before the next."""
        try:
            etag, state = await self.client.poll(self.etag)
            if state is not None:
                await self.apply(state)
                self.etag = etag
            await self.report()
            self.errors = 0
            return self.poll_interval * self.rng.uniform(0.9, 1.1)
        except httpx.HTTPError as exc:
            self.errors += 1
            log.warning("server unreachable (%s); containers keep running", type(exc).__name__)
            return float(min(self.poll_interval, 15 * 2 ** (self.errors - 1)))

    async def apply(self, state: dict[str, Any]) -> None:
        self.progress = {}
        targets = {s.key: s.image for s in target_services(state.get("apps") or {})}

        async def progress(key: str, status: str, error: str | None) -> None:
            self.progress[key] = (status, error, targets.get(key, ""))
            await self.report()

        failed = await self.reconciler.apply(state.get("apps") or {}, progress)
        self.progress = {k: v for k, v in self.progress.items() if k in failed}
        await self.report()
        extension = state.get("fleetwave") or {}
        if extension.get("health_checks") and not failed:
            await self.check_health(extension)

    async def report(self) -> None:
        """Send the current state when it differs from what was last sent."""
        state = {"apps": await self.current_apps(), "is_online": True}
        if state != self.last_report:
            await self.client.report(state)
            self.last_report = state

    async def current_apps(self) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        containers = {c.key: c for c in await self.runtime.containers()}
        for key in sorted(set(containers) | set(self.progress)):
            app_id, _, name = key.partition("/")
            service: dict[str, Any] = {"serviceName": name}
            if key in containers:
                service |= _describe(containers[key])
            if key in self.progress:
                status, error, image = self.progress[key]
                service |= {"status": status, "imageName": image}
                if error:
                    service["error"] = error
            apps.setdefault(app_id, {"appId": _int(app_id), "services": []})["services"].append(
                service
            )
        return apps

    async def check_health(self, extension: dict[str, Any]) -> None:
        checks = parse_checks(extension["health_checks"])
        path = extension.get("health_report") or f"/api/v1/device/{self.client.uuid}/health"
        for check in checks:
            if check.type == "container_running":
                continue  # the server reads it from the reports
            for attempt in range(check.retries + 1):
                passed, detail = await self.run_one(check)
                await self.client.health(
                    path,
                    extension.get("rollout_id"),
                    [{"check": check.name, "passed": passed, "detail": detail}],
                )
                if passed:
                    break
                if attempt < check.retries:
                    await self.sleep(check.interval_seconds)

    async def run_one(self, check: CheckSpec) -> tuple[bool, str]:
        if check.type == "custom":
            return await self.custom.run(check.command, check.timeout_seconds)
        local = check.with_device("127.0.0.1")
        return await run_check(local)


def _describe(container: Container) -> dict[str, Any]:
    service: dict[str, Any] = {
        "imageName": container.image,
        "status": container.state,
        "containerId": container.id,
    }
    if container.exit_code:
        service["error"] = f"exit code {container.exit_code}"
    return service


def _int(value: str) -> int | str:
    return int(value) if value.isdigit() else value
