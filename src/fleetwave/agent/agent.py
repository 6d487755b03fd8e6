"""The agent loop: poll the target, reconcile, check health, report — and keep going.

It polls every ``poll_interval`` seconds (with jitter) — or, when the server offers long-poll
(and ``long_poll`` is on), asks it to hold each poll up to ``min(offer, poll_interval)`` and polls
again right after the answer, so a new target arrives at once — backs off on errors
(``min(interval, 15 s · 2^n)``), keeps the running containers through a server outage, and
finds its containers again by their labels after a restart. It reports its state when it
changes, at most every ``report_interval`` seconds: a change inside the interval is sent when
the interval ends, as the state is then. Every report declares what the agent can do
(``capabilities``), so the server knows which health checks it may leave to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from fleetwave.agent.client import DeviceClient
from fleetwave.agent.log_shipper import LogShipper
from fleetwave.agent.reconciler import Reconciler, TargetSuperseded, target_services
from fleetwave.agent.runtime import Container, Runtime
from fleetwave.domain.capabilities import CHECK_CAPABILITIES, PROGRESS
from fleetwave.domain.health import CheckSpec, parse_checks
from fleetwave.health.custom import CustomChecks
from fleetwave.health.probes import run_check

log = logging.getLogger("fleetwave.agent")
Sleep = Callable[[float], Awaitable[None]]
LONG_POLL_JITTER = 1.0  # seconds at most between a long-poll's answer and the next poll


class Agent:
    def __init__(
        self,
        client: DeviceClient,
        runtime: Runtime,
        *,
        poll_interval: float = 60,
        report_interval: float = 10,
        device_address: str = "127.0.0.1",
        custom_checks: CustomChecks | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        long_poll: bool = True,
        logs: LogShipper | None = None,
    ) -> None:
        self.client, self.runtime = client, runtime
        self.logs = logs
        self.reconciler = Reconciler(runtime)
        self.poll_interval, self.report_interval = poll_interval, report_interval
        self.device_address = device_address
        self.custom = custom_checks or CustomChecks(None)
        self.capabilities = declared_capabilities(self.custom)
        self.sleep, self.monotonic = sleep, monotonic
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.etag: str | None = None
        self.progress: dict[str, tuple[str, str | None, str]] = {}  # key → (status, error, image)
        self.last_report: dict[str, Any] | None = None
        self.last_sent_at: float | None = None
        self.report_pending = False
        self.newer: tuple[str | None, dict[str, Any]] | None = None
        self.errors = 0
        self.long_poll = long_poll
        self.stopping: asyncio.Event | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self.stopping = stop
        next_poll = self.monotonic()
        while not stop.is_set():
            if self.monotonic() >= next_poll:
                next_poll = self.monotonic() + await self.step()
            elif self.report_pending:
                await self.flush()
            wake = min(next_poll, self.report_due()) if self.report_pending else next_poll
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wake - self.monotonic())):
                    await stop.wait()

    async def step(self) -> float:
        """One poll (and apply, check, report); returns how long to wait before the next."""
        try:
            wait = self.long_poll_wait()
            etag, state = await self.poll(wait)
            if state is not None:
                await self.apply(state, etag)
            await self.report()
            self.errors = 0
            if wait is not None:
                return self.rng.uniform(0, LONG_POLL_JITTER)
            return self.poll_interval * self.rng.uniform(0.9, 1.1)
        except httpx.HTTPError as exc:
            log.warning("server unreachable (%s); containers keep running", type(exc).__name__)
            return self.back_off()
        except Exception:
            # The engine restarting, a target it refuses, a bug: an agent on a device nobody
            # can walk to must never stop. Keep the containers, say why, try again later.
            log.exception("could not apply the target state; containers keep running")
            return self.back_off()

    def back_off(self) -> float:
        self.errors += 1
        return float(min(self.poll_interval, 15 * 2 ** (self.errors - 1)))

    def long_poll_wait(self) -> float | None:
        """How long the server may hold the next poll; None: a plain poll, then the interval."""
        offer = self.client.long_poll_max
        if not self.long_poll or not offer:
            return None
        wait = min(offer, self.poll_interval)
        if self.report_pending:  # a report waiting for its interval still goes out on time
            wait = min(wait, max(0.0, self.report_due() - self.monotonic()))
        return round(wait, 1)

    async def poll(self, wait: float | None) -> tuple[str | None, dict[str, Any] | None]:
        """Poll; a held poll gives way at once when the agent is told to stop."""
        if not wait or self.stopping is None:
            return await self.client.poll(self.etag, wait=wait)
        poll = asyncio.ensure_future(self.client.poll(self.etag, wait=wait))
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            done, _ = await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not poll.done():
                poll.cancel()
        if poll in done:
            return poll.result()
        await asyncio.wait({poll})  # let the cancelled request close its connection
        return self.etag, None  # stopping: nothing new

    async def apply(self, state: dict[str, Any], etag: str | None) -> None:
        """Apply ``state``, or the newer target that arrives while it downloads."""
        while True:
            try:
                await self._apply(state, etag)
                return
            except TargetSuperseded:
                assert self.newer is not None
                (etag, state), self.newer = self.newer, None
                log.info("a newer target arrived during the download; applying it instead")

    async def _apply(self, state: dict[str, Any], etag: str | None) -> None:
        await self.read_output()
        self.progress = {}
        targets = {s.key: s.image for s in target_services(state.get("apps") or {})}

        async def progress(key: str, status: str, error: str | None) -> None:
            self.progress[key] = (status, error, targets.get(key, ""))
            await self.report()

        async def superseded() -> bool:
            try:
                newer_etag, newer = await self.client.poll(etag)
            except httpx.HTTPError:
                return False  # the server is away: carry on with what we have
            if newer is None:
                return False
            self.newer = (newer_etag, newer)
            return True

        applied = await self.reconciler.apply(state.get("apps") or {}, progress, superseded)
        self.progress = {k: v for k, v in self.progress.items() if k in applied.failed}
        await self.report()
        await self.drop_unneeded_images(applied.unneeded)
        extension = state.get("fleetwave") or {}
        if extension.get("health_checks") and not applied.failed:
            await self.report_now()  # the server counts results from the restart it was told of
            await self.check_health(extension)
        # Only now is this target done: if a report or a health result could not be sent, the
        # next poll answers with the same target, and applying it again (a no-op for the
        # containers) sends them again.
        self.etag = etag

    async def read_output(self) -> None:
        """Before a change removes containers (a crashed one rolled back above all), read
        what they said last; the log shipper sends it on its next round."""
        if self.logs is None:
            return
        try:
            await self.logs.collect()
        except Exception as exc:  # the logs never hold up a target
            log.warning("could not read the containers' output (%s)", type(exc).__name__)

    async def drop_unneeded_images(self, images: set[str]) -> None:
        """Keep each service's previous image (a rollback needs no download); drop the one
        before it, unless a container still runs it."""
        running = {c.image for c in await self.runtime.containers()}
        for image in sorted(images - running):
            await self.runtime.remove_image(image)

    def report_due(self) -> float:
        if self.last_sent_at is None:
            return self.monotonic()
        return self.last_sent_at + self.report_interval

    async def report(self) -> None:
        """Send the current state when it differs from what was last sent — now, or when
        ``report_interval`` has passed since the last report."""
        state = {
            "apps": await self.current_apps(),
            "is_online": True,
            "local_ip": self.device_address,
            "capabilities": self.capabilities,
        }
        if state == self.last_report:
            self.report_pending = False
            return
        if self.report_due() > self.monotonic():
            self.report_pending = True
            return
        self.last_sent_at, self.report_pending = self.monotonic(), True
        await self.client.report(state)
        self.last_report, self.report_pending = state, False

    async def report_now(self) -> None:
        """Wait for the report interval to allow it, then send what is pending."""
        if self.report_pending:
            await self.sleep(max(0.0, self.report_due() - self.monotonic()))
            await self.report()

    async def flush(self) -> None:
        """Send a report that waited for its interval (a failure waits for the next one)."""
        try:
            await self.report()
        except httpx.HTTPError as exc:
            log.warning("report failed (%s); will retry", type(exc).__name__)

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
        answered = await self.runtime.answer_check(check.type)
        if answered is not None:
            return answered
        return await run_check(check.with_device(self.device_address))


def declared_capabilities(custom: CustomChecks) -> list[str]:
    """What this agent tells the server it does (``domain.capabilities``): it runs http and
    tcp checks, custom ones only when started with them allowed, and reports its progress."""
    kinds = ["http", "tcp"] + (["custom"] if custom.allowed_dir is not None else [])
    return sorted([CHECK_CAPABILITIES[kind] for kind in kinds] + [PROGRESS])


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
