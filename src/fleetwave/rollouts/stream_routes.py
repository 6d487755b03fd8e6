"""The live event stream: ``GET /api/v1/events/stream`` (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from fleetwave.api_document import errors
from fleetwave.bootstrap import Container
from fleetwave.errors import InvalidInput
from fleetwave.rollouts.stream import SSE_HEARTBEAT, SSE_OPENING, sse_message
from fleetwave.schemas import MAX_ROW_ID
from fleetwave.web import container, require_admin

router = APIRouter(prefix="/api/v1", tags=["rollouts"], dependencies=[Depends(require_admin)])
App = Annotated[Container, Depends(container)]


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404)},
)
async def event_stream(
    app: App,
    rollout_id: str | None = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ROW_ID, description="replay the events after this id")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="sent by a reconnecting client")
    ] = None,
) -> StreamingResponse:
    """Every event of the log as it happens (``id:`` its id, ``event:`` its type, ``data:`` its
    JSON), optionally of one rollout. ``Last-Event-ID`` (or ``?after=``) replays the events
    after that id first, so a reconnecting client misses nothing; without either the stream
    starts with the next event. A comment line is sent every ``event_stream_heartbeat`` s."""
    cursor = _resume_from(last_event_id, after)
    if rollout_id is not None:
        rollout_id = await app.rollouts.resolve(rollout_id)  # a short id will do
        await app.event_stream.check_rollout(rollout_id)
    return StreamingResponse(
        _sse(app, cursor, rollout_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _resume_from(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not (text.isascii() and text.isdigit() and int(text) <= MAX_ROW_ID):
        raise InvalidInput.one("Last-Event-ID", "must be the id of an event (an integer)")
    return int(text)


async def _sse(app: Container, cursor: int | None, rollout_id: str | None) -> AsyncIterator[str]:
    opened = False
    async for event in app.event_stream.follow(cursor, rollout_id):
        if event is not None:
            yield sse_message(event)
        else:
            yield SSE_HEARTBEAT if opened else SSE_OPENING
            opened = True


class EndsResponses(Protocol):
    def shut_down(self) -> None: ...


def end_streams_on_exit_signals(*hubs: EndsResponses) -> None:
    """Make SIGINT/SIGTERM end every open stream (and answer every held poll) at once.

    uvicorn waits for open responses to finish before it runs the application's shutdown, and
    a stream never finishes by itself: so the signal handler uvicorn installed is wrapped to
    end the streams first. uvicorn restores its predecessors' handlers when it stops.
    """
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def chained(sig: int, frame: Any, previous: Any = previous) -> None:
            for hub in hubs:
                loop.call_soon_threadsafe(hub.shut_down)
            previous(sig, frame)

        try:
            signal.signal(number, chained)
        except ValueError:  # not the main thread: nobody's signals to wrap
            return
