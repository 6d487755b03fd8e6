"""The agent long-polls (``?wait=``) only when the server's last answer offered it, holds each
poll up to ``min(offer, poll_interval)`` with a client timeout above that, polls again right after
the answer, still backs off on errors, and gives way at once when told to stop.

The server is an ``httpx.MockTransport`` that answers polls as fleetwave does (200 with the
target for a stale ETag, else 304) and records what each poll asked for.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from fleetwave.agent.agent import LONG_POLL_JITTER, Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.simulated import SimulatedRuntime

UUID = "dev-1"
ETAG = '"e1"'
STATE = {"apps": {}, "config": {}}


class PollServer:
    def __init__(self, offer: str | None = "30") -> None:
        self.offer = offer
        self.polls: list[httpx.Request] = []
        self.hold = False  # held polls never answer (until cancelled)
        self.down = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            return httpx.Response(200, json={"status": "ok", "uuid": UUID})
        self.polls.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused")
        if self.hold and "wait" in request.url.params:
            await asyncio.Event().wait()
        headers = {"ETag": ETAG} | ({"X-Fleetwave-Long-Poll": self.offer} if self.offer else {})
        if request.headers.get("if-none-match") == ETAG:
            return httpx.Response(304, headers=headers)
        return httpx.Response(200, json={UUID: STATE}, headers=headers)

    @property
    def waits(self) -> list[str | None]:
        return [request.url.params.get("wait") for request in self.polls]


def agent_for(server: PollServer, **options: Any) -> Agent:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server), base_url="http://fw")
    return Agent(
        DeviceClient(http, UUID, "fwd_key"),
        SimulatedRuntime(),
        report_interval=0,
        rng=random.Random(1),
        **({"poll_interval": 60} | options),
    )


async def test_the_agent_long_polls_once_the_server_offers_it_and_polls_again_at_once() -> None:
    server = PollServer(offer="30")
    agent = agent_for(server)
    first = await agent.step()  # nothing offered yet: a plain poll, then the interval
    assert 54 <= first <= 66
    second = await agent.step()
    assert server.waits == [None, "30"]  # min(offer, poll interval)
    assert server.polls[1].headers["if-none-match"] == ETAG
    timeout = server.polls[1].extensions["timeout"]
    assert timeout["read"] > 30  # the client waits longer than the server holds
    assert 0 <= second <= LONG_POLL_JITTER  # straight to the next poll


async def test_the_wait_is_at_most_the_poll_interval() -> None:
    server = PollServer(offer="60")
    agent = agent_for(server, poll_interval=20)
    await agent.step()
    await agent.step()
    assert server.waits == [None, "20"]


async def test_the_agent_polls_plainly_when_the_offer_is_not_made_or_withdrawn() -> None:
    server = PollServer(offer=None)
    agent = agent_for(server)
    waits = [await agent.step() for _ in range(2)]
    assert server.waits == [None, None] and all(54 <= w <= 66 for w in waits)
    server.offer = "30"
    await agent.step()
    await agent.step()
    server.offer = None  # e.g. FLEETWAVE_LONG_POLL_MAX=0 after a restart
    await agent.step()
    assert 54 <= await agent.step() <= 66
    assert server.waits[2:] == [None, "30", "30", None]


async def test_an_agent_without_long_poll_never_sends_wait() -> None:
    server = PollServer(offer="30")
    agent = agent_for(server, long_poll=False)
    waits = [await agent.step() for _ in range(3)]
    assert server.waits == [None, None, None] and all(54 <= w <= 66 for w in waits)


async def test_errors_still_back_off_while_long_polling() -> None:
    server = PollServer(offer="30")
    agent = agent_for(server)
    await agent.step()
    server.down = True
    assert [await agent.step() for _ in range(3)] == [15, 30, 60]
    server.down = False
    assert await agent.step() <= LONG_POLL_JITTER  # the offer is remembered through errors
    assert server.waits[-1] == "30"


async def test_a_held_poll_gives_way_at_once_when_the_agent_stops() -> None:
    server = PollServer(offer="30")
    agent = agent_for(server)
    await agent.step()  # learns the offer
    server.hold = True
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    async with asyncio.timeout(5):
        while server.waits[-1:] != ["30"]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 2)
