"""Real servers on loopback for the health-check, rollback and notification tests.

``HttpServer`` is a tiny HTTP/1.1 server on ``asyncio.start_server``: each request is answered
by a function of the address it was reached on and its path (one server can listen on several
loopback addresses, 127.0.0.2, 127.0.0.3, …, on one port: Linux routes all of 127/8 to lo).
It keeps what it received and how many requests it held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

REASONS = {200: "OK", 204: "No Content", 404: "Not Found", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Request:
    host: str  # the local address the request was reached on
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"


Answer = Callable[[Request], Reply | Awaitable[Reply]]


def loopback(n: int) -> str:
    """The ``n``-th extra loopback address: 127.0.0.2 for 0, 127.0.0.3 for 1, …"""
    return f"127.0.{(n + 2) // 256}.{(n + 2) % 256}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HttpServer:
    answer: Answer = field(default=lambda request: Reply())
    hosts: Sequence[str] = ("127.0.0.1",)
    delay: float = 0.0  # held this long before answering
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _servers: list[asyncio.AbstractServer] = field(default_factory=list)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.hosts[0]}:{self.port}{path}"

    async def __aenter__(self) -> HttpServer:
        for _ in range(20):  # another process may take the port between two binds: try again
            try:
                await self._listen()
                return self
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                await self._close()
        raise RuntimeError("no port free on every address")

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def _listen(self) -> None:
        port = self.port
        for host in self.hosts:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                raise
            port = sock.getsockname()[1]
            self._servers.append(await asyncio.start_server(self._serve, sock=sock))
        self.port = port

    async def _close(self) -> None:
        self._closing.set()  # requests held without an answer end now
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        self._servers.clear()
        self._closing.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._one(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        request = Request(writer.get_extra_info("sockname")[0], method, path, body)
        self.requests.append(request)
        self._arrived.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            reply = self.answer(request)
            if not isinstance(reply, Reply):
                reply = await reply
            if reply is NO_ANSWER:
                await self._closing.wait()
                return
        finally:
            # counted out before the answer is written: the client cannot have it yet
            self.in_flight -= 1
        data = reply.body.encode()
        writer.write(
            f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def wait_for(self, count: int, within: float = 5.0) -> list[Request]:
        """Wait until ``count`` requests arrived; returns them all."""
        async with asyncio.timeout(within):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.requests)


NO_ANSWER = Reply(0, "")


def never(request: Request) -> Reply:
    """An answer that never comes: the server reads the request and says nothing (until it
    is closed)."""
    return NO_ANSWER


def in_turn(*replies: Reply) -> Answer:
    """The replies one after the other; the last one again once they are used up."""
    left = list(replies)

    def answer(request: Request) -> Reply:
        return left.pop(0) if len(left) > 1 else left[0]

    return answer


@dataclass
class TcpListener:
    """Accepts connections and closes them at once."""

    host: str = "127.0.0.1"
    port: int = 0
    accepted: int = 0
    _server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> TcpListener:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
