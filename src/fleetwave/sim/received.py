"""When each simulated device received each target: the far end of "batch started → device got
its new target".

A ``RecordingClient`` is the agent's own ``DeviceClient`` that tells a ``ReceivedLog`` of every
poll that brought a target (a 200, not a 304), at the moment its answer was read. The log
writes one JSON line per target: the device, the wall-clock time in UTC and the images the
target names, e.g. ``{"device": "sim-00042-1a2b3c", "at": "2025-01-01T12:00:00.123456+00:00",
"images": ["iotistic/myapp:v2.0.1"]}``, so a benchmark on the same machine can set it beside
the server's ``batch_started`` events.

Having recorded a target, the client waits until the burst of targets arriving in this process
is over (no new one for :data:`QUIET_SECONDS`, and at most :data:`LONGEST_DEFERRAL`) before its
device acts on it. A process simulates thousands of devices on one core: without that, each
device's work (its report, its next polls) ran between the reads of the others' answers, and
the last device of a batch read its target after the work of every device before it. A real
device's work does not delay another device's receipt.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from fleetwave.agent.client import DeviceClient
from fleetwave.agent.reconciler import target_services

QUIET_SECONDS = 0.02  # no new target for this long: the burst is over
LONGEST_DEFERRAL = 2.0  # seconds a device waits for a burst to end, at most


class ReceivedLog:
    def __init__(
        self,
        out: TextIO,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out, self.now, self.monotonic = out, now, monotonic
        self.count = 0
        self.last_received = -math.inf

    def record(self, device: str, state: dict[str, Any]) -> None:
        at = self.now()  # first: the time the target arrived, not the time it was written
        self.last_received = self.monotonic()
        images = sorted({spec.image for spec in target_services(state.get("apps") or {})})
        line = {"device": device, "at": at.isoformat(), "images": images}
        self.out.write(json.dumps(line) + "\n")
        self.count += 1

    async def burst_over(self) -> None:
        """Until no target has arrived for :data:`QUIET_SECONDS`, or
        :data:`LONGEST_DEFERRAL` has passed."""
        deadline = self.monotonic() + LONGEST_DEFERRAL
        while (left := self.last_received + QUIET_SECONDS - self.monotonic()) > 0:
            if self.monotonic() >= deadline:
                return
            await asyncio.sleep(min(left, deadline - self.monotonic()))


class RecordingClient(DeviceClient):
    def __init__(
        self, http: httpx.AsyncClient, uuid: str, api_key: str, received: ReceivedLog
    ) -> None:
        super().__init__(http, uuid, api_key)
        self.received = received

    async def poll(
        self, etag: str | None, *, wait: float | None = None
    ) -> tuple[str | None, dict[str, Any] | None]:
        new_etag, state = await super().poll(etag, wait=wait)
        if state is not None:
            self.received.record(self.uuid, state)
            await self.received.burst_over()  # the others read theirs before this one acts
        return new_etag, state


def read_received(lines: list[str]) -> list[tuple[str, datetime, list[str]]]:
    """``ReceivedLog`` lines back as (device, time, images)."""
    records = []
    for line in lines:
        if line.strip():
            item = json.loads(line)
            records.append((item["device"], datetime.fromisoformat(item["at"]), item["images"]))
    return records


# The near end, read from the server's API: when each batch started, and each device's batch.


def batch_starts(admin: httpx.Client, rollout_id: str) -> dict[int, datetime]:
    """Each batch's ``batch_started`` time."""
    events = admin.get(
        f"/api/v1/rollouts/{rollout_id}/events",
        params={"event_type": "batch_started", "limit": 100},
    ).json()["items"]
    return {e["event_data"]["batch"]: utc(e["timestamp"]) for e in events}


def device_batches(admin: httpx.Client, rollout_id: str) -> dict[str, int]:
    """Each device of the rollout with its batch number, page by page."""
    batches: dict[str, int] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = admin.get(f"/api/v1/rollouts/{rollout_id}/devices", params=params).json()
        batches.update({row["device_uuid"]: row["batch_number"] for row in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return batches


def utc(timestamp: str) -> datetime:
    at = datetime.fromisoformat(timestamp)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite keeps UTC, naive
