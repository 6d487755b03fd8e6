"""The simulator's HTTP transport: a few slots for requests, own connections for held polls.

Thousands of agents sharing one httpx pool would all wait inside it, and the pool's
bookkeeping grows with its waiters and its connections (every request scans them): the
simulator then spends its core managing the queue instead of running agents. So ordinary
requests (registrations, reports, plain polls, health results) queue here for one of ``limit``
slots, in front of a pool of that size.

A poll that asks the server to hold it (``?wait=``, a long-poll) would keep a slot for up to
a minute: a few dozen of them would stop every report. With ``hold_polls``, held polls go
around the slots, each device's to its own connection (as a real device has), kept in small
pools of ``held_pool_size`` devices, so no pool grows large and no held poll ever waits for a
connection. Each such connection is a file descriptor: 10,000 devices holding polls need
10,000 of them (see ``raise_open_files_limit``).
"""

from __future__ import annotations

import asyncio
import resource

import httpx

HELD_POLL_PARAM = "wait"  # the device poll's long-poll parameter (agent/client.py)
# An idle connection is dropped before the server's keep-alive (uvicorn: 5 s) drops it: reused
# as the server closes it, a request would fail on a busy server (ReadError).
KEEPALIVE_EXPIRY = 2.0


class QueuedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, limit: int = 50, *, hold_polls: bool = False, held_pool_size: int = 64
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport(limits=_limits(limit))
        self._slots = asyncio.Semaphore(limit)
        self.hold_polls, self.held_pool_size = hold_polls, held_pool_size
        self.held_pools: list[httpx.AsyncHTTPTransport] = []
        self._pool_of: dict[str, httpx.AsyncHTTPTransport] = {}  # device poll path → its pool
        self.waiting = 0  # ordinary requests queued for a slot now
        self.holding = 0  # held polls in flight now
        self.answered = 0  # ordinary requests answered, since the start
        self.answered_held = 0  # held polls answered, since the start

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold_polls and HELD_POLL_PARAM in request.url.params:
            return await self._held(request)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            response = await _read(self._inner, request)
        finally:
            self._slots.release()
        self.answered += 1
        return response

    async def _held(self, request: httpx.Request) -> httpx.Response:
        self.holding += 1
        try:
            response = await _read(self._held_pool(request.url.path), request)
        finally:
            self.holding -= 1
        self.answered_held += 1
        return response

    def _held_pool(self, path: str) -> httpx.AsyncHTTPTransport:
        """The pool of this device's held polls: devices fill the pools in turn, for good."""
        pool = self._pool_of.get(path)
        if pool is None:
            if len(self._pool_of) % self.held_pool_size == 0:
                self.held_pools.append(
                    httpx.AsyncHTTPTransport(limits=_limits(self.held_pool_size))
                )
            pool = self._pool_of[path] = self.held_pools[-1]
        return pool

    async def aclose(self) -> None:
        await self._inner.aclose()
        for pool in self.held_pools:
            await pool.aclose()

    def describe(self) -> str:
        """``"held polls 9,990 (120,411 answered), waiting for a slot 0 (20,102 answered)"``."""
        return (
            f"held polls {self.holding:,} ({self.answered_held:,} answered), "
            f"waiting for a slot {self.waiting:,} ({self.answered:,} answered)"
        )


def _limits(connections: int) -> httpx.Limits:
    return httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )


async def _read(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


def raise_open_files_limit(needed: int) -> int:
    """Raise this process's soft limit of open files up to its hard limit if ``needed`` is
    above it; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed > soft:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft
