"""The usual device poll answered before routing: ``GET /api/v1/device/{uuid}/state`` with the
device's key and the ETag it already has, answered 304 from the poll cache.

Every device sends this request every poll interval, so its cost sets how many devices a
server carries. Routing it through the framework (route matching, dependency solving,
response objects) costs several times the work of answering it, so this ASGI layer answers it
first when :meth:`DeviceProtocol.not_modified_from_memory` can, with the headers the route
would send. Anything else — a cache miss, a wrong key, a changed target, a long-poll, a device
coming online — goes on to the route, which answers it in full.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fleetwave.devices.protocol import DeviceProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX, SUFFIX = "/api/v1/device/", "/state"


def poll_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The device key (``X-Device-API-Key``, else a bearer token) and ``If-None-Match``."""
    key = bearer = if_none_match = None
    for name, value in headers:
        if name == b"x-device-api-key":
            key = value.decode("latin-1")
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = token.strip() or None
    return key or bearer, if_none_match


class FastPoll:
    def __init__(self, app: ASGIApp, protocol: DeviceProtocol) -> None:
        self.app, self.protocol = app, protocol

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        etag = self._not_modified(scope) if scope["type"] == "http" else None
        if etag is None:
            await self.app(scope, receive, send)
            return
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.protocol.answer_headers(etag).items()
        ]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _not_modified(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        if scope["method"] != "GET" or scope["query_string"] or not path.startswith(PREFIX):
            return None
        uuid = path[len(PREFIX) : -len(SUFFIX)]
        if not path.endswith(SUFFIX) or not uuid or "/" in uuid:
            return None
        key, if_none_match = poll_credentials(scope["headers"])
        return self.protocol.not_modified_from_memory(uuid, key, if_none_match)
