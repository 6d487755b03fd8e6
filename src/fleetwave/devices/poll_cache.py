"""What a device's poll is answered from, kept in memory: its key hash, target ETag, presence.

The usual poll (right key, the ETag it already has, last-seen fresh) is then answered without
touching the database. The cache is only as good as what tells it of changes, so:

- it forgets a device on every change that could alter the answer: a new target, a new key, a
  device created or deleted (:class:`~fleetwave.devices.targets.DevicesChanged`, in this
  process on commit, and from other replicas through ``NOTIFY fleetwave_targets``);
- it is trusted only while those notifications arrive (``trusted``: always on SQLite, where
  one process serves; on PostgreSQL while the LISTEN connection is up). When that connection
  drops, everything is forgotten and nothing is cached until it is back;
- an answer read from the database is cached only if nothing about that device was forgotten
  while it was read (a sequence number taken before the read), so a change that commits and
  is announced during the read never leaves a stale entry behind;
- keys nobody has are remembered briefly (``unknown_key_seconds``), so a device polling with a
  wrong key is refused from memory too, but unknown uuids never fill the cache.

It is bounded: the least recently used devices are dropped past ``size`` entries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

FORGOTTEN_KEPT = 10_000  # per-device forget records kept for fills in flight; past it: all


@dataclass(slots=True)
class CachedDevice:
    key_hash: str
    etag: str
    online: bool  # the stored is_online flag
    last_seen: datetime | None  # stored, or on its way (written behind)


class PollCache:
    def __init__(
        self,
        size: int,
        *,
        trusted: Callable[[], bool] = lambda: True,
        unknown_key_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size, self.trusted = size, trusted
        self.unknown_key_seconds, self._monotonic = unknown_key_seconds, monotonic
        self._devices: OrderedDict[str, CachedDevice] = OrderedDict()
        self._key_owners: dict[str, str] = {}  # key hash → uuid, for cached devices
        self._unknown_keys: OrderedDict[str, float] = OrderedDict()  # key hash → until
        self._sequence = 0  # bumped by every forget
        self._forgotten: OrderedDict[str, int] = OrderedDict()  # uuid → sequence forgotten at
        self._floor = 0  # fills that began before this sequence are refused

    def __len__(self) -> int:
        return len(self._devices)

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self.trusted()

    def get(self, uuid: str) -> CachedDevice | None:
        if not self.enabled:
            return None
        found = self._devices.get(uuid)
        if found is not None:
            self._devices.move_to_end(uuid)
        return found

    def owner_of(self, key_hash: str) -> str | None:
        """The cached device this key belongs to, if any."""
        return self._key_owners.get(key_hash) if self.enabled else None

    def is_unknown_key(self, key_hash: str) -> bool:
        """Whether this key was recently found to belong to no device."""
        until = self._unknown_keys.get(key_hash) if self.enabled else None
        return until is not None and self._monotonic() < until

    def begin(self) -> int:
        """Take before reading what will be cached; give it to :meth:`put`."""
        return self._sequence

    def put(self, uuid: str, device: CachedDevice, since: int) -> None:
        """Cache what was read from the database, unless the device changed since ``since``."""
        if not self.enabled or self._changed_since(uuid, since):
            return
        self._drop(uuid)
        self._devices[uuid] = device
        self._key_owners[device.key_hash] = uuid
        while len(self._devices) > self.size:
            self._drop(next(iter(self._devices)))

    def put_unknown_key(self, key_hash: str, since: int) -> None:
        if not self.enabled or since < self._floor or self._sequence != since:
            return  # a device may have been created or re-keyed meanwhile
        self._unknown_keys[key_hash] = self._monotonic() + self.unknown_key_seconds
        self._unknown_keys.move_to_end(key_hash)
        while len(self._unknown_keys) > max(self.size, 1):
            self._unknown_keys.popitem(last=False)

    def forget(self, uuids: Iterable[str]) -> None:
        """These devices changed: their next poll reads the database."""
        self._sequence += 1
        self._unknown_keys.clear()
        for uuid in uuids:
            self._drop(uuid)
            self._forgotten[uuid] = self._sequence
            self._forgotten.move_to_end(uuid)
        while len(self._forgotten) > FORGOTTEN_KEPT:
            _, dropped_at = self._forgotten.popitem(last=False)
            self._floor = max(self._floor, dropped_at)

    def forget_all(self) -> None:
        """Anything may have changed (notifications were missed): start again."""
        self._sequence += 1
        self._floor = self._sequence
        self._devices.clear()
        self._key_owners.clear()
        self._unknown_keys.clear()
        self._forgotten.clear()

    def _changed_since(self, uuid: str, since: int) -> bool:
        return since < self._floor or self._forgotten.get(uuid, -1) > since

    def _drop(self, uuid: str) -> None:
        dropped = self._devices.pop(uuid, None)
        if dropped is not None and self._key_owners.get(dropped.key_hash) == uuid:
            del self._key_owners[dropped.key_hash]
