"""Running one http or tcp check, once, with a timeout; and many at once, boundedly.

Used by the server for the checks it probes itself (``run_on: server``, and ``device_or_server``
for devices whose agent does not run them; see ``domain.check_placement``), and by the agent
for its own. A rollout over 10,000 devices must not open 10,000 sockets at once: ``Prober``
runs at most ``concurrency`` probes together. How one probe is run comes in as a parameter,
so tests answer probes without sockets and without waiting for timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from fleetwave.clock import Clock
from fleetwave.domain.health import CheckResult, CheckSpec


@dataclass(frozen=True)
class Probe:
    device_uuid: str
    check: CheckSpec  # with {device_ip} already filled in


async def run_check(check: CheckSpec, client: httpx.AsyncClient | None = None) -> tuple[bool, str]:
    """(passed, what was seen) for one attempt of an http or tcp check."""
    try:
        async with asyncio.timeout(check.timeout_seconds):
            if check.type == "http":
                return await _http(check, client)
            if check.type == "tcp":
                return await _tcp(check)
    except TimeoutError:
        return False, f"no answer within {check.timeout_seconds:g} s"
    except (httpx.HTTPError, OSError) as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]
    return False, f"a {check.type} check is not run here"


async def _http(check: CheckSpec, client: httpx.AsyncClient | None) -> tuple[bool, str]:
    assert check.url is not None
    if client is None:
        async with httpx.AsyncClient(follow_redirects=False) as own:
            return await _http(check, own)
    response = await client.get(check.url, timeout=check.timeout_seconds)
    if response.status_code != check.expected_status:
        return False, f"HTTP {response.status_code}, expected {check.expected_status}"
    if check.body_contains and check.body_contains not in response.text:
        return False, f"HTTP {response.status_code} without {check.body_contains!r} in the body"
    return True, f"HTTP {response.status_code}"


async def _tcp(check: CheckSpec) -> tuple[bool, str]:
    assert check.host is not None and check.port is not None
    _, writer = await asyncio.open_connection(check.host, check.port)
    writer.close()
    with contextlib.suppress(OSError):  # the peer closing first is still a successful connect
        await writer.wait_closed()
    return True, f"connected to {check.host}:{check.port}"


CheckRunner = Callable[[CheckSpec, httpx.AsyncClient], Awaitable[tuple[bool, str]]]


class Prober:
    def __init__(
        self, clock: Clock, concurrency: int = 100, run: CheckRunner | None = None
    ) -> None:
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._run: CheckRunner = run or run_check

    async def run(self, probes: Sequence[Probe]) -> list[tuple[str, CheckResult]]:
        """Every probe once; at most ``concurrency`` in flight. Returns (device, result)."""
        if not probes:
            return []
        async with httpx.AsyncClient(
            follow_redirects=False, limits=httpx.Limits(max_connections=200)
        ) as client:
            return list(await asyncio.gather(*(self._one(p, client) for p in probes)))

    async def _one(self, probe: Probe, client: httpx.AsyncClient) -> tuple[str, CheckResult]:
        async with self._slots:
            passed, detail = await self._run(probe.check, client)
        at: datetime = self.clock.now()
        return probe.device_uuid, CheckResult(probe.check.name, passed, at, detail)
