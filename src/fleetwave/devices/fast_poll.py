"""The usual device poll answered before routing: ``GET /api/v1/device/{uuid}/state`` with the
device's key and the ETag it already has, answered 304 from the poll cache.

Every device sends this request every poll interval, so its cost sets how many devices a
server carries. Routing it through the framework (route matching, dependency solving,
response objects) costs several times the work of answering it, so this ASGI layer answers it
first when :meth:`DeviceProtocol.answer_from_memory` can: a 304 with the headers the route
would send, or the refusal of a key the cache knows is wrong (as fast as a 304, so a device
with a bad key costs no more than a good one). Anything else — a cache miss, a changed target,
a long-poll, a device coming online — goes on to the route, which answers it in full.

A long-poll (``?wait=N``, nothing else in the query) that memory would answer 304 is held here
too (:meth:`DeviceProtocol.held`) and answered from here when its device's target changes or
the wait ends. A batch that starts wakes thousands of held polls at once; answered through the
framework, each answer costs several times its own work, and the last of a batch's devices
would hear of their new target seconds after the first.

A source address or uuid past its limit on failed authentications is answered 429 here too
(``Retry-After`` in whole seconds, rounded up), without the database.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import JSONResponse

from fleetwave.devices.protocol import DeviceProtocol, PollAnswer
from fleetwave.errors import Forbidden, TooManyRequests, Unauthorized
from fleetwave.store.db import database_unavailable
from fleetwave.web import database_unavailable_error, error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX, SUFFIX = "/api/v1/device/", "/state"
CREDENTIAL_HEADERS = (b"x-device-api-key", b"authorization", b"if-none-match")


def poll_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The device key (``X-Device-API-Key``, else a bearer token) and ``If-None-Match``; of a
    repeated header, the first, as the route reads them."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name in CREDENTIAL_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    scheme, _, token = found.get(b"authorization", "").partition(" ")
    bearer = token.strip() or None if scheme.lower() == "bearer" else None
    return found.get(b"x-device-api-key") or bearer, found.get(b"if-none-match")


def source_address(scope: Scope) -> str:
    """The client's address, as ``web.client_address`` reads it from a request."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def held_wait(query: bytes) -> float | None:
    """How long a poll asks to be held: 0 for no query, N for exactly ``wait=N``; None for
    any other query (the route reads it, and refuses what it must)."""
    if not query:
        return 0.0
    name, _, value = query.partition(b"=")
    if name != b"wait" or b"&" in value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class MemoryAnswer:
    """What memory answers a poll, with what a long-poll needs to be held."""

    answer: PollAnswer | Unauthorized | Forbidden | TooManyRequests
    uuid: str
    if_none_match: str | None
    wait: float


class FastPoll:
    def __init__(self, app: ASGIApp, protocol: DeviceProtocol) -> None:
        self.app, self.protocol = app, protocol

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._from_memory(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        answer = found.answer
        if isinstance(answer, PollAnswer):
            if found.wait:
                held = await self._held(found, answer)
                if isinstance(held, Exception):  # the database is away: as the route answers
                    unavailable = database_unavailable_error(scope["method"], scope["path"], held)
                    await unavailable(scope, receive, send)
                    return
                answer = held
            self.protocol.counted(answer)
            await self._answer(answer)(scope, receive, send)
        elif isinstance(answer, Unauthorized):  # as web's error handlers answer them
            await error(401, str(answer), **{"WWW-Authenticate": "Bearer"})(scope, receive, send)
        elif isinstance(answer, TooManyRequests):
            wait_seconds = str(max(1, math.ceil(answer.retry_after)))
            await error(429, str(answer), **{"Retry-After": wait_seconds})(scope, receive, send)
        else:
            await error(403, str(answer))(scope, receive, send)

    def _answer(self, answer: PollAnswer) -> ASGIApp:
        headers = self.protocol.answer_headers(answer.etag)
        if answer.body is None:
            return NotModified(headers)
        return JSONResponse(answer.body, headers=headers)

    async def _held(
        self, found: MemoryAnswer, unchanged: PollAnswer
    ) -> PollAnswer | DBAPIError | PoolTimeout:
        """The long-poll's answer once held, or why the database could not give it."""
        try:
            return await self.protocol.held(found.uuid, found.if_none_match, unchanged, found.wait)
        except (DBAPIError, PoolTimeout) as exc:
            if isinstance(exc, DBAPIError) and not database_unavailable(exc):
                raise
            return exc

    def _from_memory(self, scope: Scope) -> MemoryAnswer | None:
        """What memory answers the poll; None to route it."""
        path: str = scope["path"]
        if scope["method"] != "GET" or not path.startswith(PREFIX) or not path.endswith(SUFFIX):
            return None
        wait = held_wait(scope["query_string"])
        if wait is None or not self.protocol.valid_wait(wait):
            return None
        uuid = path[len(PREFIX) : -len(SUFFIX)]
        if not uuid or "/" in uuid:
            return None
        key, if_none_match = poll_credentials(scope["headers"])
        answer = self.protocol.answer_from_memory(
            uuid, key, if_none_match, address=source_address(scope)
        )
        return None if answer is None else MemoryAnswer(answer, uuid, if_none_match, wait)


class NotModified:
    """A 304 with the poll's headers, and no body."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 304, "headers": self.headers})
        await send({"type": "http.response.body", "body": b""})
