"""A container's output as the agent reads it: each line once across reads, with its time,
its stream and a level, made storable."""

from __future__ import annotations

import pytest

from fleetwave.agent.output import (
    TRUNCATED,
    Cursor,
    OutputLine,
    clean_text,
    fell_short,
    level_of,
    parse_timestamp,
    split_output,
    unseen,
)
from fleetwave.domain.log_lines import MAX_MESSAGE_CHARACTERS

S = 1_000_000_000  # a second in nanoseconds
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def out(*ats: int) -> list[OutputLine]:
    return [OutputLine(at, False, f"at {at - T0}") for at in ats]


@pytest.mark.parametrize(
    ("read", "cursor", "new", "after"),
    [
        (out(), None, [], Cursor(0, 0)),
        (out(T0, T0 + 5), None, [T0, T0 + 5], Cursor(T0 + 5, 1)),
        (out(T0 + 5, T0), None, [T0, T0 + 5], Cursor(T0 + 5, 1)),  # sorted by time
        (out(T0, T0 + 5, T0 + 9), Cursor(T0 + 5, 1), [T0 + 9], Cursor(T0 + 9, 1)),
        (out(T0, T0 + 5), Cursor(T0 + 5, 1), [], Cursor(T0 + 5, 1)),  # nothing new
        # two lines of one nanosecond: the second is new, the cursor counts both
        (out(T0 + 5, T0 + 5), Cursor(T0 + 5, 1), [T0 + 5], Cursor(T0 + 5, 2)),
        (out(T0 + 5, T0 + 5, T0 + 5), None, [T0 + 5] * 3, Cursor(T0 + 5, 3)),
    ],
)
def test_a_read_gives_only_the_lines_not_read_before(
    read: list[OutputLine], cursor: Cursor | None, new: list[int], after: Cursor
) -> None:
    lines, moved = unseen(read, cursor)
    assert [line.at for line in lines] == new
    assert moved == after


@pytest.mark.parametrize(
    ("read", "cursor", "short"),
    [
        (out(T0 + 1, T0 + 2, T0 + 3), Cursor(T0, 1), True),  # as many as asked, none as old
        (out(T0, T0 + 2, T0 + 3), Cursor(T0, 1), False),  # it got back to the cursor
        (out(T0 + 1, T0 + 2), Cursor(T0, 1), False),  # fewer than asked: that was all
        (out(T0 + 1, T0 + 2, T0 + 3), None, False),  # a first read asks for a tail
    ],
)
def test_a_read_that_stopped_before_the_cursor_is_known(
    read: list[OutputLine], cursor: Cursor | None, short: bool
) -> None:
    assert fell_short(read, cursor, 3) is short


def test_the_next_read_starts_at_the_whole_second_of_the_last_line() -> None:
    assert Cursor(T0 + S + 999, 1).since_seconds == 1_767_225_601


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T00:00:00.5Z", T0 + 500_000_000),
        ("2026-01-01T00:00:00.123456789Z", T0 + 123_456_789),
        ("2026-01-01T01:00:00.000000001+01:00", T0 + 1),
        ("2026-01-01 00:00:00Z", None),
        ("yesterday", None),
        ("2026-13-01T00:00:00Z", None),
    ],
)
def test_engine_timestamps_are_read_to_the_nanosecond(text: str, nanoseconds: int | None) -> None:
    assert parse_timestamp(text) == nanoseconds


def test_docker_output_with_timestamps_is_split_into_lines() -> None:
    raw = (
        b"2026-01-01T00:00:00.1Z listening on :8080\r\n"
        b"2026-01-01T00:00:01Z \n"
        b"2026-01-01T00:00:02Z bad byte \xff here\n"
        b"no time at all\n"
    )
    assert split_output(raw, stderr=True) == [
        OutputLine(T0 + 100_000_000, True, "listening on :8080"),
        OutputLine(T0 + 2 * S, True, "bad byte \ufffd here"),
        OutputLine(T0 + 2 * S, True, "no time at all"),
    ]


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        ("lone \ud800 surrogate", "lone ? surrogate"),
        ("\x1b[31mred\x1b[0m", "\x1b[31mred\x1b[0m"),  # colours are the server's to show safely
    ],
)
def test_text_is_made_storable(text: str, cleaned: str) -> None:
    assert clean_text(text) == cleaned


def test_a_line_longer_than_the_server_takes_is_cut_and_says_so() -> None:
    cut = clean_text("x" * (MAX_MESSAGE_CHARACTERS + 10))
    assert len(cut) == MAX_MESSAGE_CHARACTERS and cut.endswith(TRUNCATED)


@pytest.mark.parametrize(
    ("text", "stderr", "level"),
    [
        ("[ERROR] cannot connect", False, "error"),
        ("Fatal: out of memory", False, "error"),
        ("warning: disk almost full", False, "warn"),
        ("DEBUG: cache hit", True, "debug"),
        ("[INFO] ready", True, "info"),
        ("ready", False, "info"),
        ("ready", True, "warn"),
    ],
)
def test_the_level_is_read_from_the_text_as_the_iotistic_agent_reads_it(
    text: str, stderr: bool, level: str
) -> None:
    assert level_of(text, stderr) == level
