"""Device-facing API, compatible with the iotistic agent (DESIGN.md §3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from fleetwave.bootstrap import Container
from fleetwave.web import container, device_key, json_body

router = APIRouter(prefix="/api/v1/device", tags=["device protocol"])
App = Annotated[Container, Depends(container)]
LONG_POLL_HEADER = "X-Fleetwave-Long-Poll"  # the longest ?wait= this server holds a poll for


@router.get("/{uuid}/state", responses={304: {"description": "target unchanged"}})
async def poll_target_state(
    uuid: str,
    request: Request,
    app: App,
    wait: Annotated[
        float | None,
        Query(
            description="long-poll: when the answer would be 304, hold it up to this many "
            "seconds (at most the X-Fleetwave-Long-Poll header's value) until the target changes"
        ),
    ] = None,
) -> Response:
    answer = await app.protocol.poll(
        uuid, device_key(request), request.headers.get("if-none-match"), wait
    )
    headers = {"ETag": answer.etag, "Cache-Control": "no-cache"}
    if app.protocol.long_poll_max > 0:
        headers[LONG_POLL_HEADER] = f"{app.protocol.long_poll_max:g}"
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    return JSONResponse(answer.body, headers=headers)


@router.patch("/state")
async def report_current_state(request: Request, app: App) -> dict[str, Any]:
    reporter = await app.protocol.reporter(device_key(request))  # the key before the body
    uuid = await app.protocol.report(reporter, await json_body(request))
    return {"status": "ok", "uuid": uuid}
