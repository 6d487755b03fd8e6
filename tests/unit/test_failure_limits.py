"""Limits on failed device authentications: the pure rules as tables, the bounded limiter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleetwave.clock import ManualClock
from fleetwave.devices.failed_auth import (
    FailedAuthentications,
    KeyVerdict,
    Limit,
    applying_limit,
)
from fleetwave.ratelimit import FailureLimiter, FailureWindow, failure_wait, failure_window_after

MINUTE = timedelta(minutes=1)
RIGHT, WRONG, UNKNOWN = KeyVerdict.RIGHT, KeyVerdict.WRONG, KeyVerdict.UNKNOWN


@pytest.mark.parametrize(
    ("verdict", "address_limited", "uuid_limited", "expected"),
    [
        (RIGHT, False, False, None),
        (RIGHT, True, False, None),  # a device behind a failing NAT keeps being served
        (RIGHT, False, True, None),  # an attacker cannot lock a device out of its uuid
        (RIGHT, True, True, None),
        (WRONG, False, False, None),  # not limited: it is refused 401/403 and counted
        (UNKNOWN, False, False, None),
        (WRONG, True, False, Limit.ADDRESS),
        (UNKNOWN, True, False, Limit.ADDRESS),  # a limited address gets no database work
        (WRONG, False, True, Limit.UUID),
        (UNKNOWN, False, True, None),  # may be the device's own key: the database tells
        (WRONG, True, True, Limit.ADDRESS),
        (UNKNOWN, True, True, Limit.ADDRESS),
    ],
)
def test_which_limit_refuses_a_request(
    verdict: KeyVerdict, address_limited: bool, uuid_limited: bool, expected: Limit | None
) -> None:
    assert applying_limit(verdict, address_limited, uuid_limited) is expected


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (None, 100.0, FailureWindow(100.0, 1)),
        (FailureWindow(100.0, 1), 130.0, FailureWindow(100.0, 2)),
        (FailureWindow(100.0, 5), 159.9, FailureWindow(100.0, 6)),
        (FailureWindow(100.0, 5), 160.0, FailureWindow(160.0, 1)),  # the window has ended
        (FailureWindow(100.0, 5), 500.0, FailureWindow(500.0, 1)),
    ],
)
def test_a_failure_counts_in_the_window_it_falls_in(
    window: FailureWindow | None, now: float, expected: FailureWindow
) -> None:
    assert failure_window_after(window, now, 60.0) == expected


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (None, 100.0, None),
        (FailureWindow(100.0, 2), 110.0, None),  # under the limit of 3
        (FailureWindow(100.0, 3), 110.0, 50.0),  # at it: until the window ends
        (FailureWindow(100.0, 7), 159.0, 1.0),
        (FailureWindow(100.0, 3), 160.0, None),  # the window has ended
    ],
)
def test_a_key_waits_until_its_window_ends_once_it_reached_the_limit(
    window: FailureWindow | None, now: float, expected: float | None
) -> None:
    assert failure_wait(window, now, 3, 60.0) == pytest.approx(expected)


def test_a_limiter_refuses_after_the_limit_and_allows_again_when_the_window_ends() -> None:
    clock = ManualClock()
    limiter = FailureLimiter(clock, limit=2, window=MINUTE, tracked=10)
    assert limiter.failed("10.0.0.1") is False
    clock.advance(timedelta(seconds=20))
    assert limiter.wait("10.0.0.1") is None
    assert limiter.failed("10.0.0.1") is True  # reached just now
    assert limiter.wait("10.0.0.1") == pytest.approx(40.0)
    assert limiter.wait("10.0.0.2") is None

    clock.advance(timedelta(seconds=40))

    assert limiter.wait("10.0.0.1") is None


def test_a_limiter_keeps_at_most_its_tracked_keys_dropping_the_window_that_ends_first() -> None:
    clock = ManualClock()
    limiter = FailureLimiter(clock, limit=1, window=MINUTE, tracked=1_000)
    limiter.failed("the-first")
    clock.advance(timedelta(seconds=1))
    limiter.failed("attacked")
    clock.advance(timedelta(seconds=1))

    for n in range(50_000):  # an attacker inventing a uuid per request
        limiter.failed(f"invented-{n}")

    assert len(limiter) == 1_000
    assert limiter.wait("the-first") is None  # dropped: its window ended first
    assert limiter.wait("invented-49999") is not None


def test_a_limiter_drops_ended_windows_as_new_ones_start() -> None:
    clock = ManualClock()
    limiter = FailureLimiter(clock, limit=1, window=MINUTE, tracked=1_000)
    for n in range(500):
        limiter.failed(f"old-{n}")
    clock.advance(MINUTE)

    limiter.failed("new")

    assert len(limiter) == 1


def test_failures_named_by_address_and_uuid_are_limited_separately() -> None:
    clock = ManualClock()
    failures = FailedAuthentications(clock, per_address=3, per_uuid=2, window=MINUTE)
    failures.failed("10.0.0.1", "dev-1")
    failures.failed("10.0.0.2", "dev-1")

    assert failures.waits("10.0.0.1", "dev-1") == (None, pytest.approx(60.0))
    assert failures.waits("10.0.0.1", "dev-2") == (None, None)
    assert failures.refusal(WRONG, "10.0.0.3", "dev-1") is not None
    assert failures.refusal(RIGHT, "10.0.0.3", "dev-1") is None
    assert failures.refusal(UNKNOWN, "10.0.0.3", "dev-1") is None


def test_a_report_names_no_uuid_so_only_its_address_counts() -> None:
    clock = ManualClock()
    failures = FailedAuthentications(clock, per_address=2, per_uuid=1, window=MINUTE)
    failures.failed("10.0.0.1", None)
    failures.failed("10.0.0.1", None)

    refusal = failures.refusal(UNKNOWN, "10.0.0.1", None)

    assert refusal is not None and refusal.retry_after == pytest.approx(60.0)
    assert "address" in str(refusal)
    assert len(failures.by_uuid) == 0
