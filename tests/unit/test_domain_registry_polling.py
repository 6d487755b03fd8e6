"""What polling a registry decides: next pages, challenges, new tags, which repositories,
and when to poll next; tables of cases, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetwave.domain.registry_polling import (
    Challenge,
    changed_tags,
    first_poll_at,
    next_link,
    next_poll_at,
    parse_challenge,
    polled_repositories,
    registry_host,
    retry_after_seconds,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BASE = "http://registry.local:5000/v2/acme/app/tags/list"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        (
            '</v2/acme/app/tags/list?last=b&n=2>; rel="next"',
            "http://registry.local:5000/v2/acme/app/tags/list?last=b&n=2",
        ),
        (
            "<https://other.example/v2/x/tags/list?last=z>; rel=next",
            "https://other.example/v2/x/tags/list?last=z",
        ),
        ('</v2/acme/app/tags/list?last=a>; rel="prev"', None),
        (
            '</first>; rel="prev", </second?last=q>; rel="next"',
            "http://registry.local:5000/second?last=q",
        ),
        ('</both?last=q>; rel="prev next"', "http://registry.local:5000/both?last=q"),
        ("garbage without brackets", None),
    ],
)
def test_next_page_is_read_from_the_link_header(header: str | None, expected: str | None) -> None:
    assert next_link(header, BASE) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("  ", None),
        (
            'Bearer realm="https://auth.local/token",service="registry.local",'
            'scope="repository:acme/app:pull"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.local/token",
                    "service": "registry.local",
                    "scope": "repository:acme/app:pull",
                },
            ),
        ),
        ('Basic realm="Registry Realm"', Challenge("basic", {"realm": "Registry Realm"})),
        (
            "BEARER realm=http://a/t, service=s",
            Challenge("bearer", {"realm": "http://a/t", "service": "s"}),
        ),
        (
            'Bearer realm="https://a/t",scope="repository:x:pull,push"',
            Challenge("bearer", {"realm": "https://a/t", "scope": "repository:x:pull,push"}),
        ),
        ("Negotiate", Challenge("negotiate", {})),
    ],
)
def test_www_authenticate_challenges_are_parsed(
    header: str | None, expected: Challenge | None
) -> None:
    assert parse_challenge(header) == expected


@pytest.mark.parametrize(
    ("seen", "found", "expected"),
    [
        (None, {"1.0.0": "sha256:a"}, []),  # first poll: recorded, nothing started
        ({}, {"1.0.0": "sha256:a"}, ["1.0.0"]),
        ({"1.0.0": "sha256:a"}, {"1.0.0": "sha256:a"}, []),
        ({"1.0.0": "sha256:a"}, {"1.0.0": "sha256:a", "1.1.0": "sha256:b"}, ["1.1.0"]),
        ({"latest": "sha256:a"}, {"latest": "sha256:b"}, ["latest"]),  # digest moved
        ({"1.0.0": "sha256:a", "1.1.0": "sha256:b"}, {"1.0.0": "sha256:a"}, []),  # deleted
        ({}, {"b": "sha256:2", "a": "sha256:1"}, ["a", "b"]),
    ],
)
def test_new_tags_and_moved_digests_are_changes(
    seen: dict[str, str] | None, found: dict[str, str], expected: list[str]
) -> None:
    assert changed_tags(seen, found) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://registry.local:5000", "registry.local:5000"),
        ("https://Registry.Example.COM", "registry.example.com"),
        ("https://127.0.0.1:8443/", "127.0.0.1:8443"),
    ],
)
def test_registry_host_is_what_image_references_name(url: str, host: str) -> None:
    assert registry_host(url) == host


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["registry.local:5000/acme/app:*"], ["acme/app"]),
        (["registry.local:5000/acme/app:1.*", "registry.local:5000/acme/app:latest"], ["acme/app"]),
        (["registry.local:5000/acme/*:*"], []),  # a glob path names no repository
        (["other.local/acme/app:*", "nginx:*"], []),
        (["registry.local:5000/b:*", "registry.local:5000/a/x"], ["a/x", "b"]),
    ],
)
def test_polled_repositories_are_those_policies_name_on_the_host(
    patterns: list[str], expected: list[str]
) -> None:
    assert polled_repositories("registry.local:5000", patterns) == expected


@pytest.mark.parametrize(
    ("failures", "retry_after", "interval", "seconds"),
    [
        (0, None, 60, 60),
        (1, None, 60, 120),
        (3, None, 60, 480),
        (20, None, 60, 3600),  # capped at an hour
        (2, None, 7200, 7200),  # an interval over the cap is the cap
        (0, 900.0, 60, 900),  # Retry-After holds back the next poll
        (1, 5.0, 60, 120),  # but never brings it forward
    ],
)
def test_next_poll_backs_off_and_honours_retry_after(
    failures: int, retry_after: float | None, interval: int, seconds: int
) -> None:
    assert next_poll_at(NOW, interval, failures, retry_after) == NOW + timedelta(seconds=seconds)


def test_first_polls_are_spread_over_the_interval() -> None:
    offsets = {(first_poll_at(NOW, 60, f"registry-{i}") - NOW).total_seconds() for i in range(50)}
    assert all(0 <= o < 60 for o in offsets)
    assert len(offsets) > 40 and max(offsets) - min(offsets) > 40
    assert first_poll_at(NOW, 60, "same") == first_poll_at(NOW, 60, "same")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("120", 120.0),
        ("Sun, 06 Dec 2026 12:01:30 GMT", 90.0),
        ("Sun, 06 Dec 2026 11:00:00 GMT", 0.0),
        ("soon", None),
    ],
)
def test_retry_after_is_seconds_or_a_date(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected
