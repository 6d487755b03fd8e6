"""A simulated device's own connection for its held polls, lean enough for thousands a process.

A batch answers thousands of held polls within a second or two, and the simulator's processes
share the machine with the server they measure. Through httpx's transport every answer pays
httpcore's connection pool and h11's pure-Python parser, several times the work of the answer
itself; the simulator then takes CPU the server needs, and the bench measures the simulator.
Here a held poll is written to its device's keep-alive connection as bytes and its answer is
parsed by httptools (C, shipped with ``uvicorn[standard]``), and handed back as the same
``httpx.Response``, so the agent cannot tell.

Plain HTTP only: for ``https`` the transport keeps httpx's connections. A connection the
server closed while idle (uvicorn drops keep-alive connections after 5 s) is noticed before
reuse, or when a poll written to it is answered by the connection closing, which is safe to
send again (a poll changes nothing); a failure is raised as the ``httpx`` error the agent
handles.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools
import httpx


class _Answer(asyncio.Protocol):
    """One connection: writes requests, parses each answer with httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._pending: asyncio.Future[httpx.Response] | None = None
        self._request: httpx.Request | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self.received = False  # any byte of the pending answer

    # --- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport has the methods of asyncio.Transport, not the class
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"an answer httptools cannot parse: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(httpx.ReadError(f"the server closed the connection ({exc or 'EOF'})"))

    # --- httptools -------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        pending, request = self._pending, self._request
        status = self._parser.get_status_code()
        if not self._parser.should_keep_alive():
            self.close()
        headers, body = self._headers, b"".join(self._body)
        self._pending, self._headers, self._body = None, [], []
        if pending is not None and not pending.done():
            pending.set_result(
                httpx.Response(status, headers=headers, content=body, request=request)
            )

    # --- the connection's user -------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Open, and not owed an answer to a request someone stopped waiting for."""
        return not self.closed and self._pending is None

    def send(self, request: httpx.Request) -> asyncio.Future[httpx.Response]:
        assert self.transport is not None and self.usable
        self._pending = asyncio.get_running_loop().create_future()
        self._request, self.received = request, False
        self.transport.write(_request_bytes(request))
        return self._pending

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_exception(error)


def _request_bytes(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n" + request.content


class _Stale(Exception):
    """A kept connection closed by the server before any byte of the answer."""


class HeldPollConnection:
    """One device's held polls, one at a time, over one keep-alive connection."""

    def __init__(self) -> None:
        self._answer: _Answer | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        connect, read = timeout.get("connect"), timeout.get("read")
        try:
            return await self._send(request, connect, read)
        except _Stale:  # closed by the server as the poll was written: once more, anew
            return await self._send(request, connect, read)

    async def aclose(self) -> None:
        if self._answer is not None:
            self._answer.close()
            self._answer = None

    async def _send(
        self, request: httpx.Request, connect: float | None, read: float | None
    ) -> httpx.Response:
        kept = self._answer is not None and self._answer.usable
        answer = await self._connection(request, connect)
        try:
            async with asyncio.timeout(read):
                return await answer.send(request)
        except asyncio.CancelledError:  # its answer may still come, to no one: not reused
            answer.close()
            raise
        except TimeoutError:
            answer.close()
            timed_out = httpx.ReadTimeout("the held poll was not answered in time", request=request)
            raise timed_out from None
        except httpx.ReadError as exc:
            if kept and not answer.received:
                raise _Stale from None
            raise httpx.ReadError(str(exc), request=request) from None

    async def _connection(self, request: httpx.Request, connect: float | None) -> _Answer:
        if self._answer is not None and self._answer.usable:
            return self._answer
        await self.aclose()
        host, port = request.url.host, request.url.port or 80
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect):
                _, answer = await loop.create_connection(_Answer, host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout("could not connect in time", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        self._answer = answer
        return answer
