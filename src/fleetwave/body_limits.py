"""Every request body bounded, and its sender's credentials checked before it is read.

FastAPI reads and parses a route's body model before any of the route's dependencies run, so
``require_admin`` alone would let a client without a token make the server hold a body of any
size. This ASGI layer sits in front of every route, so no route can forget it:

- a body whose ``Content-Length`` passes :data:`MAX_BODY_BYTES` is refused (413) before a byte
  of it is read; a chunked body is counted as it is read and refused at the limit;
- a body sent to a route that needs credentials (:func:`credential_needed`) without them is
  refused (401) before it is read: the admin API checks the token (or a dashboard session) in
  full; the device protocol, whose keys live in the database, checks that one is sent.

Webhooks are verified from their bodies (signatures), so they are only bounded. The dashboard's
forms check the session before reading the form (its dependency runs before the form is read).
Requests without a body (the device poll above all) pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from enum import Enum
from typing import Any

from starlette.requests import Request

from fleetwave.bootstrap import Container
from fleetwave.errors import Unauthorized
from fleetwave.web import (
    MAX_BODY_BYTES,
    PayloadTooLarge,
    authenticate,
    device_key,
    error,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MISSING_KEY = "missing key: send X-Device-API-Key or Authorization: Bearer <key>"


class Credential(Enum):
    NONE = "none"  # public, or verified from the body itself (webhook signatures)
    ADMIN = "admin"  # the admin token, or a dashboard session
    DEVICE = "device"  # a device key, or a fleet's provisioning key to register with


def credential_needed(path: str) -> Credential:
    """What a request to ``path`` must carry before its body is read. Everything under
    ``/api/v1/`` is the admin's unless it is the device protocol or a webhook, so a new admin
    route is covered without being listed."""
    if path.startswith("/api/v1/webhooks/") and path != "/api/v1/webhooks/deliveries":
        return Credential.NONE
    if path.startswith("/api/v1/device/"):
        return Credential.DEVICE
    if path.startswith("/api/v1/"):
        return Credential.ADMIN
    return Credential.NONE


def declared_body(headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None]:
    """Whether the request has a body, and its declared length (None when chunked, or when
    the length is malformed, which the HTTP server itself refuses)."""
    length: int | None = None
    has_body = False
    for name, value in headers:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
            has_body = has_body or length != 0
        elif name == b"transfer-encoding":
            has_body = True
    return has_body, length


class BodyLimits:
    def __init__(self, app: ASGIApp, container: Container, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.container, self.limit = app, container, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        has_body, length = (
            declared_body(scope["headers"]) if scope["type"] == "http" else (False, None)
        )
        if not has_body:
            await self.app(scope, receive, send)
            return
        if length is not None and length > self.limit:
            await error(413, PayloadTooLarge(self.limit).detail)(scope, receive, send)
            return
        refusal = await self._refusal(scope)
        if refusal is not None:
            await error(401, str(refusal), **{"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self._bounded(scope, receive, send)

    async def _refusal(self, scope: Scope) -> Unauthorized | None:
        needed = credential_needed(scope["path"])
        request = Request(scope)  # headers and cookies only: the body stays unread
        try:
            if needed is Credential.ADMIN:
                await authenticate(request, self.container)
            elif needed is Credential.DEVICE and device_key(request) is None:
                raise Unauthorized(MISSING_KEY)
        except Unauthorized as refused:
            return refused
        return None

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a ``receive`` that stops at the limit; the route's error handler
        answers the 413 (a route that swallows it is answered here)."""
        size, started = 0, False

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.limit:
                raise PayloadTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except PayloadTooLarge as exc:
            if started:
                raise
            await error(413, exc.detail)(scope, receive, send)
