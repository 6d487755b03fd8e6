"""The dashboard's list helpers as tables of cases: the devices page's tag filter, the query
strings of filtered pages, and *Retry failed* without retries left."""

from __future__ import annotations

from typing import Any

import pytest

from fleetwave.domain.controls import RolloutPosition, control_options
from fleetwave.domain.errors import InvalidInput
from fleetwave.ui.views import batch_filter, page_query, tag_filters


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("", {}),
        ("site:lyon", {"site": "lyon"}),
        (" site : lyon , floor:2 ", {"site": "lyon", "floor": "2"}),
        ("site:", {"site": ""}),
        ("url:http://x", {"url": "http://x"}),
        ("a:1,,b:2,", {"a": "1", "b": "2"}),
    ],
)
def test_the_tag_filter_reads_comma_separated_key_value_pairs(
    text: str, wanted: dict[str, str]
) -> None:
    assert tag_filters(text) == wanted


@pytest.mark.parametrize("text", ["site", ":lyon", "site:lyon, floor"])
def test_a_tag_without_a_key_or_a_colon_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        tag_filters(text)
    assert refused.value.problems[0].field == "tag"
    assert "key:value" in refused.value.problems[0].message


@pytest.mark.parametrize(
    ("params", "query"),
    [
        ({}, ""),
        ({"batch": None, "status": "", "q": None}, ""),
        ({"batch": 2, "q": "pump 3"}, "?batch=2&q=pump+3"),
        ({"cursor": "dev-02", "q": "a&b=c"}, "?cursor=dev-02&q=a%26b%3Dc"),
    ],
)
def test_a_page_query_keeps_the_filters_that_are_set(params: dict[str, Any], query: str) -> None:
    assert page_query(**params) == query


@pytest.mark.parametrize(
    ("retryable", "allowed", "reason"),
    [
        (None, True, None),  # not known: the API decides (409)
        (2, True, None),
        (0, False, "no failed device of this rollout has retries left"),
    ],
)
def test_retry_failed_is_refused_when_no_failed_device_has_retries_left(
    retryable: int | None, allowed: bool, reason: str | None
) -> None:
    position = RolloutPosition("failed", 3, 3, failed_devices=2, retryable_devices=retryable)
    retry = next(o for o in control_options(position) if o.control == "retry-failed")
    assert (retry.allowed, retry.reason) == (allowed, reason)


def test_a_rollout_without_failures_says_so_whatever_its_retries() -> None:
    position = RolloutPosition("completed", 3, 3, failed_devices=0, retryable_devices=0)
    retry = next(o for o in control_options(position) if o.control == "retry-failed")
    assert retry.reason == "no device of this rollout has failed"


@pytest.mark.parametrize(("text", "batch"), [("", None), (" ", None), ("1", 1), ("3", 3)])
def test_the_batch_filter_reads_all_as_empty_and_a_number_as_that_batch(
    text: str, batch: int | None
) -> None:
    assert batch_filter(text, 3) == batch


@pytest.mark.parametrize("text", ["0", "4", "-1", "x", "²", "1.0"])
def test_a_batch_that_is_not_one_of_the_rollouts_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        batch_filter(text, 3)
    assert refused.value.problems[0].field == "batch"
