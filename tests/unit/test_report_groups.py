"""Group commit of reports (devices.report_groups), with a write function of our own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy.exc import OperationalError

from fleetwave.devices.report_groups import ReportGroups


class Writes:
    """Records each group written; fails a group holding ``bad``, or every group."""

    def __init__(self, bad: str | None = None, down: bool = False) -> None:
        self.groups: list[list[str]] = []
        self.bad, self.down = bad, down

    async def __call__(self, items: Sequence[str]) -> None:
        await asyncio.sleep(0)  # a transaction yields: others queue meanwhile
        if self.down:
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        if self.bad in items:
            raise ValueError(f"cannot store {self.bad}")
        self.groups.append(list(items))


def groups_of(writes: Writes, max_group: int = 500) -> ReportGroups[str]:
    return ReportGroups(
        writes, key=lambda item: item.split(":")[0], unavailable=lambda _: True, max_group=max_group
    )


async def test_reports_queued_during_a_write_go_out_together_in_arrival_order() -> None:
    writes = Writes()
    groups = groups_of(writes)
    first = asyncio.create_task(groups.store("d0:1"))
    await asyncio.sleep(0)  # its write has begun
    await asyncio.gather(first, *(groups.store(f"d{i}:1") for i in range(1, 6)))
    assert writes.groups == [["d0:1"], ["d1:1", "d2:1", "d3:1", "d4:1", "d5:1"]]


async def test_a_devices_second_report_waits_for_the_next_group() -> None:
    writes = Writes()
    groups = groups_of(writes)
    await asyncio.gather(*(groups.store(item) for item in ["a:1", "a:2", "b:1", "a:3", "b:2"]))
    assert writes.groups == [["a:1", "b:1"], ["a:2", "b:2"], ["a:3"]]


async def test_groups_are_bounded() -> None:
    writes = Writes()
    groups = groups_of(writes, max_group=2)
    await asyncio.gather(*(groups.store(f"d{i}:1") for i in range(5)))
    assert [len(group) for group in writes.groups] == [2, 2, 1]


async def test_a_bad_report_fails_alone_and_the_rest_of_its_group_is_written() -> None:
    writes = Writes(bad="d3:1")
    groups = groups_of(writes)
    outcomes = await asyncio.gather(
        *(groups.store(f"d{i}:1") for i in range(5)), return_exceptions=True
    )
    assert [type(o).__name__ for o in outcomes] == ["NoneType"] * 3 + ["ValueError", "NoneType"]
    assert sorted(item for group in writes.groups for item in group) == [
        "d0:1",
        "d1:1",
        "d2:1",
        "d4:1",
    ]


async def test_with_the_database_down_every_report_of_the_group_fails_without_retries() -> None:
    writes = Writes(down=True)
    calls = 0

    async def counted(items: Sequence[str]) -> None:
        nonlocal calls
        calls += 1
        await writes(items)

    groups: ReportGroups[str] = ReportGroups(counted, key=str, unavailable=lambda _: True)
    outcomes = await asyncio.gather(
        *(groups.store(f"d{i}") for i in range(4)), return_exceptions=True
    )
    assert all(isinstance(o, OperationalError) for o in outcomes)
    assert calls == 1  # the group failed as one: no report tried again alone


async def test_a_caller_that_goes_away_does_not_stop_the_write() -> None:
    writes = Writes()
    groups = groups_of(writes)
    first = asyncio.create_task(groups.store("a:1"))
    second = asyncio.create_task(groups.store("b:1"))
    await asyncio.sleep(0)
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.sleep(0.01)
    assert ["b:1"] in writes.groups or ["a:1", "b:1"] in writes.groups
