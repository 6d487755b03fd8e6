"""The OpenAPI document declares the error body the API really sends (schemathesis and
clients check answers against it)."""

from __future__ import annotations

import httpx


async def test_a_422_answer_has_the_shape_the_document_declares(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    declared = spec["paths"]["/api/v1/devices"]["post"]["responses"]["422"]["content"]
    reference = declared["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = spec["components"]["schemas"][reference]

    answer = await client.post("/api/v1/devices", json={"device_name": 5})

    assert answer.status_code == 422
    body = answer.json()
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert isinstance(body["error"], str)
    assert all(set(problem) == {"field", "message"} for problem in body["detail"])
    assert "ValidationError" not in spec["components"]["schemas"]  # FastAPI's own, unused
