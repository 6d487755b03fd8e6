"""The text rules: what is storable, what is prose, what is a label, and where in a JSON
document the first unstorable string is."""

from __future__ import annotations

from typing import Any

import pytest

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.text_rules import (
    check_json,
    json_problem,
    label_problem,
    prose_problem,
    storable_problem,
)

NUL = "contains a NUL character (\\u0000)"
SURROGATE = "contains a lone surrogate (\\ud800), which is not a Unicode character"


def control(code: str) -> str:
    return f"contains a control character (\\u{code})"


# text, storable, prose, label: None where the rule accepts it
CASES = [
    ("iotistic/myapp:v2.0.1", None, None, None),
    ("", None, None, None),
    ("Pumpe Süd — 北", None, None, None),
    ("emoji 🚀 stays", None, None, None),
    ("fuzz/app:\x00v9", NUL, NUL, NUL),
    ("\ud800", SURROGATE, SURROGATE, SURROGATE),
    (
        "end \udfff",
        "contains a lone surrogate (\\udfff), which is not a Unicode character",
        "contains a lone surrogate (\\udfff), which is not a Unicode character",
        "contains a lone surrogate (\\udfff), which is not a Unicode character",
    ),
    ("line one\nline two", None, None, control("000a")),
    ("tab\there", None, None, control("0009")),
    ("crlf\r\n", None, None, control("000d")),
    ("bell\x07", None, control("0007"), control("0007")),
    ("escape\x1b[31m", None, control("001b"), control("001b")),
    ("delete\x7f", None, control("007f"), control("007f")),
    ("c1\x85", None, control("0085"), control("0085")),
    ("first wins \x07\x00", NUL, control("0007"), control("0007")),
]


@pytest.mark.parametrize(("text", "storable", "prose", "label"), CASES)
def test_each_rule_accepts_or_names_the_first_character_it_refuses(
    text: str, storable: str | None, prose: str | None, label: str | None
) -> None:
    assert (storable_problem(text), prose_problem(text), label_problem(text)) == (
        storable,
        prose,
        label,
    )


JSON_CASES: list[tuple[Any, Problem | None]] = [
    ({"apps": {"1": {"services": [{"imageName": "a:v1"}]}}}, None),
    ({"bell": "\x07", "lines": "a\nb"}, None),  # free JSON keeps what is storable
    ([1, 2.5, True, None, "x"], None),
    (
        {"apps": {"1": {"services": [{"imageName": "fuzz/app:\x00v9"}]}}},
        Problem("apps.apps.1.services[0].imageName", NUL),
    ),
    ({"ok": 1, "k\x00ey": "v"}, Problem("apps", f"has a key that {NUL}")),
    ({"list": ["fine", ["\ud800"]]}, Problem("apps.list[1][0]", SURROGATE)),
    ({"a": "\x00", "b": "\ud800"}, Problem("apps.a", NUL)),  # document order
    ("\x00", Problem("apps", NUL)),
]


@pytest.mark.parametrize(("document", "expected"), JSON_CASES)
def test_a_json_document_is_walked_keys_and_values_naming_the_first_bad_string(
    document: Any, expected: Problem | None
) -> None:
    assert json_problem(document, "apps") == expected


def test_a_document_nested_deeper_than_the_recursion_limit_is_walked_without_recursion() -> None:
    document: Any = "\x00"
    for _ in range(100_000):
        document = [document]
    problem = json_problem(document, "body")
    assert problem is not None and problem.message == NUL


def test_check_json_raises_invalid_input_naming_the_place() -> None:
    with pytest.raises(InvalidInput) as raised:
        check_json({"repository": {"name": "a\x00"}}, "body")
    assert raised.value.problems == [Problem("body.repository.name", NUL)]
