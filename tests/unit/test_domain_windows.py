"""Maintenance windows: a daily [start, end) of local time, possibly across midnight."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.windows import check_window, window_is_open, zone

TWO, FOUR = time(2, 0), time(4, 0)
TEN_PM = time(22, 0)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- check_window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "timezone"),
    [
        pytest.param(None, None, "UTC", id="no window"),
        pytest.param(TWO, FOUR, "Europe/Paris", id="night window"),
        pytest.param(TEN_PM, TWO, "America/New_York", id="across midnight"),
        pytest.param(time(0, 0), time(23, 59), "Asia/Kolkata", id="almost all day"),
    ],
)
def test_check_window_accepts_a_window_or_none(
    start: time | None, end: time | None, timezone: str
) -> None:
    check_window(start, end, timezone)


@pytest.mark.parametrize(
    ("start", "end", "timezone", "field", "fragment"),
    [
        pytest.param(TWO, None, "UTC", "maintenance_window_end", "both", id="start without end"),
        pytest.param(None, FOUR, "UTC", "maintenance_window_start", "both", id="end without start"),
        pytest.param(TWO, TWO, "UTC", "maintenance_window_end", "differ", id="equal start/end"),
        pytest.param(
            TWO,
            FOUR,
            "Mars/Olympus_Mons",
            "maintenance_window_timezone",
            "not a known time zone",
            id="unknown zone",
        ),
        pytest.param(
            TWO, FOUR, "", "maintenance_window_timezone", "not a known time zone", id="empty zone"
        ),
        pytest.param(
            TWO,
            FOUR,
            "../etc/passwd",
            "maintenance_window_timezone",
            "not a known time zone",
            id="path, not a zone",
        ),
        pytest.param(
            TWO,
            FOUR,
            "Paris",
            "maintenance_window_timezone",
            "not a known time zone",
            id="city without region",
        ),
    ],
)
def test_check_window_refuses_naming_the_field(
    start: time | None, end: time | None, timezone: str, field: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_window(start, end, timezone)

    [problem] = caught.value.problems
    assert problem.field == field
    assert fragment in problem.message
    assert field in str(caught.value)


def test_zone_names_the_field_it_is_given() -> None:
    with pytest.raises(InvalidInput) as caught:
        zone("Nowhere/Else", field="policy.timezone")

    assert [p.field for p in caught.value.problems] == ["policy.timezone"]


# --- window_is_open -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 15, 1, 59, 59), False, id="a second before start"),
        pytest.param(utc(2026, 1, 15, 2, 0), True, id="at start: inclusive"),
        pytest.param(utc(2026, 1, 15, 3, 0), True, id="inside"),
        pytest.param(utc(2026, 1, 15, 3, 59, 59), True, id="a second before end"),
        pytest.param(utc(2026, 1, 15, 4, 0), False, id="at end: exclusive"),
        pytest.param(utc(2026, 1, 15, 12, 0), False, id="midday"),
        pytest.param(utc(2026, 1, 15, 0, 0), False, id="midnight"),
    ],
)
def test_a_normal_window_is_open_from_start_until_end(now: datetime, expected: bool) -> None:
    assert window_is_open(now, TWO, FOUR, "UTC") is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 15, 21, 59, 59), False, id="a second before start"),
        pytest.param(utc(2026, 1, 15, 22, 0), True, id="at start"),
        pytest.param(utc(2026, 1, 15, 23, 59, 59), True, id="before midnight"),
        pytest.param(utc(2026, 1, 16, 0, 0), True, id="at midnight"),
        pytest.param(utc(2026, 1, 16, 1, 59, 59), True, id="a second before end"),
        pytest.param(utc(2026, 1, 16, 2, 0), False, id="at end"),
        pytest.param(utc(2026, 1, 16, 12, 0), False, id="midday"),
    ],
)
def test_a_window_across_midnight_is_open_on_both_sides_of_it(
    now: datetime, expected: bool
) -> None:
    assert window_is_open(now, TEN_PM, TWO, "UTC") is expected


@pytest.mark.parametrize(
    ("now", "start", "end", "timezone", "expected"),
    [
        # Paris is UTC+1 in winter, UTC+2 in summer
        pytest.param(utc(2026, 1, 15, 0, 30), TWO, FOUR, "Europe/Paris", False, id="winter 01:30"),
        pytest.param(utc(2026, 1, 15, 1, 30), TWO, FOUR, "Europe/Paris", True, id="winter 02:30"),
        pytest.param(utc(2026, 1, 15, 2, 30), TWO, FOUR, "Europe/Paris", True, id="winter 03:30"),
        pytest.param(utc(2026, 1, 15, 3, 0), TWO, FOUR, "Europe/Paris", False, id="winter 04:00"),
        pytest.param(utc(2026, 7, 15, 0, 0), TWO, FOUR, "Europe/Paris", True, id="summer 02:00"),
        pytest.param(utc(2026, 7, 15, 1, 30), TWO, FOUR, "Europe/Paris", True, id="summer 03:30"),
        pytest.param(utc(2026, 7, 15, 2, 0), TWO, FOUR, "Europe/Paris", False, id="summer 04:00"),
        pytest.param(utc(2026, 7, 14, 23, 59), TWO, FOUR, "Europe/Paris", False, id="summer 01:59"),
        # 2026-03-29: at 01:00 UTC Paris jumps from 02:00 CET to 03:00 CEST
        pytest.param(utc(2026, 3, 29, 0, 59), TWO, FOUR, "Europe/Paris", False, id="DST 01:59"),
        pytest.param(utc(2026, 3, 29, 1, 0), TWO, FOUR, "Europe/Paris", True, id="DST 03:00"),
        pytest.param(utc(2026, 3, 29, 1, 59), TWO, FOUR, "Europe/Paris", True, id="DST 03:59"),
        pytest.param(utc(2026, 3, 29, 2, 0), TWO, FOUR, "Europe/Paris", False, id="DST 04:00"),
        # 2026-10-25: at 01:00 UTC Paris falls back from 03:00 CEST to 02:00 CET
        pytest.param(utc(2026, 10, 25, 0, 0), TWO, FOUR, "Europe/Paris", True, id="fall 02:00"),
        pytest.param(utc(2026, 10, 25, 1, 0), TWO, FOUR, "Europe/Paris", True, id="fall 2nd 02:00"),
        pytest.param(utc(2026, 10, 25, 2, 59), TWO, FOUR, "Europe/Paris", True, id="fall 03:59"),
        pytest.param(utc(2026, 10, 25, 3, 0), TWO, FOUR, "Europe/Paris", False, id="fall 04:00"),
        # New York is UTC-5 in January: 22:00-02:00 local is 03:00-07:00 UTC
        pytest.param(utc(2026, 1, 15, 3, 30), TEN_PM, TWO, "America/New_York", True, id="NY 22:30"),
        pytest.param(utc(2026, 1, 15, 6, 59), TEN_PM, TWO, "America/New_York", True, id="NY 01:59"),
        pytest.param(
            utc(2026, 1, 15, 7, 30), TEN_PM, TWO, "America/New_York", False, id="NY 02:30"
        ),
        pytest.param(
            utc(2026, 1, 15, 23, 30), TEN_PM, TWO, "America/New_York", False, id="NY 18:30"
        ),
        # Kolkata is UTC+5:30
        pytest.param(
            utc(2026, 1, 15, 3, 30), time(9), time(10), "Asia/Kolkata", True, id="IST 09:00"
        ),
        pytest.param(
            utc(2026, 1, 15, 3, 29), time(9), time(10), "Asia/Kolkata", False, id="IST 08:59"
        ),
        pytest.param(utc(2026, 1, 15, 2, 30), TWO, FOUR, "UTC", True, id="UTC 02:30"),
        pytest.param(utc(2026, 1, 15, 2, 30), TWO, FOUR, "Asia/Tokyo", False, id="JST 11:30"),
    ],
)
def test_the_window_is_read_in_its_own_time_zone(
    now: datetime, start: time, end: time, timezone: str, expected: bool
) -> None:
    assert window_is_open(now, start, end, timezone) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 10:30 in Tokyo (UTC+9) is 01:30 UTC, 02:30 in Paris
        pytest.param(
            datetime(2026, 1, 15, 10, 30, tzinfo=ZoneInfo("Asia/Tokyo")), True, id="Tokyo 10:30"
        ),
        # 21:00 in New York is 02:00 UTC the next day, 03:00 in Paris
        pytest.param(
            datetime(2026, 1, 14, 21, 0, tzinfo=ZoneInfo("America/New_York")), True, id="NY 21:00"
        ),
        # 12:00 in Tokyo is 03:00 UTC, 04:00 in Paris: closed
        pytest.param(
            datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo")), False, id="Tokyo 12:00"
        ),
    ],
)
def test_now_in_any_time_zone_is_converted_to_the_windows_zone(
    now: datetime, expected: bool
) -> None:
    assert window_is_open(now, TWO, FOUR, "Europe/Paris") is expected


def test_window_is_open_refuses_an_unknown_zone() -> None:
    with pytest.raises(InvalidInput) as caught:
        window_is_open(utc(2026, 1, 15, 3), TWO, FOUR, "Mars/Olympus_Mons")

    assert [p.field for p in caught.value.problems] == ["maintenance_window_timezone"]
