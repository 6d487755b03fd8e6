"""The engine's timestamps, as Docker and Podman write them, read back (``_timestamp``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleetwave.agent.docker_runtime import _timestamp


def test_engine_timestamps_with_nanoseconds_and_z_are_read_to_the_microsecond() -> None:
    assert _timestamp("2024-05-01T12:34:56.123456789Z") == datetime(
        2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "2024-05-01T12:34:56Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC), id="no fraction"
        ),
        pytest.param(
            "2024-05-01T12:34:56.5Z",
            datetime(2024, 5, 1, 12, 34, 56, 500000, tzinfo=UTC),
            id="short fraction",
        ),
        pytest.param(
            "2024-05-01T14:34:56.123456789+02:00",
            datetime(2024, 5, 1, 14, 34, 56, 123456, tzinfo=timezone(timedelta(hours=2))),
            id="offset",
        ),
    ],
)
def test_engine_timestamps_in_other_shapes_are_read(value: str, expected: datetime) -> None:
    assert _timestamp(value) == expected


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "", "not a time", None, 0])
def test_a_container_that_never_started_or_an_unreadable_time_has_no_timestamp(
    value: object,
) -> None:
    assert _timestamp(value) is None
