"""Log lines as agents send them: taken apart, or refused whole naming the line and field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.json_input import NestedTooDeeply
from fleetwave.domain.log_lines import (
    MAX_LINES_PER_REQUEST,
    LogLine,
    TooManyLines,
    levels_from,
    normal_level,
    parse_log_lines,
    read_json_array,
    read_ndjson,
)

CONTAINER_LINE = {
    "message": "[ERROR] cannot reach broker",
    "timestamp": 1_767_225_600_500,
    "level": "error",
    "source": {"type": "container", "name": "app"},
    "serviceId": 1,
    "serviceName": "app",
    "containerId": "4f2a9c",
    "isStdErr": True,
    "isSystem": False,
}


CONTAINER_DB = {"type": "container", "name": "db"}


def one(entry: Any) -> LogLine:
    [line] = parse_log_lines([("line 1", entry)])
    return line


def problems(entry: Any) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_log_lines([("line 1", entry)])
    return [str(p) for p in caught.value.problems]


def test_a_container_line_of_the_iotistic_agent_is_taken_apart() -> None:
    assert one(CONTAINER_LINE) == LogLine(
        message="[ERROR] cannot reach broker",
        level="error",
        source="container",
        service="app",
        stream="stderr",
        timestamp=datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("entry", "source", "service", "stream", "level"),
    [
        (
            {"message": "m", "source": {"type": "system", "name": "cm"}},
            "system",
            None,
            None,
            "info",
        ),
        ({"message": "m", "source": {"type": "Manager"}}, "manager", None, None, "info"),
        ({"message": "m", "source": CONTAINER_DB}, "container", "db", None, "info"),
        ({"message": "m", "serviceName": "app"}, "container", "app", None, "info"),
        ({"message": "m", "source": "agent", "serviceName": "app"}, "agent", "app", None, "info"),
        ({"message": "m"}, "system", None, None, "info"),
        ({"message": "m", "isStdErr": False, "level": "WARNING"}, "system", None, "stdout", "warn"),
        ({"message": "m", "level": "fatal"}, "system", None, None, "error"),
    ],
)
def test_what_an_entry_does_not_say_is_inferred(
    entry: dict[str, Any], source: str, service: str | None, stream: str | None, level: str
) -> None:
    line = one(entry)
    assert (line.source, line.service, line.stream, line.level) == (source, service, stream, level)
    assert line.timestamp is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"message": None}, "line 1.message: is required"),
        ({"message": 5}, "line 1.message: is required"),
        ({"message": "x" * 16_385}, "line 1.message: is longer than 16,384 characters (16,385)"),
        ({"message": "a\u0000b"}, "line 1.message: contains a NUL character"),
        ({"message": "\ud800"}, "line 1.message: contains a lone surrogate"),
        ({"containerId": "a\u0000"}, "line 1.containerId: contains a NUL"),
        ({"timestamp": -1}, "line 1.timestamp: must be from 0 to"),
        ({"timestamp": 1e30}, "line 1.timestamp: must be from 0 to"),
        ({"timestamp": float("nan")}, "line 1.timestamp: must be from 0 to"),
        ({"timestamp": int("9" * 4000)}, "line 1.timestamp: must be from 0 to"),
        ({"timestamp": float("inf")}, "line 1.timestamp: must be from 0 to"),
        ({"timestamp": True}, "line 1.timestamp: must be milliseconds"),
        ({"timestamp": "2026-01-01"}, "line 1.timestamp: must be milliseconds"),
        ({"level": "loud"}, "line 1.level: must be one of debug, info, warn, error"),
        ({"level": 3}, "line 1.level: must be one of"),
        ({"serviceName": "a\nb"}, "line 1.serviceName: contains a control character"),
        ({"serviceName": "s" * 256}, "line 1.serviceName: must be at most 255 characters"),
        ({"serviceName": 7}, "line 1.serviceName: must be a string"),
        ({"serviceId": -1}, "line 1.serviceId: must be from 0 to"),
        ({"serviceId": 2**63}, "line 1.serviceId: must be from 0 to"),
        ({"serviceId": "1"}, "line 1.serviceId: must be an integer"),
        ({"isStdErr": "yes"}, "line 1.isStdErr: must be true or false"),
        ({"source": 5}, "line 1.source: must be an object"),
        ({"source": {"type": "t" * 33}}, "line 1.source.type: must be at most 32 characters"),
        ({"source": {"type": "container", "name": "a\x1b"}}, "line 1.source.name: contains"),
    ],
)
def test_a_bad_field_is_named_with_its_line(change: dict[str, Any], problem: str) -> None:
    found = problems(CONTAINER_LINE | change)
    assert len(found) == 1 and found[0].startswith(problem), found


def test_a_key_the_server_ignores_still_may_not_hold_a_nul() -> None:
    assert problems(CONTAINER_LINE | {"a\u0000": 1}) == [
        "line 1: has a key that contains a NUL character (\\u0000)"
    ]


def test_ansi_colours_and_line_breaks_in_a_message_are_kept() -> None:
    assert one({"message": "\x1b[31mred\x1b[0m\n\tat main"}).message == (
        "\x1b[31mred\x1b[0m\n\tat main"
    )


def test_every_bad_line_of_a_batch_is_listed() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_log_lines([("line 1", {"message": "ok"}), ("line 2", []), ("line 3", {})])
    assert [p.field for p in caught.value.problems] == ["line 2", "line 3.message"]


def test_ndjson_is_read_line_by_line_skipping_blank_lines_but_counting_them() -> None:
    body = b'{"message": "a"}\r\n\n{"message": "b\\u2028c"}\n'
    assert read_ndjson(body) == [("line 1", {"message": "a"}), ("line 3", {"message": "b\u2028c"})]


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        (b'{"message": "a"}\n{"message": ', "line 2", "is not valid JSON"),
        (b'{"message": NaN}', "line 1", "is not valid JSON"),
        (b"\xff\xfe", "body", "is not valid UTF-8"),
    ],
)
def test_a_body_that_is_not_ndjson_is_refused_naming_the_line(
    body: bytes, field: str, problem: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_ndjson(body)
    assert caught.value.problems[0].field == field
    assert problem in caught.value.problems[0].message


def test_ndjson_nested_too_deeply_is_its_own_error() -> None:
    with pytest.raises(NestedTooDeeply):
        read_ndjson(b"[" * 100_000)


def test_a_batch_has_at_most_so_many_lines_in_either_format() -> None:
    ndjson = b'{"message": "x"}\n' * (MAX_LINES_PER_REQUEST + 1)
    with pytest.raises(TooManyLines):
        read_ndjson(ndjson)
    with pytest.raises(TooManyLines):
        read_json_array(b"[" + b",".join([b"{}"] * (MAX_LINES_PER_REQUEST + 1)) + b"]")
    assert len(read_ndjson(b'{"message": "x"}\n' * MAX_LINES_PER_REQUEST)) == MAX_LINES_PER_REQUEST


def test_a_json_body_must_be_an_array() -> None:
    assert read_json_array(b'[{"message": "a"}]') == [("line 1", {"message": "a"})]
    with pytest.raises(InvalidInput, match="must be a JSON array"):
        read_json_array(b'{"message": "a"}')


@pytest.mark.parametrize(
    ("given", "level"),
    [
        ("debug", "debug"),
        ("INFO", "info"),
        (" Warn ", "warn"),
        ("warning", "warn"),
        ("critical", "error"),
        ("trace", "debug"),
        ("notice", None),
    ],
)
def test_levels_are_read_in_any_case_with_common_aliases(given: str, level: str | None) -> None:
    assert normal_level(given) == level


@pytest.mark.parametrize(
    ("least", "levels"),
    [
        ("debug", ("debug", "info", "warn", "error")),
        ("warn", ("warn", "error")),
        ("error", ("error",)),
    ],
)
def test_a_level_filter_keeps_that_level_and_the_more_severe(
    least: str, levels: tuple[str, ...]
) -> None:
    assert levels_from(least) == levels
