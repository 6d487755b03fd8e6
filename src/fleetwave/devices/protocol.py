"""The device-facing use cases: authenticate a device, answer its poll, take its report.

The poll is the hottest path of the system (every device, every minute). The usual one (right
key, the ETag it has, last-seen fresh) is answered from the :class:`PollCache` without touching
the database; a miss reads one indexed row and caches it. Last-seen refreshes are written
behind (:class:`LastSeenWriter`); a device coming online is written at once.

A report whose content and target have not changed since the last one (its digest, kept in
``device_current_state.report_digest``) writes nothing but last-seen.

Failed authentications are counted per source address and per uuid
(:class:`FailedAuthentications`); past their limits requests are refused 429 from memory,
except those whose key memory confirms as the device's own.

A poll with ``wait`` (long-poll) that would be answered 304 is held, holding no database
connection, until the device's target changes (a :class:`TargetWatch` wake-up, then its target
re-read in one query with every poll woken with it, :class:`WokenReads`) or the wait ends; when
memory answered it, it is held and answered before routing (:mod:`~fleetwave.devices.fast_poll`).
Plain polls take the same path as ever.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from fleetwave.clock import Clock
from fleetwave.devices.failed_auth import FailedAuthentications, KeyVerdict
from fleetwave.devices.last_seen import LastSeenWriter, PresenceWrite, mark_seen, presence_write
from fleetwave.devices.poll_cache import CachedDevice, PollCache
from fleetwave.devices.report_groups import ReportGroups
from fleetwave.devices.report_store import ReceivedReport, ReportListener, store_reports
from fleetwave.devices.reporters import Reporter, ReporterReads
from fleetwave.devices.target_watch import TargetWatch, Watcher
from fleetwave.devices.targets import served_targets
from fleetwave.devices.woken_reads import WokenReads
from fleetwave.domain.report import parse_state_report, report_digest
from fleetwave.domain.text_rules import check_json
from fleetwave.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from fleetwave.security import hash_key
from fleetwave.settings import Settings
from fleetwave.store.db import Database, database_unavailable
from fleetwave.store.tables import devices
from fleetwave.telemetry import Telemetry

LONG_POLL_HEADER = "X-Fleetwave-Long-Poll"  # the longest ?wait= this server holds a poll for
MISSING_KEY = "missing device key: send X-Device-API-Key or Authorization: Bearer"
UNKNOWN_KEY = "unknown device key"


@dataclass(frozen=True)
class PollAnswer:
    etag: str
    body: dict[str, Any] | None  # None: not modified


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison, lists and ``*``)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return "*" in candidates or etag in (c.removeprefix("W/") for c in candidates)


class DeviceProtocol:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        listener: ReportListener | None = None,
        *,
        telemetry: Telemetry,
        watch: TargetWatch,
        cache: PollCache,
        last_seen: LastSeenWriter,
        failures: FailedAuthentications,
    ) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.listener, self.telemetry = listener, telemetry
        self.watch, self.cache, self.last_seen = watch, cache, last_seen
        self.failures = failures
        self.woken = WokenReads(db, cache)
        self.reporter_reads = ReporterReads(db)
        self.reports: ReportGroups[ReceivedReport] = ReportGroups(
            self._store_reports, key=lambda r: r.uuid, unavailable=database_unavailable
        )

    @property
    def long_poll_max(self) -> float:
        """The longest ``wait`` a poll may ask for (0: long-poll is not offered)."""
        return self.settings.long_poll_max

    async def poll(
        self,
        uuid: str,
        api_key: str | None,
        if_none_match: str | None,
        wait: float | None = None,
        *,
        address: str,
    ) -> PollAnswer:
        """The device's target state, or "not modified"; with ``wait`` seconds, a "not
        modified" is held until the target changes or the wait ends. ``address``: the
        request's source, whose failures are counted."""
        if wait is not None and not self.valid_wait(wait):
            raise InvalidInput.one(
                "wait", f"must be a number of seconds from 0 to {self.long_poll_max:g}"
            )
        if not wait:
            answer = await self._answer(uuid, api_key, if_none_match, address)
        else:
            # watching before the first read: a change committed after it wakes us
            async with self.watch.watch(uuid) as watcher:
                answer = await self._answer(uuid, api_key, if_none_match, address)
                if answer.body is None:
                    answer = await self._hold(uuid, if_none_match, answer, watcher, wait)
        return self.counted(answer)

    def counted(self, answer: PollAnswer) -> PollAnswer:
        """Count a poll's answer (in the metrics)."""
        self.telemetry.device_polls.inc()
        if answer.body is None:
            self.telemetry.device_polls_not_modified.inc()
        return answer

    def valid_wait(self, wait: float) -> bool:
        """Whether a poll may ask to be held ``wait`` seconds."""
        return math.isfinite(wait) and 0 <= wait <= self.long_poll_max

    async def held(
        self, uuid: str, if_none_match: str | None, unchanged: PollAnswer, wait: float
    ) -> PollAnswer:
        """A long-poll that :meth:`answer_from_memory` would answer ``unchanged`` (304), held
        up to ``wait`` seconds as :meth:`poll` holds one: until the device's target changes.
        Memory answered the same turn of the event loop as the watch begins here, so a change
        committed since is either forgotten by the cache already or wakes this watch."""
        async with self.watch.watch(uuid) as watcher:
            return await self._hold(uuid, if_none_match, unchanged, watcher, wait)

    def answer_from_memory(
        self, uuid: str, api_key: str | None, if_none_match: str | None, *, address: str
    ) -> PollAnswer | Unauthorized | Forbidden | TooManyRequests | None:
        """The usual poll, answered without awaiting anything: 304 (to hold, for a long-poll:
        :meth:`held`) when the cache knows the device, the key is its key, the ETag matches and
        last-seen needs no write at once; the refusal when the cache knows the key is wrong, or
        429 when a limit on failures applies (see :mod:`~fleetwave.devices.failed_auth`); else
        None, and :meth:`poll` answers."""
        key_hash = hash_key(api_key) if api_key else None
        device = self.cache.get(uuid)
        if device is None or not _same_key(key_hash, device):
            limited, refusal = self._unconfirmed(uuid, key_hash, device, address)
            if limited is not None:
                return limited
            if refusal is not None:
                self.failures.failed(address, uuid)
            return refusal
        if not if_none_match or not etag_matches(if_none_match, device.etag):
            return None
        if not self._seen_without_waiting(uuid, device, self.clock.now()):
            return None
        self.telemetry.device_polls_from_cache.inc()
        return PollAnswer(etag=device.etag, body=None)  # counted by the caller, once answered

    async def _answer(
        self, uuid: str, api_key: str | None, if_none_match: str | None, address: str
    ) -> PollAnswer:
        now = self.clock.now()
        device = await self._device(uuid, api_key, address)
        etag, body = device.etag, None
        if not etag_matches(if_none_match, etag):
            async with self.db.single_read() as conn:
                target = (await served_targets(conn, [uuid])).get(uuid)
            if target is None:  # deleted since it was authenticated
                raise Unauthorized(UNKNOWN_KEY)
            etag, body = target.etag, target.body
        await self._note_seen(uuid, device, now)
        return PollAnswer(etag=etag, body=body)

    async def _hold(
        self,
        uuid: str,
        if_none_match: str | None,
        unchanged: PollAnswer,
        watcher: Watcher,
        wait: float,
    ) -> PollAnswer:
        """Wait for a wake-up, re-read the ETag, answer if it no longer matches."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not watcher.closed:
            if not await watcher.wait(deadline - loop.time()) or watcher.closed:
                break
            target = await self.woken.target(uuid)  # read with the polls woken with it
            if target is None:  # deleted meanwhile: its next poll is refused
                break
            if not etag_matches(if_none_match, target.etag):
                return PollAnswer(etag=target.etag, body=target.body)
        return unchanged

    async def authenticate(self, uuid: str, api_key: str | None, *, address: str) -> None:
        """Raise 401 for a bad key, 403 for a good key of another device, 429 past a limit
        on failed authentications."""
        await self._device(uuid, api_key, address)

    async def _device(self, uuid: str, api_key: str | None, address: str) -> CachedDevice:
        """The device ``uuid`` if ``api_key`` is its key; from memory when cached."""
        key_hash = hash_key(api_key) if api_key else None
        device = self.cache.get(uuid)
        if device is None or not _same_key(key_hash, device):
            limited, _ = self._unconfirmed(uuid, key_hash, device, address)
            if limited is not None:
                raise limited
        if device is not None:
            self.telemetry.device_polls_from_cache.inc()
        else:
            device = await self._load(uuid)
        if device is None or not _same_key(key_hash, device):
            refusal = await self._refusal(uuid, key_hash)
            self.failures.failed(address, uuid)
            raise refusal
        return device

    def _unconfirmed(
        self, uuid: str, key_hash: str | None, device: CachedDevice | None, address: str
    ) -> tuple[TooManyRequests | None, Unauthorized | Forbidden | None]:
        """For a key memory does not confirm as ``uuid``'s: the 429 a limit on failures gives,
        and the refusal memory already knows, if any."""
        verdict, refusal = self._judged_from_memory(uuid, key_hash, device)
        return self.failures.refusal(verdict, address, uuid), refusal

    async def _load(self, uuid: str) -> CachedDevice | None:
        since = self.cache.begin()
        async with self.db.single_read() as conn:
            row = (
                await conn.execute(
                    select(
                        devices.c.api_key_hash,
                        devices.c.target_etag,
                        devices.c.is_online,
                        devices.c.last_connectivity_event,
                    ).where(devices.c.uuid == uuid)
                )
            ).first()
        if row is None:
            return None
        device = CachedDevice(
            row.api_key_hash, row.target_etag, row.is_online, row.last_connectivity_event
        )
        self.cache.put(uuid, device, since)
        return device

    async def _note_seen(self, uuid: str, device: CachedDevice, now: datetime) -> None:
        """Last-seen for a device heard from now: written at once if it comes online, else
        behind (if stale enough to be worth writing)."""
        if self._seen_without_waiting(uuid, device, now):
            return
        async with self.db.transaction() as conn:
            await mark_seen(conn, uuid, now)
        device.online, device.last_seen = True, now

    def _seen_without_waiting(self, uuid: str, device: CachedDevice, now: datetime) -> bool:
        """Note a device online heard from now (written behind, if worth it); False if it is
        coming online, which is written at once."""
        offline_after = self.settings.device_offline_after
        write = presence_write(device.online, device.last_seen, now, offline_after)
        if write is PresenceWrite.NOW:
            return False
        if write is PresenceWrite.BEHIND:
            self.last_seen.seen(uuid, now)
            device.last_seen = now
        return True

    def answer_headers(self, etag: str) -> dict[str, str]:
        """The headers of every poll answer, 200 or 304."""
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if self.long_poll_max > 0:
            headers[LONG_POLL_HEADER] = f"{self.long_poll_max:g}"
        return headers

    async def reporter(self, api_key: str | None, *, address: str) -> Reporter:
        """The device a report's key belongs to (checked before its body is read)."""
        key_hash = hash_key(api_key) if api_key else None
        known_wrong = key_hash is None or self.cache.is_unknown_key(key_hash)
        if known_wrong:
            verdict = KeyVerdict.WRONG
        else:
            assert key_hash is not None
            owned = self.cache.owner_of(key_hash) is not None
            verdict = KeyVerdict.RIGHT if owned else KeyVerdict.UNKNOWN
        limited = self.failures.refusal(verdict, address, None)
        if limited is not None:
            raise limited
        if key_hash is None or known_wrong:
            self.failures.failed(address, None)
            raise Unauthorized(MISSING_KEY if key_hash is None else UNKNOWN_KEY)
        since = self.cache.begin()
        reporter = await self.reporter_reads.get(key_hash)  # with the reports arriving now
        if reporter is None:
            self.cache.put_unknown_key(key_hash, since)
            self.failures.failed(address, None)
            raise Unauthorized(UNKNOWN_KEY)
        return reporter

    async def report(self, reporter: Reporter, body: Any) -> str:
        """Store a device's report of its current state. Returns the device's uuid."""
        uuid = reporter.uuid
        if not isinstance(body, dict) or not body:
            raise InvalidInput.one("body", "must be an object keyed by the device's uuid")
        check_json(list(body), "body")  # the keys: their values are parse_state_report's
        strangers = [key for key in body if key != uuid]
        if strangers:
            raise Forbidden(
                f"this key belongs to device {uuid}; it cannot report for {strangers[0]}"
            )
        report = parse_state_report(body[uuid], field_prefix=uuid)
        digest = report_digest(reporter.target_version, body[uuid])
        now = self.clock.now()
        if digest == reporter.last_digest and report.is_online:
            self.telemetry.device_reports_unchanged.inc()
            presence = self.cache.get(uuid) or CachedDevice(
                "", "", reporter.online, reporter.last_seen
            )
            await self._note_seen(uuid, presence, now)
            return uuid
        await self.reports.store(ReceivedReport(uuid, report, digest, now))
        if (cached := self.cache.get(uuid)) is not None:
            cached.online, cached.last_seen = report.is_online, now
        return uuid

    async def _store_reports(self, received: Sequence[ReceivedReport]) -> None:
        """One group's transaction (see ``report_groups``)."""
        async with self.db.transaction() as conn:
            await store_reports(conn, received, self.listener)

    async def _refusal(self, uuid: str, key_hash: str | None) -> Unauthorized | Forbidden:
        """401 for a bad key, 403 for a good key used on another device's state."""
        if key_hash is None:
            return Unauthorized(MISSING_KEY)
        refusal = self._refusal_from_memory(uuid, key_hash)
        if refusal is not None:
            return refusal
        since = self.cache.begin()
        async with self.db.single_read() as conn:
            owner = (
                await conn.execute(select(devices.c.uuid).where(devices.c.api_key_hash == key_hash))
            ).scalar_one_or_none()
        if owner is None:
            self.cache.put_unknown_key(key_hash, since)
            return Unauthorized(UNKNOWN_KEY)
        return Forbidden(f"this key belongs to device {owner}, not {uuid}")

    def _judged_from_memory(
        self, uuid: str, key_hash: str | None, device: CachedDevice | None
    ) -> tuple[KeyVerdict, Unauthorized | Forbidden | None]:
        """What memory knows of a key that is not ``uuid``'s cached key: wrong (with its
        refusal), or unknown (the database must tell)."""
        if key_hash is None:
            return KeyVerdict.WRONG, Unauthorized(MISSING_KEY)
        refusal = self._refusal_from_memory(uuid, key_hash)
        if refusal is not None or device is None:
            return (KeyVerdict.UNKNOWN if refusal is None else KeyVerdict.WRONG), refusal
        return KeyVerdict.WRONG, None  # the cached device's key is another

    def _refusal_from_memory(self, uuid: str, key_hash: str) -> Unauthorized | Forbidden | None:
        """Why this key may not read ``uuid``'s state, if the cache knows: it is another
        cached device's key (403), or no device's (401)."""
        owner = self.cache.owner_of(key_hash)
        if owner is not None and owner != uuid:
            return Forbidden(f"this key belongs to device {owner}, not {uuid}")
        if self.cache.is_unknown_key(key_hash):
            return Unauthorized(UNKNOWN_KEY)
        return None


def _same_key(key_hash: str | None, device: CachedDevice) -> bool:
    """Whether the key (its hash; None: no key sent) is the device's, in constant time."""
    return key_hash is not None and hmac.compare_digest(key_hash, device.key_hash)
