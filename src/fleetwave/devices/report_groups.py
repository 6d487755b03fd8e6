"""Reports written in groups: one transaction for all that arrived while the last was written.

A report that changes a device's rollout status locks the rollout's row. Written one per
transaction, the reports of a batch's thousands of devices queued on that lock, each holding a
pooled connection and a dozen round trips, until the pool was empty and polls, the monitor
and the admin API waited behind them. Here each process writes at most one group at a time:
the reports that came in meanwhile wait in memory, and the next group writes them all with a
fixed number of set-based statements (group commit).

Each report's caller still waits for its own group's commit, so a report that was answered is
stored. One bad report must not fail the others: when a group fails, its reports are written
again one by one, and each caller gets its own outcome; unless the database itself is
unavailable, which every one of them would meet again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError

Item = TypeVar("Item")
MAX_GROUP = 500  # reports per transaction: bounds its statements' size and its lock time


class ReportGroups(Generic[Item]):
    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[None]],
        key: Callable[[Item], Hashable],
        unavailable: Callable[[DBAPIError], bool],
        max_group: int = MAX_GROUP,
    ) -> None:
        self.write, self.key, self.unavailable = write, key, unavailable
        self.max_group = max_group
        self.pending: list[tuple[Item, asyncio.Future[None]]] = []
        self.writing: asyncio.Task[None] | None = None

    async def store(self, item: Item) -> None:
        """Write ``item`` with whatever else is waiting; returns once it is committed."""
        done = asyncio.get_running_loop().create_future()
        self.pending.append((item, done))
        if self.writing is None or self.writing.done():
            self.writing = asyncio.create_task(self._write_pending())
        await asyncio.shield(done)  # a caller that goes away does not stop the others' write

    async def _write_pending(self) -> None:
        while self.pending:
            group = self._next_group()
            try:
                await self._write_group(group)
            finally:  # cancelled (shutdown): nobody waits for ever
                for _, done in group:
                    if not done.done():
                        done.set_exception(RuntimeError("the report was not written"))

    def _next_group(self) -> list[tuple[Item, asyncio.Future[None]]]:
        """The oldest waiting reports, one per device (a device's next report waits for the
        next group, so reports of one device are written in the order they came)."""
        group: list[tuple[Item, asyncio.Future[None]]] = []
        rest: list[tuple[Item, asyncio.Future[None]]] = []
        keys: set[Hashable] = set()
        for entry in self.pending:
            key = self.key(entry[0])
            if key in keys or len(group) >= self.max_group:
                rest.append(entry)
            else:
                keys.add(key)
                group.append(entry)
        self.pending = rest
        return group

    async def _write_group(self, group: list[tuple[Item, asyncio.Future[None]]]) -> None:
        try:
            await self.write([item for item, _ in group])
        except Exception as error:
            if len(group) == 1 or (isinstance(error, DBAPIError) and self.unavailable(error)):
                for _, done in group:
                    _fail(done, error)
                return
            for item, done in group:  # find the bad one(s): each alone
                try:
                    await self.write([item])
                except Exception as alone:
                    _fail(done, alone)
                else:
                    _succeed(done)
            return
        for _, done in group:
            _succeed(done)


def _succeed(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _fail(done: asyncio.Future[None], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
        with contextlib.suppress(BaseException):
            done.exception()  # retrieved: a caller gone away leaves no "never retrieved" log
