"""HTTP plumbing shared by the routes: the container, credentials, bodies, errors."""

from __future__ import annotations

import json
import logging
import zlib
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from fleetwave.bootstrap import Container
from fleetwave.domain.json_input import NestedTooDeeply, not_json, parse_json
from fleetwave.domain.log_lines import TooManyLines
from fleetwave.domain.roles import Principal, Role
from fleetwave.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from fleetwave.permissions import Owner, rule_for
from fleetwave.schemas import MAX_ROW_ID, DeviceUuid
from fleetwave.sessions import SESSION_COOKIE
from fleetwave.store.db import database_unavailable

log = logging.getLogger("fleetwave.http")

MAX_BODY_BYTES = 1024 * 1024  # every request body, as sent and as unpacked (body_limits.py)

# Path and query parameters the routes share (their text and JSON rules: fleetwave.schemas)
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
"""An integer id in a path: beyond an INTEGER it is refused (422), not looked up."""
EventCursor = Annotated[
    int, Query(ge=0, le=MAX_ROW_ID, description="the next_cursor of the previous page")
]
RowCursor = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_ID, description="the next_cursor of the previous page")
]
MAX_LOG_ID = 2**63 - 1  # device log lines have BIGINT ids
LogCursor = Annotated[
    int,
    Query(ge=0, le=MAX_LOG_ID, description="the next_cursor of the previous page (a line's id)"),
]
DeviceCursor = Annotated[
    DeviceUuid | None,
    Query(description="the next_cursor of the previous page (a device uuid)"),
]


async def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def device_key(request: Request) -> str | None:
    """The device's key, as the iotistic agent sends it or as a bearer token."""
    return request.headers.get("x-device-api-key") or bearer(request)


# Declared as security schemes so the OpenAPI document says which operations need them; the
# credentials themselves are read by ``bearer`` and the session store.
TOKEN_SCHEME = HTTPBearer(
    scheme_name="bearerToken",
    description="A personal API token (`fleetwave users tokens create`), or the break-glass "
    "admin token: FLEETWAVE_ADMIN_TOKEN, or the one kept in the data directory's admin-token "
    "(`fleetwave admin-token --show`). What each role may call: fleetwave/permissions.py.",
    auto_error=False,
)
SESSION_SCHEME = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="dashboardSession",
    description="The dashboard's session cookie, after signing in at /ui/login.",
    auto_error=False,
)
SAFE_METHODS = frozenset({"GET", "HEAD"})
NO_CREDENTIALS = (
    "this endpoint needs Authorization: Bearer <token> (a personal API token or the admin token)"
)


async def authenticate(request: Request, app: Container) -> Principal:
    """Who the request is: a bearer token's principal, else (reads only) a dashboard session's.

    Kept on the request, so the body layer's check (body_limits.py) and the route's are one."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    token = bearer(request)
    if token is not None:
        principal = await app.authenticator.bearer(token)
        if principal is None:
            raise Unauthorized(
                "invalid token: not the admin token, nor a personal API token in force"
            )
    elif request.method in SAFE_METHODS:
        principal = await app.authenticator.session(request.cookies.get(SESSION_COOKIE))
        if principal is None:
            raise Unauthorized(NO_CREDENTIALS)
    else:
        raise Unauthorized(NO_CREDENTIALS)
    request.state.principal = principal
    return principal


async def authorize(
    request: Request,
    app: Container = Depends(container),
    _token: object = Security(TOKEN_SCHEME),
    _session: object = Security(SESSION_SCHEME),
) -> Principal:
    """The caller, if its role may call this operation (the permission matrix: permissions.py).
    A dashboard session is taken for reads only (GET, HEAD): a change needs a token."""
    return _authorized(request, await authenticate(request, app))


def _authorized(request: Request, principal: Principal) -> Principal:
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path_format", ""))
    if rule is Owner.user_or_admin:
        if principal.role is Role.admin or (
            principal.user_id is not None and request.path_params.get("username") == principal.name
        ):
            return principal
        raise Forbidden(f"{principal.name} may manage only its own tokens; admins manage anyone's")
    if not isinstance(rule, Role):
        raise Forbidden("this operation has no rule in the permission matrix")
    if not principal.role.covers(rule):
        raise Forbidden(
            f"{principal.name} has the {principal.role.value} role; this needs {rule.value}"
        )
    return principal


# The routers' dependencies: every operation of theirs is authorized by the matrix.
require_admin = authorize
Caller = Annotated[Principal, Depends(authorize)]
"""The authorized principal, for a route that records who acted."""


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def raw_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, refused if larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body (see :func:`unpacked_body`), refused if it is not JSON."""
    return parse_json(await unpacked_body(request, limit))


