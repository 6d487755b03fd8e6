"""``fleetwave simulate``: register N devices and run N real agents on simulated runtimes.

Every device is a real :class:`~fleetwave.agent.agent.Agent` speaking the device protocol over
HTTP; only the container runtime is simulated, with failures chosen per image tag and rate
(``--fail v2.0.1:0.1`` makes a tenth of the devices crash on v2.0.1). The agents' first polls
are spread over ``start_spread`` seconds (one poll interval unless told), so a fleet started at
once does not poll in step for ever after. Devices not registered beforehand (``register``)
are registered by ``run`` in the order their agents start, so registering a large fleet (one
request per device) overlaps that spread instead of preceding it.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from fleetwave.agent.agent import Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.simulated import Behaviour, SimulatedRuntime
from fleetwave.sim.received import ReceivedLog, RecordingClient

REGISTER_ATTEMPTS = 5
REGISTER_BACKOFF = 0.5  # seconds before the second attempt, doubled for each next one
RETRIED = {429, 502, 503, 504}


@dataclass
class SimulatedDevice:
    uuid: str
    agent: Agent
    runtime: SimulatedRuntime
    bad_tags: set[str] = field(default_factory=set)


def parse_failures(values: list[str], option: str = "--fail") -> dict[str, float]:
    """``["v2.0.1:0.1"]`` → ``{"v2.0.1": 0.1}``."""
    failures = {}
    for value in values:
        tag, sep, rate = value.rpartition(":")
        try:
            fraction = float(rate)
        except ValueError:
            fraction = -1
        if not sep or not tag or not 0 <= fraction <= 1:
            raise ValueError(f"{option} {value!r}: write TAG:RATE with a rate between 0 and 1")
        failures[tag] = fraction
    return failures


def parse_seconds_range(value: str, option: str = "--pull-seconds") -> tuple[float, float]:
    """``"2"`` → (2, 2); ``"1-5"`` → (1, 5): seconds, at least 0, the lower first."""
    low, _, high = value.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        bounds = (-1.0, -1.0)
    if not 0 <= bounds[0] <= bounds[1] <= 3600:
        raise ValueError(f"{option} {value!r}: write SECONDS or MIN-MAX, from 0 to 3600")
    return bounds


class FleetSimulator:
    def __init__(
        self,
        http: httpx.AsyncClient,
        admin_token: str,
        *,
        count: int,
        image: str,
        failures: Mapping[str, float] | None = None,
        unhealthy: Mapping[str, float] | None = None,
        poll_interval: float = 60,
        report_interval: float = 10,
        seed: int | None = None,
        long_poll: bool = False,
        start_spread: float | None = None,
        received: ReceivedLog | None = None,
        concurrency: int = 20,
        pull_seconds: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.http, self.admin_token = http, admin_token
        self.count, self.image, self.poll_interval = count, image, poll_interval
        self.report_interval = report_interval
        self.failures = dict(failures or {})  # tag → share of devices whose container exits
        self.unhealthy = dict(unhealthy or {})  # tag → share whose service fails its checks
        self.rng = random.Random(seed)  # noqa: S311 - which devices fail, not secrets
        # held polls need a transport that keeps them out of the request slots (QueuedTransport)
        self.long_poll = long_poll
        self.start_spread = poll_interval if start_spread is None else start_spread
        self.starts: list[float] = []
        self.received = received  # where each target's arrival is written, if anywhere
        self.concurrency = concurrency  # registrations in flight at once
        self.pull_seconds = pull_seconds  # each device's pulls take a time drawn from this
        # the index first: batches take devices in uuid order, so each batch of a fleet shared
        # by several simulator processes is shared by all of them, as real uuids would spread it
        self.suffix = secrets.token_hex(3)
        self.pattern = f"sim-*-{self.suffix}"  # how its devices' uuids look
        self.devices: list[SimulatedDevice] = []

    async def register(self) -> None:
        """Register the devices (admin API), each running ``image``."""
        slots = asyncio.Semaphore(self.concurrency)

        async def one(index: int) -> SimulatedDevice:
            async with slots:
                return await self._register(index)

        self.devices = list(await asyncio.gather(*(one(i) for i in range(self.count))))

    async def _register(self, index: int) -> SimulatedDevice:
        uuid = f"sim-{index:05d}-{self.suffix}"
        service = {"serviceId": 1, "serviceName": "app", "imageName": self.image}
        body = {
            "uuid": uuid,
            "device_name": f"simulated {index}",
            "device_type": "simulated",
            "tags": {"simulated": "true"},
            "apps": {"1001": {"appId": 1001, "appName": "app", "services": [service]}},
        }
        # drawn before the first await (registrations start in index order), so a seed picks
        # the same devices whatever order they complete in
        bad = {tag for tag, rate in self.failures.items() if self.rng.random() < rate}
        sick = {tag for tag, rate in self.unhealthy.items() if self.rng.random() < rate}
        pull = self.rng.uniform(*self.pull_seconds)
        key = await self._registered_key(uuid, body)
        runtime = SimulatedRuntime(
            {
                tag: Behaviour(pull, exits_after_start=tag in bad, unhealthy=tag in sick)
                for tag in bad | sick
            },
            pull_seconds=pull,
        )
        client = (
            DeviceClient(self.http, uuid, key)
            if self.received is None
            else RecordingClient(self.http, uuid, key, self.received)
        )
        agent = Agent(
            client,
            runtime,
            poll_interval=self.poll_interval,
            report_interval=self.report_interval,
            rng=self.rng,
            long_poll=self.long_poll,
        )
        return SimulatedDevice(uuid, agent, runtime, bad | sick)

    async def _registered_key(self, uuid: str, body: dict[str, Any]) -> str:
        """Register the device and return its key; a transport error or a busy server (429,
        503) is tried again, and a device an earlier attempt did register (409) gets a new key."""
        attempt = 0
        while True:
            last = attempt + 1 == REGISTER_ATTEMPTS
            try:
                response = await self._post_registration(uuid, body, again=attempt > 0)
                if response.status_code not in RETRIED or last:
                    response.raise_for_status()
                    return str(response.json()["api_key"])
            except httpx.TransportError:
                if last:
                    raise
            await asyncio.sleep(REGISTER_BACKOFF * 2**attempt)
            attempt += 1

    async def _post_registration(
        self, uuid: str, body: dict[str, Any], *, again: bool
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        response = await self.http.post("/api/v1/devices", json=body, headers=headers)
        if response.status_code == 409 and again:
            response = await self.http.post(f"/api/v1/devices/{uuid}/rotate-key", headers=headers)
        return response

    async def run(self, stop: asyncio.Event) -> None:
        """Run every agent until ``stop``, their first polls spread over ``start_spread``
        seconds; without ``register`` first, each device is registered on the way, in the
        order the agents start (an agent starts late if its registration is)."""
        starts = sorted(self.rng.uniform(0, self.start_spread) for _ in range(self.count))
        self.starts = starts  # each agent's planned start, in seconds after the run began
        begun = asyncio.get_running_loop().time()
        if self.devices:
            await asyncio.gather(
                *(
                    self._run_one(d, begun + s, stop)
                    for d, s in zip(self.devices, starts, strict=True)
                )
            )
            return
        slots = asyncio.Semaphore(self.concurrency)  # FIFO: registered in start order

        async def one(index: int, start: float) -> None:
            async with slots:
                if stop.is_set():
                    return
                device = await self._register(index)
            self.devices.append(device)
            await self._run_one(device, begun + start, stop)

        async with asyncio.TaskGroup() as group:  # a registration refused stops them all
            for index, start in enumerate(starts):
                group.create_task(one(index, start))

    async def _run_one(self, device: SimulatedDevice, start: float, stop: asyncio.Event) -> None:
        try:
            async with asyncio.timeout_at(start):
                await stop.wait()
                return
        except TimeoutError:
            pass
        await device.agent.run(stop)

    async def summary(self) -> dict[str, Counter[str]]:
        """Devices per running image, and per status: what the agent is doing (``pulling``,
        ``updating``, ``pull_failed``...) where it is busy, else its container's state."""
        images: Counter[str] = Counter()
        states: Counter[str] = Counter()
        for device in self.devices:
            containers = await device.runtime.containers()
            busy = {status for status, _error, _image in device.agent.progress.values()}
            if not containers:
                images["(nothing yet)"] += 1
            for container in containers:
                images[container.image] += 1
            if busy:
                states[sorted(busy)[0]] += 1
            else:
                states.update({c.state for c in containers} or {"none"})
        return {"images": images, "states": states}


def describe(summary: Mapping[str, Counter[str]]) -> str:
    images = ", ".join(f"{image}: {n}" for image, n in sorted(summary["images"].items()))
    states = ", ".join(f"{state}: {n}" for state, n in sorted(summary["states"].items()))
    return f"{images} | {states}"
