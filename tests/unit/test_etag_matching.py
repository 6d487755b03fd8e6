"""If-None-Match against the target ETag (RFC 9110: weak comparison, lists and *)."""

from __future__ import annotations

import pytest

from fleetwave.devices.protocol import etag_matches

ETAG = '"0123456789abcdef0123456789abcdef"'
OTHER = '"ffffffffffffffffffffffffffffffff"'


@pytest.mark.parametrize(
    ("if_none_match", "expected"),
    [
        pytest.param(None, False, id="no header"),
        pytest.param("", False, id="empty header"),
        pytest.param(ETAG, True, id="exact"),
        pytest.param(OTHER, False, id="different tag"),
        pytest.param(f"W/{ETAG}", True, id="weak form of the same tag"),
        pytest.param(f"W/{OTHER}", False, id="weak form of another tag"),
        pytest.param(f"{OTHER}, {ETAG}", True, id="in a list"),
        pytest.param(f"{OTHER},{ETAG}", True, id="in a list without spaces"),
        pytest.param(f"  {OTHER} ,  W/{ETAG}  ", True, id="weak in a padded list"),
        pytest.param(f"{OTHER}, W/{OTHER}", False, id="list without it"),
        pytest.param("*", True, id="any"),
        pytest.param(f"{OTHER}, *", True, id="any in a list"),
        pytest.param(ETAG.strip('"'), False, id="unquoted tag"),
        pytest.param(ETAG.upper(), False, id="different case"),
        pytest.param(ETAG[:-2] + '"', False, id="prefix of the tag"),
    ],
)
def test_etag_matches(if_none_match: str | None, expected: bool) -> None:
    assert etag_matches(if_none_match, ETAG) is expected
