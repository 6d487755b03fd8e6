"""The engine's answers, as Docker and Podman write them, read back: timestamps
(``_timestamp``) and a container's state (``_container``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from fleetwave.agent.docker_runtime import _container, _timestamp


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


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [
        pytest.param("exited", 1, id="Docker: exited"),
        pytest.param("stopped", 1, id="Podman: stopped"),
        pytest.param("running", None, id="running: no exit code"),
    ],
)
def test_a_container_whose_process_ended_carries_its_exit_code(
    status: str, exit_code: int | None
) -> None:
    found: Any = SimpleNamespace(
        id="c0ffee",
        labels={"io.fleetwave.service": "1001/web", "io.fleetwave.image": "app:v1"},
        status=status,
        attrs={"State": {"Status": status, "ExitCode": 1}, "Config": {"Image": "app:v1"}},
    )

    container = _container(found)

    assert (container.state, container.exit_code, container.image) == (status, exit_code, "app:v1")
