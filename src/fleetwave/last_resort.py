"""The outermost layer: an unexpected error is a logged 500 with a JSON body, and the
keep-alive connection it came on stays usable.

Starlette's ServerErrorMiddleware answers an unhandled error (through web's ``unexpected``
handler) and then raises it again, and uvicorn closes the connection of any request whose
application raised, so the client's next request on that connection fails with "connection
reset". Here the error ends: answered once if nothing was sent yet, logged once. Only a
response cut off half-way is left to the server to end by closing the connection: nothing else
can tell the client that what it received is incomplete.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fleetwave.web import LOGGED_ERROR, error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("fleetwave.http")


class LastResort:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = False

        async def watched(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if scope.get(LOGGED_ERROR) is not exc:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started and not complete:
                raise
            if not started:
                await error(500, "internal error")(scope, receive, send)
