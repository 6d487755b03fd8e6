"""The simulator's HTTP transport: a few slots for requests, own connections for held polls.

Thousands of agents sharing one httpx pool would all wait inside it, and the pool's
bookkeeping grows with its waiters and its connections: on every request httpcore asks each
connection of the pool whether it has expired (a system call or two apiece), so the simulator
would spend its core managing the pool instead of running agents. Here every connection is a
pool of its own, so that question is asked once per request:

- ordinary requests (registrations, reports, plain polls, health results) wait here for one of
  ``limit`` slots, each a connection; the slot used last is taken first, so under a light load
  a few connections stay open and the others expire;
- with ``hold_polls``, a poll that asks the server to hold it (``?wait=``, a long-poll), which
  would keep a slot for up to a minute, goes around the slots to its device's own connection,
  as on a real device: no held poll waits for another's. Each is a file descriptor: 10,000
  devices holding polls need 10,000 of them (see ``raise_open_files_limit``). Over plain HTTP
  each is a :class:`~fleetwave.sim.held_connection.HeldPollConnection`, parsed in C, since a
  batch's answers all arrive at once.
"""

from __future__ import annotations

import asyncio
import resource
import ssl

import httpx

from fleetwave.sim.held_connection import HeldPollConnection

HELD_POLL_PARAM = "wait"  # the device poll's long-poll parameter (agent/client.py)
# An idle connection is dropped before the server's keep-alive (uvicorn: 5 s) drops it: reused
# as the server closes it, a request would fail on a busy server (ReadError).
KEEPALIVE_EXPIRY = 2.0


class QueuedTransport(httpx.AsyncBaseTransport):
    def __init__(self, limit: int = 50, *, hold_polls: bool = False) -> None:
        self._tls = ssl.create_default_context()  # made once: it reads the CA bundle
        self._connections = [self._connection() for _ in range(limit)]
        self._slots: asyncio.LifoQueue[httpx.AsyncHTTPTransport] = asyncio.LifoQueue()
        for connection in self._connections:
            self._slots.put_nowait(connection)
        self.hold_polls = hold_polls
        # device poll path → its connection
        self.held: dict[str, HeldPollConnection | httpx.AsyncHTTPTransport] = {}
        self.waiting = 0  # ordinary requests queued for a slot now
        self.holding = 0  # held polls in flight now
        self.answered = 0  # ordinary requests answered, since the start
        self.answered_held = 0  # held polls answered, since the start

    def _connection(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(
            verify=self._tls,
            limits=httpx.Limits(
                max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_EXPIRY
            ),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold_polls and HELD_POLL_PARAM in request.url.params:
            return await self._held(request)
        self.waiting += 1
        try:
            slot = await self._slots.get()
        finally:
            self.waiting -= 1
        try:
            response = await _read(slot, request)
        finally:
            self._slots.put_nowait(slot)
        self.answered += 1
        return response

    async def _held(self, request: httpx.Request) -> httpx.Response:
        connection = self.held.get(request.url.path)
        if connection is None:
            lean = request.url.scheme == "http"
            connection = HeldPollConnection() if lean else self._connection()
            self.held[request.url.path] = connection
        self.holding += 1
        try:
            if isinstance(connection, HeldPollConnection):
                response = await connection.handle(request)
            else:
                response = await _read(connection, request)
        finally:
            self.holding -= 1
        self.answered_held += 1
        return response

    async def aclose(self) -> None:
        for connection in [*self._connections, *self.held.values()]:
            await connection.aclose()

    def describe(self) -> str:
        """``"held polls 9,990 (120,411 answered), waiting for a slot 0 (20,102 answered)"``."""
        return (
            f"held polls {self.holding:,} ({self.answered_held:,} answered), "
            f"waiting for a slot {self.waiting:,} ({self.answered:,} answered)"
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
