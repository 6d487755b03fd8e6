"""Reading the targets of woken long polls together.

A batch that starts wakes thousands of held polls at once (a :class:`TargetWatch` wake-up each).
Each woken poll must re-read its device's target to answer it: the polls woken together ask
:class:`WokenReads` (a :class:`ReadTogether`), and one query (per 5,000 devices on SQLite)
reads them all, since they were all made ready in the same turn of the event loop.

What the read finds also refills the poll cache (the change that woke the polls made it forget
those devices), so each device's next poll, with the ETag it was just given, is answered and
held from memory instead of reading its row again, one query each.
"""

from __future__ import annotations

from fleetwave.devices.poll_cache import PollCache
from fleetwave.devices.read_together import ReadTogether
from fleetwave.devices.targets import ServedTarget, served_targets
from fleetwave.store.db import Database


class WokenReads(ReadTogether[ServedTarget]):
    def __init__(self, db: Database, cache: PollCache) -> None:
        super().__init__()
        self._db, self._cache = db, cache

    async def target(self, uuid: str) -> ServedTarget | None:
        """``uuid``'s target and its ETag, read with every other poll's asking now; None if the
        device is gone."""
        return await self.get(uuid)

    async def _read(self, keys: list[str]) -> dict[str, ServedTarget]:
        since = self._cache.begin()
        async with self._db.single_read() as conn:
            found = await served_targets(conn, keys)
        for uuid, target in found.items():
            if target.device is not None:
                self._cache.put(uuid, target.device, since)
        return found
