"""Device-facing API, compatible with the iotistic agent (DESIGN.md §3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from fleetwave.api_document import DEVICE_KEY, DEVICE_REFUSALS, errors, requires
from fleetwave.bootstrap import Container
from fleetwave.devices.logs import BatchFormat
from fleetwave.devices.schemas import LOG_BATCH_BODY, LogsReceived
from fleetwave.errors import InvalidInput
from fleetwave.web import (
    UnsupportedContentType,
    client_address,
    container,
    device_key,
    json_body,
    unpacked_body,
)

router = APIRouter(prefix="/api/v1/device", tags=["device protocol"])
App = Annotated[Container, Depends(container)]


WAIT_PARAMETER = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "minimum": 0},
    "description": "long-poll: when the answer would be 304, hold it up to this many seconds "
    "(at most the X-Fleetwave-Long-Poll header's value) until the target changes",
}


def wait_seconds(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput.one("wait", "must be a number of seconds") from None


@router.get(
    "/{uuid}/state",
    summary="Poll the target state",
    responses={304: {"description": "target unchanged"}, **errors(*DEVICE_REFUSALS, 422)},
    openapi_extra={"parameters": [WAIT_PARAMETER], **requires(DEVICE_KEY)},
)
async def poll_target_state(uuid: str, request: Request) -> Response:
    """What the device should run (its apps and config). Send the last answer's ETag as
    If-None-Match: 304 while nothing changed; with ``wait`` the 304 is held until it does."""
    # The hottest route: parameters are read by hand (FastAPI's dependency solving costs more
    # than the poll itself); ``wait`` is documented through openapi_extra.
    app: Container = request.app.state.container
    answer = await app.protocol.poll(
        uuid,
        device_key(request),
        request.headers.get("if-none-match"),
        wait_seconds(request.query_params.get("wait")),
        address=client_address(request),
    )
    headers = app.protocol.answer_headers(answer.etag)
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    return JSONResponse(answer.body, headers=headers)


@router.patch(
    "/state",
    summary="Report the current state",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **requires(DEVICE_KEY),
    },
    responses=errors((403, "the body reports for another device"), 415, 422, 429),
)
async def report_current_state(request: Request, app: App) -> dict[str, Any]:
    """The device's report, keyed by its uuid: what it runs, its metrics, its online state
    (the iotistic agent's body, gzipped or not)."""
    # the key before the body
    reporter = await app.protocol.reporter(device_key(request), address=client_address(request))
    uuid = await app.protocol.report(reporter, await json_body(request))
    return {"status": "ok", "uuid": uuid}


BATCH_FORMATS = {
    "application/x-ndjson": BatchFormat.NDJSON,
    "application/ndjson": BatchFormat.NDJSON,
    "application/jsonl": BatchFormat.NDJSON,
    "text/plain": BatchFormat.NDJSON,
    "": BatchFormat.NDJSON,
    "application/json": BatchFormat.JSON,
}


def batch_format(content_type: str | None) -> BatchFormat:
    media = (content_type or "").partition(";")[0].strip().lower()
    if media not in BATCH_FORMATS:
        raise UnsupportedContentType(media, ("application/x-ndjson", "application/json"))
    return BATCH_FORMATS[media]


@router.post(
    "/{uuid}/logs",
    response_model=LogsReceived,
    summary="Send log lines",
    openapi_extra={**LOG_BATCH_BODY, **requires(DEVICE_KEY)},
    responses=errors((413, "more than 1 MiB (unpacked) or 10,000 lines"), *DEVICE_REFUSALS, 415),
)
async def receive_logs(uuid: str, request: Request, app: App) -> LogsReceived:
    """The device's container and system log lines, as the iotistic agent ships them. Only
    the device's newest lines are kept (``FLEETWAVE_DEVICE_LOG_LINES``, ``…_MAX_AGE``)."""
    kind = batch_format(request.headers.get("content-type"))
    await app.protocol.authenticate(uuid, device_key(request), address=client_address(request))
    received = await app.device_logs.receive(uuid, await unpacked_body(request), kind)
    return LogsReceived(received=received.received, stored=received.stored)
