"""Exit codes scripts can trust, and the one-line messages for refusals and lost servers."""

from __future__ import annotations

import pytest

from fleetwave.domain.vocabulary import ACTIVE_ROLLOUT_STATUSES, ROLLOUT_STATUSES
from fleetwave.operator.client import ApiError, Unreachable
from fleetwave.operator.outcomes import ExitCode, explain, for_http_status, watch_ending


@pytest.mark.parametrize(
    ("status", "through_pause", "expected"),
    [
        ("completed", False, ExitCode.OK),
        ("failed", False, ExitCode.FAILED),
        ("cancelled", False, ExitCode.CANCELLED),
        ("rolled_back", False, ExitCode.ROLLED_BACK),
        ("paused", False, ExitCode.PAUSED),
        ("paused", True, None),
        ("in_progress", False, None),
        ("awaiting_approval", False, None),
        ("scheduled", False, None),
        ("pending", False, None),
    ],
)
def test_watch_ends_on_final_statuses_and_on_a_pause(
    status: str, through_pause: bool, expected: ExitCode | None
) -> None:
    assert watch_ending(status, through_pause=through_pause) == expected


def test_every_final_status_has_its_own_non_zero_code_but_completed() -> None:
    final = [s for s in ROLLOUT_STATUSES if s not in ACTIVE_ROLLOUT_STATUSES]
    codes = [watch_ending(s) for s in [*final, "paused"]]
    assert None not in codes
    assert len(set(codes)) == len(codes)
    assert [s for s, c in zip(final, codes, strict=False) if c == ExitCode.OK] == ["completed"]


def test_watch_codes_do_not_collide_with_tool_errors() -> None:
    tool = {ExitCode.API_ERROR, ExitCode.USAGE, ExitCode.UNREACHABLE, ExitCode.UNAUTHORIZED}
    endings = {ExitCode.FAILED, ExitCode.CANCELLED, ExitCode.ROLLED_BACK, ExitCode.PAUSED}
    assert not tool & endings
    assert ExitCode.TIMED_OUT not in tool | endings


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, ExitCode.UNAUTHORIZED),
        (403, ExitCode.UNAUTHORIZED),
        (404, ExitCode.API_ERROR),
        (409, ExitCode.API_ERROR),
        (422, ExitCode.API_ERROR),
        (500, ExitCode.API_ERROR),
    ],
)
def test_http_refusals_map_to_exit_codes(status: int, expected: ExitCode) -> None:
    assert for_http_status(status) == expected


def test_a_wrong_token_is_named_as_such_with_the_server() -> None:
    message = explain(ApiError(401, "invalid admin token"), "http://127.0.0.1:3001")
    assert "at http://127.0.0.1:3001 refused the token (invalid admin token)" in message
    assert "--token" in message and "FLEETWAVE_ADMIN_TOKEN" in message


def test_an_unreachable_server_names_its_url() -> None:
    message = explain(Unreachable("http://127.0.0.1:9", "connection refused"))
    assert message.startswith("cannot reach fleetwave at http://127.0.0.1:9 (connection refused)")
    assert "FLEETWAVE_URL" in message


def test_other_refusals_repeat_the_servers_message_and_status() -> None:
    problem = ApiError(409, "cannot resume a rollout that is completed")
    assert explain(problem) == "cannot resume a rollout that is completed (HTTP 409)"
