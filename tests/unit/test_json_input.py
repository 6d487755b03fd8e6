"""One rule for reading JSON: what is not JSON names its line and column, what is too deep is
refused as such, never a crash."""

from __future__ import annotations

import json

import pytest

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.json_input import NestedTooDeeply, not_json, parse_json


def test_json_is_read_from_bytes_or_text() -> None:
    assert parse_json(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert parse_json('"x"') == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            b"{",
            "is not valid JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        (b'{"a":\n x}', "is not valid JSON (Expecting value: line 2 column 2 (char 7))"),
        (b"[NaN]", "is not valid JSON (NaN is not a JSON number)"),
        (b"[-Infinity]", "is not valid JSON (-Infinity is not a JSON number)"),
    ],
)
def test_what_is_not_json_is_named_with_its_place(text: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_json(text, "health_check_config")
    assert [(p.field, p.message) for p in refused.value.problems] == [
        ("health_check_config", message)
    ]


def test_bytes_that_are_not_text_are_not_json() -> None:
    with pytest.raises(InvalidInput, match="body: is not valid JSON"):
        parse_json(b"\xff\xfe\xfa")


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_json_deeper_than_the_parser_follows_is_nested_too_deeply(opener: bytes) -> None:
    with pytest.raises(NestedTooDeeply, match="body: is nested too deeply"):
        parse_json(opener * 100_000)


def test_a_decode_error_found_elsewhere_is_worded_the_same() -> None:
    document = '{\n  "device_name": pi}'
    with pytest.raises(json.JSONDecodeError) as found:
        json.loads(document)
    error = found.value
    assert str(not_json("body", error.msg, document, error.pos)) == str(
        _refusal_of(document.encode())
    )


def _refusal_of(text: bytes) -> InvalidInput:
    try:
        parse_json(text)
    except InvalidInput as exc:
        return exc
    raise AssertionError("parsed")
