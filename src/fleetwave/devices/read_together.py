"""Reads asked for in the same turn of the event loop, made as one query.

Thousands of devices' requests arrive together when a batch starts: their held polls are woken
at once, and each device then reports. Each needs one small read (its target, or whose key it
holds). One query and one pooled connection each would make the last of them wait behind all
the others; instead each asks a :class:`ReadTogether` for its key, and the first to ask
schedules one read of every key asked before it runs, that is, by every request the loop ran
meanwhile. A failed read fails each of them (a 503 if the database is away).
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

Found = TypeVar("Found")


class ReadTogether(Generic[Found]):
    def __init__(self) -> None:
        self._asked: dict[str, list[asyncio.Future[Found | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key: str) -> Found | None:
        """What the read finds for ``key`` (None: nothing), read with every other key asked
        for now."""
        answer: asyncio.Future[Found | None] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(key, []).append(answer)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_asked())
        return await answer

    async def _read(self, keys: list[str]) -> dict[str, Found]:
        """One read of ``keys``: what it found, by key."""
        raise NotImplementedError

    async def _read_asked(self) -> None:
        asked, self._asked, self._reading = self._asked, {}, None
        try:
            found = await self._read(list(asked))
        except BaseException as exc:  # each asker answers the failure
            for answers in asked.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, answers in asked.items():
            for answer in answers:
                if not answer.done():  # its request may have ended meanwhile (shutdown)
                    answer.set_result(found.get(key))
