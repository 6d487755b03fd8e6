"""Hearing that devices changed: waking their held polls (``?wait=N``), and making this
process's poll cache forget them.

In one process the database's ``committed`` listeners say so (:class:`DevicesChanged`,
published by :func:`fleetwave.devices.targets.announce_changes`, so a rolled-back change wakes
no one). Across replicas on PostgreSQL the same writer NOTIFYs ``fleetwave_targets`` in its
transaction with the uuids, relayed here by one LISTEN connection per process. While that
connection is down the cache is off (see :mod:`fleetwave.devices.poll_cache`); when it is back,
everything is forgotten and every held poll looks again.

This process hears of its own changes both ways; each change is acted on once
(:mod:`fleetwave.devices.heard_changes`).

A wake-up only says "look again": the poll re-reads its device's ETag, so a wake-up for a change
that makes no difference, or several coalesced into one, answers nothing wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence, Set

from fleetwave.devices.heard_changes import HeardChanges
from fleetwave.devices.poll_cache import PollCache
from fleetwave.devices.targets import EVERYONE, TARGETS_CHANNEL, DevicesChanged, read_payload
from fleetwave.store.change_file import change_file_for
from fleetwave.store.listen import WakeFlag, Wakeups


class Watcher(WakeFlag):
    """One held poll's wake-up flag. From its wake-up until it waits again or its hold ends,
    its poll is being answered (:meth:`TargetWatch.woken_answered`)."""

    def __init__(self, watch: TargetWatch) -> None:
        super().__init__(lambda: watch.closed)
        self._watch = watch

    def wake(self) -> None:
        super().wake()
        self._watch.answering(self)

    async def wait(self, seconds: float) -> bool:
        self._watch.answered(self)  # back to waiting: done with its last wake-up
        return await super().wait(seconds)


class TargetWatch(Wakeups):
    def __init__(self, database_url: str, cache_size: int) -> None:
        super().__init__(database_url, TARGETS_CHANNEL)
        self._watchers: dict[str, set[Watcher]] = {}
        self._answering: set[Watcher] = set()  # woken, their polls not answered yet
        self._all_answered = asyncio.Event()
        self._all_answered.set()
        self._change_file = change_file_for(database_url)  # SQLite's stand-in for NOTIFY
        self.cache = PollCache(cache_size, trusted=self._hears_every_change)
        self._heard = HeardChanges()

    def _hears_every_change(self) -> bool:
        """Whether the cache may be trusted now: on PostgreSQL while the relay listens (started
        on first use), on SQLite always, once another process's changes are taken in."""
        if self._change_file is not None and self._change_file.changed_elsewhere():
            self.relayed(None)
        if self.relayed_here:
            return True
        self.start_listening()
        return False

    @property
    def waiting(self) -> int:
        """How many polls are held."""
        return sum(len(watchers) for watchers in self._watchers.values())

    def published(self, items: Sequence[object]) -> None:
        """A ``Database.committed`` listener: forget the devices that changed, wake their polls."""
        for item in items:
            if isinstance(item, DevicesChanged):
                self._changed(self._heard.news(item.tag, item.uuids, whole=True))
                if self._change_file is not None and self._change_file.announce():
                    self.relayed(None)

    def _changed(self, uuids: Set[str]) -> None:
        if uuids:
            self.cache.forget(uuids)
            self.wake(uuids)

    def wake(self, uuids: Iterable[str]) -> None:
        changed = uuids if isinstance(uuids, frozenset | set) else set(uuids)
        # walk the smaller side: a batch may change 100,000 targets while a few polls are held
        if len(changed) > len(self._watchers):
            held = [uuid for uuid in self._watchers if uuid in changed]
        else:
            held = [uuid for uuid in changed if uuid in self._watchers]
        for uuid in held:
            for watcher in self._watchers[uuid]:
                watcher.wake()

    def wake_all(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.wake()

    def answering(self, watcher: Watcher) -> None:
        self._answering.add(watcher)
        self._all_answered.clear()

    def answered(self, watcher: Watcher) -> None:
        self._answering.discard(watcher)
        if not self._answering:
            self._all_answered.set()

    async def woken_answered(self, longest: float) -> None:
        """Until every woken poll is answered (or waits again), ``longest`` seconds at most."""
        if self._answering:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(longest):
                    await self._all_answered.wait()

    @contextlib.asynccontextmanager
    async def watch(self, uuid: str) -> AsyncIterator[Watcher]:
        """Be woken when ``uuid``'s target may have changed, from now on (see
        :meth:`Wakeups.listening`)."""
        watcher = Watcher(self)
        self._watchers.setdefault(uuid, set()).add(watcher)
        try:
            await self.listening()
            yield watcher
        finally:
            self.answered(watcher)
            watchers = self._watchers.get(uuid, set())
            watchers.discard(watcher)
            if not watchers:
                self._watchers.pop(uuid, None)

    def relayed(self, payload: str | None) -> None:
        if payload is None or payload == EVERYONE:
            self.cache.forget_all()
            self.wake_all()
        else:
            tag, uuids = read_payload(payload)
            self._changed(self._heard.news(tag, frozenset(uuids), whole=False))

    def relay_lost(self) -> None:
        self.cache.forget_all()
