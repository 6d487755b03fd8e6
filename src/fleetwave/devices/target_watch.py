"""Waking held device polls (``?wait=N``) when their device's target changes.

In one process the database's ``committed`` listeners say so (:class:`TargetsChanged`, published
by :func:`fleetwave.devices.targets.replace_targets`, so a rolled-back change wakes no one).
Across replicas on PostgreSQL the same writer NOTIFYs ``fleetwave_targets`` in its transaction
with the uuids (or "*": everyone), relayed here by one LISTEN connection per process.

A wake-up only says "look again": the poll re-reads its device's ETag, so a wake-up for a change
that makes no difference, or several coalesced into one, answers nothing wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence

from fleetwave.devices.targets import EVERYONE, TARGETS_CHANNEL, TargetsChanged
from fleetwave.store.listen import WakeFlag, Wakeups


class Watcher(WakeFlag):
    """One held poll's wake-up flag."""

    def __init__(self, watch: TargetWatch) -> None:
        super().__init__(lambda: watch.closed)


class TargetWatch(Wakeups):
    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, TARGETS_CHANNEL)
        self._watchers: dict[str, set[Watcher]] = {}

    @property
    def waiting(self) -> int:
        """How many polls are held."""
        return sum(len(watchers) for watchers in self._watchers.values())

    def published(self, items: Sequence[object]) -> None:
        """A ``Database.committed`` listener: wake the polls of devices whose target changed."""
        for item in items:
            if isinstance(item, TargetsChanged):
                self.wake(item.uuids)

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
            watchers = self._watchers.get(uuid, set())
            watchers.discard(watcher)
            if not watchers:
                self._watchers.pop(uuid, None)

    def relayed(self, payload: str | None) -> None:
        if payload is None or payload == EVERYONE:
            self.wake_all()
        else:
            self.wake(payload.split())
