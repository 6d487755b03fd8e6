"""A real HTTP server around the test's container (streams need one: httpx's ASGI transport
buffers whole responses), and a small Server-Sent Events reader."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from fleetwave.api import create_app
from fleetwave.bootstrap import Container


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(container: Container) -> AsyncIterator[str]:
    """The API of ``container`` on a free loopback port; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(container), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        await container.broadcast.close()
        server.should_exit = True
        await task


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


class SseReader:
    """Reads messages (and comment lines) off a streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, within: float = 5.0) -> Message:
        """The next message with an event, or a comment-only block (a heartbeat)."""
        message = Message()
        async with asyncio.timeout(within):
            async for line in self.lines:
                if line == "":
                    if message.event or message.comments:
                        return message
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    message.comments.append(value)
                elif name == "id":
                    message.id = value
                elif name == "event":
                    message.event = value
                elif name == "data":
                    message.data += value
        raise EOFError("the stream ended")

    async def until_end(self, within: float = 5.0) -> list[Message]:
        """Every message left, once the server ends the stream."""
        left = []
        try:
            while True:
                left.append(await self.next(within))
        except EOFError:
            return left

    async def events(self, count: int, within: float = 5.0) -> list[Message]:
        found: list[Message] = []
        while len(found) < count:
            message = await self.next(within)
            if message.event:
                found.append(message)
        return found