async def unpacked_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, gunzipped if it says ``Content-Encoding: gzip``.

    Newer iotistic agents gzip their reports and logs; the limit holds for the body both as
    sent and as unpacked, so a small bomb cannot become a large one."""
    body = await raw_body(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return _gunzip(body, limit)
    if encoding not in ("", "identity"):
        raise UnsupportedEncoding(encoding)
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    unpacker = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        unpacked = unpacker.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput.one("body", f"is not valid gzip ({exc})") from None
    if len(unpacked) > limit:
        raise PayloadTooLarge(limit)
    if not unpacker.eof:
        raise InvalidInput.one("body", "is not valid gzip (it ends early)")
    return unpacked


class UnsupportedEncoding(Exception):
    def __init__(self, encoding: str) -> None:
        super().__init__(f"Content-Encoding {encoding!r} is not supported; send gzip or none")


class UnsupportedContentType(Exception):
    def __init__(self, content_type: str, accepted: tuple[str, ...]) -> None:
        super().__init__(
            f"Content-Type {content_type!r} is not supported here; send {' or '.join(accepted)}"
        )


class PayloadTooLarge(StarletteHTTPException):
    """A body past the limit; an HTTPException, so FastAPI's body parsing lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body is larger than {limit} bytes")


def error(status: int, message: str, detail: Any = None, **headers: str) -> JSONResponse:
    return ErrorResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


class ErrorResponse(JSONResponse):
    """An error's JSON, written in ASCII: a message that quotes the bad input (a lone
    surrogate, a control character) can always be sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def install_error_handlers(app: FastAPI) -> None:
    simple = {
        NotFound: 404,
        Conflict: 409,
        Forbidden: 403,
        UnsupportedEncoding: 415,
        UnsupportedContentType: 415,
    }
    for kind, status in simple.items():
        app.add_exception_handler(kind, _simple_handler(status))

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return invalid_input(exc)

    @app.exception_handler(PayloadTooLarge)
    async def too_large(_: Request, exc: PayloadTooLarge) -> JSONResponse:
        return error(413, exc.detail)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        return error(401, str(exc), **{"WWW-Authenticate": "Bearer"})

    @app.exception_handler(TooManyRequests)
    async def too_many(_: Request, exc: TooManyRequests) -> JSONResponse:
        return error(429, str(exc), **{"Retry-After": str(max(1, round(exc.retry_after)))})

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        undecodable = _json_decode_error(exc)
        if undecodable is not None:
            return invalid_input(undecodable, "invalid request")
        detail = [{"field": _field_name(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in detail)
        return error(422, f"invalid request: {summary}", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            return invalid_input(NestedTooDeeply("body"))  # FastAPI parsed the body model
        return error(exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if not database_unavailable(exc):
            return await unexpected(request, exc)
        return _database_unavailable(request, exc)

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        return _database_unavailable(request, exc)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # the client hung up while its body was read (a timeout, an overloaded balancer):
        # its doing, not ours; one line, and an answer nobody will read
        log.info("client closed the connection during %s %s", request.method, request.url.path)
        return error(400, "the client closed the connection before its request was read")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        request.scope[LOGGED_ERROR] = exc  # for last_resort: logged once
        return error(500, "internal error", None)


LOGGED_ERROR = "fleetwave.logged_error"


def invalid_input(exc: InvalidInput, summary: str = "invalid input") -> JSONResponse:
    """422, or 400 for JSON too deep to read (no request is valid that way), or 413 for more
    items than one request may carry."""
    if isinstance(exc, NestedTooDeeply):
        status, summary = 400, "invalid request"
    elif isinstance(exc, TooManyLines):
        status, summary = 413, "too large"
    else:
        status = 422
    detail = [{"field": p.field, "message": p.message} for p in exc.problems]
    return error(status, f"{summary}: {exc}", detail)


def _json_decode_error(exc: RequestValidationError) -> InvalidInput | None:
    """FastAPI's "JSON decode error" (located at a character offset, as if it were a field),
    worded as our own bodies' are: ``body: is not valid JSON (… line 1 column 2 …)``."""
    for found in exc.errors():
        if found.get("type") == "json_invalid":
            document = exc.body if isinstance(exc.body, str) else ""
            position = found["loc"][-1] if isinstance(found["loc"][-1], int) else 0
            reason = found.get("ctx", {}).get("error", "not JSON")
            return not_json("body", reason, document, min(position, len(document)))
    return None


DATABASE_RETRY_AFTER_SECONDS = 5


def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return database_unavailable_error(request.method, request.url.path, exc)


def database_unavailable_error(method: str, path: str, exc: Exception) -> JSONResponse:
    """503 with Retry-After, for a request the database could not serve now (logged)."""
    log.warning("database unavailable on %s %s: %s", method, path, type(exc).__name__)
    return error(
        503,
        "the database is unavailable; try again shortly",
        None,
        **{"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def _simple_handler(status: int) -> Any:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return error(status, str(exc), getattr(exc, "detail", None))

    return handle


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"
