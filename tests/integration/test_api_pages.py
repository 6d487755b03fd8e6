"""``/docs`` and ``/redoc`` work without the internet: every asset they name is fleetwave's
own and is served (tests/browser/test_api_docs.py renders /docs with other hosts blocked)."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET_REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
async def test_an_api_reference_page_names_only_assets_that_fleetwave_serves(
    client: httpx.AsyncClient, page: str, expected: set[str]
) -> None:
    answer = await client.get(page, headers={"Authorization": ""})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "http://" not in answer.text and "https://" not in answer.text, "another host"
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    references = ASSET_REFERENCE.findall(answer.text)
    assert {reference.rsplit("/", 1)[-1] for reference in references} >= expected
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        asset = await client.get(reference, headers={"Authorization": ""})
        assert asset.status_code == 200, reference
        assert len(asset.content) > 0


async def test_the_assets_are_served_with_their_media_types(client: httpx.AsyncClient) -> None:
    for name, media in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "javascript"),
    ]:
        answer = await client.get(f"/docs/assets/{name}")
        assert answer.status_code == 200
        assert media in answer.headers["content-type"]
        assert len(answer.content) > 100_000  # the whole bundle, not a stub
