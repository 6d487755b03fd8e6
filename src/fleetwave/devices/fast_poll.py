"""The usual device poll answered before routing: ``GET /api/v1/device/{uuid}/state`` with the
device's key and the ETag it already has, answered 304 from the poll cache.

Every device sends this request every poll interval, so its cost sets how many devices a
server carries. Routing it through the framework (route matching, dependency solving,
response objects) costs several times the work of answering it, so this ASGI layer answers it
first when :meth:`DeviceProtocol.answer_from_memory` can: a 304 with the headers the route
would send, or the refusal of a key the cache knows is wrong (as fast as a 304, so a device
with a bad key costs no more than a good one). Anything else — a cache miss, a changed target,
a long-poll, a device coming online — goes on to the route, which answers it in full.

A source address or uuid past its limit on failed authentications is answered 429 here too
(``Retry-After`` in whole seconds, rounded up), without the database.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fleetwave.devices.protocol import DeviceProtocol, PollAnswer
from fleetwave.errors import Forbidden, TooManyRequests, Unauthorized
from fleetwave.web import error

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


class FastPoll:
    def __init__(self, app: ASGIApp, protocol: DeviceProtocol) -> None:
        self.app, self.protocol = app, protocol

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self._from_memory(scope) if scope["type"] == "http" else None
        if answer is None:
            await self.app(scope, receive, send)
        elif isinstance(answer, PollAnswer):
            headers = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.protocol.answer_headers(answer.etag).items()
            ]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        elif isinstance(answer, Unauthorized):  # as web's error handlers answer them
            await error(401, str(answer), **{"WWW-Authenticate": "Bearer"})(scope, receive, send)
        elif isinstance(answer, TooManyRequests):
            wait = str(max(1, math.ceil(answer.retry_after)))
            await error(429, str(answer), **{"Retry-After": wait})(scope, receive, send)
        else:
            await error(403, str(answer))(scope, receive, send)

    def _from_memory(
        self, scope: Scope
    ) -> PollAnswer | Unauthorized | Forbidden | TooManyRequests | None:
        path: str = scope["path"]
        if scope["method"] != "GET" or scope["query_string"] or not path.startswith(PREFIX):
            return None
        uuid = path[len(PREFIX) : -len(SUFFIX)]
        if not path.endswith(SUFFIX) or not uuid or "/" in uuid:
            return None
        key, if_none_match = poll_credentials(scope["headers"])
        return self.protocol.answer_from_memory(
            uuid, key, if_none_match, address=source_address(scope)
        )
