"""The simulator's lean connection for held polls, against a real socket server: answers as
httpx gives them, one keep-alive connection reused, a connection the server dropped replaced,
and every failure raised as the httpx error the agent handles."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import uvloop

from fleetwave.sim.held_connection import HeldPollConnection

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]
JSON = b'{"d1":{"apps":{}}}'

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def on_both_loops(scenario: Callable[[], Awaitable[None]]) -> Callable[[str], None]:
    """The scenario as a test run on asyncio's loop and on uvloop, which the simulator runs
    on: uvloop's transports have asyncio's methods but are not its classes."""

    @pytest.mark.parametrize("loop", LOOPS)
    def test(loop: str) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(scenario())  # type: ignore[arg-type]

    test.__name__, test.__doc__ = scenario.__name__, scenario.__doc__
    return test


def answer(status: int, body: bytes = b"", *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 %d X" % status, b'etag: "e2"', *extra]
    if status != 304:
        head.append(b"content-length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class Server:
    """Answers each connection's requests as ``script`` says (False: close the connection)."""

    def __init__(self, script: Script) -> None:
        self.script, self.connections, self.requests = script, 0, 0
        self.heads: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                self.heads.append(await reader.readuntil(b"\r\n\r\n"))
                self.requests += 1
                if not await self.script(reader, writer, self.requests):
                    break
        writer.close()


@contextlib.asynccontextmanager
async def serving(script: Script) -> AsyncIterator[tuple[Server, str]]:
    server = Server(script)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}/api/v1/device/d1/state?wait=30"
    finally:
        listening.close()


def poll(url: str, read: float = 5) -> httpx.Request:
    timeout = {"connect": 5, "read": read, "write": 5, "pool": 5}
    request = httpx.Request("GET", url, headers={"if-none-match": '"e1"', "x-device-api-key": "k"})
    request.extensions["timeout"] = timeout
    return request


@on_both_loops
async def test_answers_come_back_as_httpx_responses_over_one_kept_connection() -> None:
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(answer(200, JSON) if n == 1 else answer(304))
        return True

    async with serving(script) as (server, url):
        connection = HeldPollConnection()
        first = await connection.handle(poll(url))
        second = await connection.handle(poll(url))
        await connection.aclose()
    assert first.status_code == 200 and first.json() == {"d1": {"apps": {}}}
    assert first.headers["etag"] == '"e2"' and first.request.url == url
    assert second.status_code == 304 and second.content == b""
    assert server.connections == 1 and server.requests == 2
    head = server.heads[0]
    assert head.startswith(b"GET /api/v1/device/d1/state?wait=30 HTTP/1.1\r\n")
    assert b'if-none-match: "e1"' in head.lower() and b"host: 127.0.0.1:" in head.lower()


@on_both_loops
async def test_a_connection_the_server_closed_is_replaced_and_the_poll_sent_again() -> None:
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        if n == 2:
            return False  # dropped while idle, as the poll arrived: no byte of an answer
        writer.write(answer(304))
        return True

    async with serving(script) as (server, url):
        connection = HeldPollConnection()
        assert (await connection.handle(poll(url))).status_code == 304
        assert (await connection.handle(poll(url))).status_code == 304
        await connection.aclose()
    assert server.connections == 2 and server.requests == 3


@on_both_loops
async def test_an_answer_saying_close_closes_the_connection_after_it() -> None:
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> bool:
        writer.write(answer(304, b"", b"connection: close"))
        return True

    async with serving(script) as (server, url):
        connection = HeldPollConnection()
        for _ in range(3):
            assert (await connection.handle(poll(url))).status_code == 304
        await connection.aclose()
    assert server.connections == 3


@on_both_loops
async def test_a_poll_not_answered_in_its_time_is_a_read_timeout() -> None:
    async def script(reader: asyncio.StreamReader, _w: asyncio.StreamWriter, _n: int) -> bool:
        await reader.read()  # never answers
        return False

    async with serving(script) as (_server, url):
        connection = HeldPollConnection()
        with pytest.raises(httpx.ReadTimeout):
            await connection.handle(poll(url, read=0.1))
        await connection.aclose()


@on_both_loops
async def test_a_new_connection_closed_before_answering_is_a_read_error() -> None:
    async def script(_r: asyncio.StreamReader, _w: asyncio.StreamWriter, _n: int) -> bool:
        return False

    async with serving(script) as (server, url):
        connection = HeldPollConnection()
        with pytest.raises(httpx.ReadError):
            await connection.handle(poll(url))
    assert server.connections == 1  # not sent again: the server got it and said nothing


@on_both_loops
async def test_an_answer_that_is_not_http_is_a_protocol_error() -> None:
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> bool:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        return True

    async with serving(script) as (_server, url):
        with pytest.raises(httpx.RemoteProtocolError):
            await HeldPollConnection().handle(poll(url))


@on_both_loops
async def test_no_server_is_a_connect_error() -> None:
    async with serving(lambda *_: asyncio.sleep(0, False)) as (_server, url):
        pass  # closed: nothing listens on its port now
    with pytest.raises(httpx.ConnectError):
        await HeldPollConnection().handle(poll(url))


@on_both_loops
async def test_a_poll_given_up_leaves_its_connection_for_a_new_one() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        if n == 1:
            await asyncio.sleep(0.2)  # answered after the agent stopped waiting
            writer.write(answer(200, JSON))
        else:
            writer.write(answer(304))
        return True

    async with serving(script) as (server, url):
        connection = HeldPollConnection()
        given_up = asyncio.ensure_future(connection.handle(poll(url)))
        await asyncio.sleep(0.05)
        given_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await given_up
        await asyncio.sleep(0.3)  # the late answer arrives, to no one
        assert (await connection.handle(poll(url))).status_code == 304
        await connection.aclose()
    assert server.connections == 2
