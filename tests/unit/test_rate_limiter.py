"""The per-client sliding-window rate limiter, driven by a manual clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleetwave.clock import ManualClock
from fleetwave.ratelimit import RateLimiter

MINUTE = timedelta(minutes=1)


def test_allows_limit_hits_then_asks_to_retry_after_the_window() -> None:
    limiter = RateLimiter(ManualClock(), limit=3, window=MINUTE)

    assert [limiter.retry_after("10.0.0.1") for _ in range(3)] == [None, None, None]
    assert limiter.retry_after("10.0.0.1") == pytest.approx(60.0)


def test_retry_after_counts_down_as_time_passes() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=1, window=MINUTE)
    limiter.retry_after("a")

    clock.advance(timedelta(seconds=45))

    assert limiter.retry_after("a") == pytest.approx(15.0)


@pytest.mark.parametrize("limit", [1, 2, 5, 60])
def test_hit_after_limit_is_refused_with_positive_retry_after(limit: int) -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=limit, window=MINUTE)
    for _ in range(limit):
        assert limiter.retry_after("a") is None
        clock.advance(timedelta(milliseconds=10))

    retry = limiter.retry_after("a")

    assert retry is not None
    assert 0 < retry <= 60


def test_allows_again_once_the_window_has_passed() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=2, window=MINUTE)
    limiter.retry_after("a")
    limiter.retry_after("a")
    assert limiter.retry_after("a") is not None

    clock.advance(MINUTE)

    assert limiter.retry_after("a") is None
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("a") is not None


def test_still_refused_just_before_the_window_has_passed() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=1, window=MINUTE)
    limiter.retry_after("a")

    clock.advance(MINUTE - timedelta(milliseconds=1))

    assert limiter.retry_after("a") == pytest.approx(0.001, abs=1e-6)


def test_window_slides_so_only_the_oldest_hit_expires() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=3, window=MINUTE)
    for _ in range(3):
        assert limiter.retry_after("a") is None
        clock.advance(timedelta(seconds=20))

    # now at +60 s: the hit at 0 s has expired, those at 20 s and 40 s have not
    assert limiter.retry_after("a") is None
    clock.advance(timedelta(seconds=1))
    assert limiter.retry_after("a") == pytest.approx(19.0)


def test_refused_hits_do_not_extend_the_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=1, window=MINUTE)
    limiter.retry_after("a")
    for _ in range(5):
        clock.advance(timedelta(seconds=10))
        assert limiter.retry_after("a") is not None

    clock.advance(timedelta(seconds=10))

    assert limiter.retry_after("a") is None


def test_clients_are_limited_independently() -> None:
    limiter = RateLimiter(ManualClock(), limit=1, window=MINUTE)

    assert limiter.retry_after("10.0.0.1") is None
    assert limiter.retry_after("10.0.0.1") is not None
    assert limiter.retry_after("10.0.0.2") is None
    assert limiter.retry_after("10.0.0.2") is not None


def test_default_window_is_one_minute() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=1)
    limiter.retry_after("a")

    assert limiter.retry_after("a") == pytest.approx(60.0)
    clock.advance(MINUTE)
    assert limiter.retry_after("a") is None


def test_forgetting_idle_clients_keeps_a_limited_client_limited() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, limit=1, window=MINUTE)
    for n in range(5_000):
        limiter.retry_after(f"idle-{n}")
    clock.advance(timedelta(seconds=45))
    limiter.retry_after("busy")
    clock.advance(timedelta(seconds=20))

    for n in range(5_002):  # past 10,000 known clients: the idle ones are dropped
        assert limiter.retry_after(f"recent-{n}") is None

    assert limiter.retry_after("busy") == pytest.approx(40.0)
    assert limiter.retry_after("recent-0") == pytest.approx(60.0)
    assert limiter.retry_after("idle-0") is None
