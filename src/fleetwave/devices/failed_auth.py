"""Failed device authentications, limited per source address and per device uuid.

A client sending wrong keys costs the database two lookups a request (the device, then whose
key it is) unless the poll cache already knows the answer; a flood of them starved the polls of
real devices. So every refusal of a device key (401 or 403) is counted against the request's
source address and against the uuid it named, and once either has had too many in its window
further requests are answered 429 with ``Retry-After``, from memory.

The rule (:func:`applying_limit`) limits failures, never devices that authenticate:

- a key the poll cache confirms as the device's own is always let through, whatever its
  address or uuid did: many devices behind one NAT share an address, and one of them (or an
  attacker) failing must not lock the others out, nor can an attacker lock a device out by
  failing on its uuid;
- a limited address is refused anything memory cannot vouch for, without touching the
  database (a device the cache does not hold yet waits out the window, then gets through);
- a limited uuid is refused keys memory knows are wrong; a key memory cannot judge goes on to
  the database as usual (it then caches the device, so the next wrong key is refused from
  memory), so its own device still gets in.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import Enum

from fleetwave.clock import Clock
from fleetwave.errors import TooManyRequests
from fleetwave.ratelimit import FailureLimiter

log = logging.getLogger(__name__)

TRACKED = 100_000  # addresses, and uuids, remembered at most (a few tens of MB at worst)


class KeyVerdict(Enum):
    """What memory knows of a key for a device, without the database."""

    RIGHT = "right"  # the cached device's own key
    WRONG = "wrong"  # missing, another device's, a cached device's mismatch, or known unknown
    UNKNOWN = "unknown"  # the device is not cached and the key is not known


class Limit(Enum):
    ADDRESS = "address"
    UUID = "uuid"


def applying_limit(verdict: KeyVerdict, address_limited: bool, uuid_limited: bool) -> Limit | None:
    """Which limit refuses this request (429), or None if it goes on to be authenticated."""
    if verdict is KeyVerdict.RIGHT:
        return None
    if address_limited:
        return Limit.ADDRESS
    if uuid_limited and verdict is KeyVerdict.WRONG:
        return Limit.UUID
    return None


class FailedAuthentications:
    def __init__(
        self,
        clock: Clock,
        *,
        per_address: int,
        per_uuid: int,
        window: timedelta,
        tracked: int = TRACKED,
    ) -> None:
        self.by_address = FailureLimiter(clock, per_address, window, tracked)
        self.by_uuid = FailureLimiter(clock, per_uuid, window, tracked)

    def waits(self, address: str, uuid: str | None) -> tuple[float | None, float | None]:
        """How long the address, and the uuid, are limited for (None: not limited)."""
        return self.by_address.wait(address), self.by_uuid.wait(uuid) if uuid else None

    def refusal(
        self, verdict: KeyVerdict, address: str, uuid: str | None
    ) -> TooManyRequests | None:
        """The 429 for this request, if a limit applies to it (see :func:`applying_limit`)."""
        address_wait, uuid_wait = self.waits(address, uuid)
        if address_wait is None and uuid_wait is None:
            return None
        limit = applying_limit(verdict, address_wait is not None, uuid_wait is not None)
        if limit is Limit.ADDRESS:
            assert address_wait is not None
            return TooManyRequests(
                "too many failed device authentications from this address; retry later",
                address_wait,
            )
        if limit is Limit.UUID:
            assert uuid_wait is not None
            return TooManyRequests(
                f"too many failed authentications for device {uuid}; retry later", uuid_wait
            )
        return None

    def failed(self, address: str, uuid: str | None) -> None:
        """A device key was refused (401 or 403) for a request from ``address`` naming ``uuid``."""
        if self.by_address.failed(address):
            log.warning(
                "limiting %r: %d failed device authentications", address, self.by_address.limit
            )
        if uuid and self.by_uuid.failed(uuid):
            log.info(
                "limiting wrong keys for device %r: %d failed authentications",
                uuid,
                self.by_uuid.limit,
            )
