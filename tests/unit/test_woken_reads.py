"""Polls woken together share one read of their targets; a failed read fails each of them; what
the read finds refills the poll cache, unless the device changed again meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from fleetwave.devices import woken_reads
from fleetwave.devices.poll_cache import CachedDevice, PollCache
from fleetwave.devices.targets import ServedTarget
from fleetwave.devices.woken_reads import WokenReads


class OneConnection:
    """A Database whose single reads all use one (fake) connection."""

    @contextlib.asynccontextmanager
    async def single_read(self) -> AsyncIterator[object]:
        yield object()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    asked: list[list[str]] = []

    async def served_targets(_conn: Any, uuids: Sequence[str]) -> dict[str, ServedTarget]:
        asked.append(list(uuids))
        if "broken" in uuids:
            raise ConnectionError("the database went away")
        found = {}
        for u in uuids:
            if u != "gone":
                etag = f'"{u}-etag"'
                found[u] = ServedTarget(etag, {u: {}}, CachedDevice(f"{u}-key", etag, True, None))
        return found

    monkeypatch.setattr(woken_reads, "served_targets", served_targets)
    return asked


async def test_polls_asking_in_the_same_turn_share_one_read(reads: list[list[str]]) -> None:
    woken = WokenReads(OneConnection(), PollCache(100))  # type: ignore[arg-type]
    answers = await asyncio.gather(*(woken.target(u) for u in ("a", "b", "gone", "a")))
    assert reads == [["a", "b", "gone"]]
    assert [a.etag if a else None for a in answers] == ['"a-etag"', '"b-etag"', None, '"a-etag"']


async def test_polls_asking_after_a_read_started_get_the_next_one(reads: list[list[str]]) -> None:
    woken = WokenReads(OneConnection(), PollCache(100))  # type: ignore[arg-type]
    assert await woken.target("a") is not None
    assert await woken.target("b") is not None
    assert reads == [["a"], ["b"]]


async def test_a_failed_read_fails_every_poll_that_shared_it(reads: list[list[str]]) -> None:
    woken = WokenReads(OneConnection(), PollCache(100))  # type: ignore[arg-type]
    answers = await asyncio.gather(
        woken.target("a"), woken.target("broken"), return_exceptions=True
    )
    assert [type(a) for a in answers] == [ConnectionError, ConnectionError]
    assert await woken.target("c") is not None  # the next read is a new one


async def test_what_a_read_finds_is_cached_for_the_next_poll(reads: list[list[str]]) -> None:
    cache = PollCache(100)
    woken = WokenReads(OneConnection(), cache)  # type: ignore[arg-type]
    await asyncio.gather(woken.target("a"), woken.target("gone"))
    cached = cache.get("a")
    assert cached is not None and (cached.key_hash, cached.etag) == ("a-key", '"a-etag"')
    assert cache.owner_of("a-key") == "a"
    assert cache.get("gone") is None


async def test_a_device_changed_during_the_read_is_not_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = PollCache(100)

    async def served_targets(_conn: Any, uuids: Sequence[str]) -> dict[str, ServedTarget]:
        cache.forget(["a"])  # a newer target committed and was announced while this read ran
        return {"a": ServedTarget('"old"', {"a": {}}, CachedDevice("k", '"old"', True, None))}

    monkeypatch.setattr(woken_reads, "served_targets", served_targets)
    woken = WokenReads(OneConnection(), cache)  # type: ignore[arg-type]
    assert await woken.target("a") is not None
    assert cache.get("a") is None
