"""Reading the targets of woken long polls together.

A batch that starts wakes thousands of held polls at once (a :class:`TargetWatch` wake-up each).
Each woken poll must re-read its device's target to answer it; one query and one pooled
connection per poll would make the last of them wait behind all the others, and behind every
report competing for the pool. Instead the polls woken together ask :class:`WokenReads` for their
targets, and one query (per 5,000 devices on SQLite) reads them all: the first poll to ask
schedules the read, and every poll woken by the same wake-up asks before it runs, since they
were all made ready in the same turn of the event loop.
"""

from __future__ import annotations

import asyncio

from fleetwave.devices.targets import ServedTarget, served_targets
from fleetwave.store.db import Database


class WokenReads:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._asked: dict[str, list[asyncio.Future[ServedTarget | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def target(self, uuid: str) -> ServedTarget | None:
        """``uuid``'s target and its ETag, read with every other poll's asking now; None if the
        device is gone."""
        answer: asyncio.Future[ServedTarget | None] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(uuid, []).append(answer)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_asked())
        return await answer

    async def _read_asked(self) -> None:
        asked, self._asked, self._reading = self._asked, {}, None
        try:
            async with self._db.single_read() as conn:
                found = await served_targets(conn, list(asked))
        except BaseException as exc:  # each poll answers the failure (a 503 if the DB is away)
            for answers in asked.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for uuid, answers in asked.items():
            for answer in answers:
                if not answer.done():  # its poll may have ended meanwhile (shutdown)
                    answer.set_result(found.get(uuid))
