"""Control characters in a URL's path or query are named before routing."""

from __future__ import annotations

import pytest

from fleetwave.domain.errors import Problem
from fleetwave.url_rules import url_problem

NUL = "contains a NUL character (\\u0000)"


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/api/v1/devices/pump-3", b"", None),
        ("/api/v1/devices", b"fleet_id=north&tag=site:lyon&cursor=pump-3", None),
        ("/api/v1/devices", b"fleet_id=S%C3%BCd+Nord&online=", None),
        ("/api/v1/devices", b"fleet_id=%FF", None),  # not UTF-8: U+FFFD, as the routes see it
        ("/api/v1/devices/a\x00b", b"", Problem("path", NUL)),
        ("/api/v1/devices/a\x07b", b"", Problem("path", "contains a control character (\\u0007)")),
        ("/api/v1/devices", b"cursor=%00", Problem("cursor", NUL)),
        (
            "/api/v1/devices",
            b"fleet_id=a%0Ab",
            Problem("fleet_id", "contains a control character (\\u000a)"),
        ),
        ("/api/v1/devices", b"ok=1&fl%00eet=x", Problem("query", f"a parameter's name {NUL}")),
        ("/api/v1/devices/a\x00b", b"cursor=%00", Problem("path", NUL)),  # the path first
    ],
)
def test_url_problem_names_the_part_of_the_url_at_fault(
    path: str, query: bytes, expected: Problem | None
) -> None:
    assert url_problem(path, query) == expected
