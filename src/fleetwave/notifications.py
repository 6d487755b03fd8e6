"""Outbound notifications: the events people must hear about, POSTed to their webhooks.

Sent for a rollout paused by the failure gate, a rollout that failed or completed, and a device
whose rollback failed — as fleetwave's own JSON or as a Slack-compatible ``{"text": …}`` body.
Events are queued when their transaction commits; a sender task delivers them with retries and
backoff, so a slow or dead receiver never holds up the monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

log = logging.getLogger("fleetwave.notifications")

NOTABLE = ("rollout_failed", "rollback_failed", "rollout_completed")


class NotifyTarget(BaseModel):
    url: str = Field(pattern=r"^https?://")
    format: Literal["json", "slack"] = "json"


def notable(event: Any) -> bool:
    kind = getattr(event, "event_type", None)
    data = getattr(event, "data", None) or {}
    return kind in NOTABLE or (kind == "rollout_paused" and bool(data.get("auto")))


def body(event: Any, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        where = f" (device {event.device_uuid})" if event.device_uuid else ""
        return {"text": f"fleetwave: rollout {event.rollout_id}: {event.message}{where}"}
    return {
        "event": event.event_type,
        "rollout_id": event.rollout_id,
        "device_uuid": event.device_uuid,
        "message": event.message,
        "data": event.data,
    }


class Notifier:
    def __init__(
        self,
        targets: Sequence[NotifyTarget],
        *,
        attempts: int = 5,
        first_backoff: float = 1.0,
        timeout: float = 10.0,
        queue_size: int = 10_000,
    ) -> None:
        self.targets = list(targets)
        self.attempts, self.first_backoff, self.timeout = attempts, first_backoff, timeout
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self.delivered = 0
        self.failed = 0

    def publish(self, events: Sequence[object]) -> None:
        """Queue the notable ones (called when their transaction commits; never blocks)."""
        if not self.targets:
            return
        for event in events:
            if notable(event):
                try:
                    self.queue.put_nowait(event)
                except asyncio.QueueFull:
                    log.warning(
                        "notification queue full; dropped %s", getattr(event, "event_type", "?")
                    )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver queued events until ``stop`` is set (then what is queued, briefly)."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            sending: set[asyncio.Task[None]] = set()
            while not (stop.is_set() and self.queue.empty()):
                event = await self._next(stop)
                if event is None:
                    continue
                for target in self.targets:
                    task = asyncio.create_task(self._deliver(client, target, event))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
            if sending:  # a last moment for deliveries under way, then they are given up
                _, late = await asyncio.wait(sending, timeout=self.timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                self.failed += len(late)

    async def _next(self, stop: asyncio.Event) -> Any:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2 if stop.is_set() else 1.0):
                return await self.queue.get()
        return None

    async def _deliver(self, client: httpx.AsyncClient, target: NotifyTarget, event: Any) -> None:
        delay = self.first_backoff
        for attempt in range(1, self.attempts + 1):
            try:
                response = await client.post(target.url, json=body(event, target.format))
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
        self.failed += 1
        log.warning("could not deliver %s to a notification webhook: %s", event.event_type, problem)
