"""The API reference tells the truth about every operation, including operations added later:

- each has a summary and a description;
- each declares what it needs (``security``), and that is what it really asks for: called
  without credentials, an operation that declares any answers 401, one that declares none
  does not (unless it declares 401 for a secret it reads itself, as a webhook's URL secret);
- every answer it gives to missing credentials, unknown ids or an oversized body is a status it
  declares, with a body its declared schema accepts.

How to describe a new operation: README.md, "The API reference".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.factories import register_device

NO_SUCH = {
    "uuid": "no-such-device-0000",
    "rollout_id": "no-such-rollout",
    "policy_id": "999999",
    "name": "no-such-ring",
    "key_id": "999999",
    "token_id": "999999",
    "registry_id": "999999",
    "username": "no-such-user",
    "control": "pause",
    "endpoint": "no-such-provider",
    "secret": "not-the-secret",
}
WITHOUT_CREDENTIALS = {**NO_SUCH, "endpoint": "dockerhub"}  # a real provider: it verifies
NEVER_ANSWERS = {("get", "/api/v1/events/stream")}  # with credentials it streams, endlessly


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}: no {part} (give the route a docstring; summary= if the "
        "function's name reads badly)"
        for method, path, operation in operations(document)
        for part in ("summary", "description")
        if not operation.get(part, "").strip()
    ]
    assert not missing, "\n".join(missing)


def test_every_operation_declares_its_security_from_known_schemes(
    document: dict[str, Any],
) -> None:
    schemes = set(document["components"]["securitySchemes"])
    assert {"bearerToken", "dashboardSession", "deviceKey"} <= schemes
    assert document["components"]["securitySchemes"]["deviceKey"]["name"] == "X-Device-API-Key"
    wrong = []
    for method, path, operation in operations(document):
        if "security" not in operation:
            wrong.append(f"{method.upper()} {path}: no security declared")
            continue
        unknown = {name for need in operation["security"] for name in need} - schemes
        if unknown:
            wrong.append(f"{method.upper()} {path}: unknown security schemes {unknown}")
    assert not wrong, "\n".join(wrong)


def test_admin_and_device_routes_declare_their_credentials(document: dict[str, Any]) -> None:
    def security(method: str, path: str) -> list[dict[str, list[str]]]:
        found: list[dict[str, list[str]]] = document["paths"][path][method]["security"]
        return found

    assert security("get", "/api/v1/rollouts") == [{"bearerToken": []}, {"dashboardSession": []}]
    assert {"deviceKey": []} in security("get", "/api/v1/device/{uuid}/state")
    assert security("post", "/api/v1/device/register") == [{"provisioningKey": []}]
    assert {"dashboardSession": []} in security("get", "/api/v1/events/stream")
    assert security("get", "/healthz") == []
    assert {"webhookSignature": []} in security("post", "/api/v1/webhooks/{endpoint}")


async def test_called_without_credentials_each_operation_answers_as_it_declares(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    wrong = []
    for method, path, operation in operations(document):
        answer = await call(
            client, method, path, operation, WITHOUT_CREDENTIALS, headers={"Authorization": ""}
        )
        found = answer_problems(document, operation, answer)
        if operation["security"] and answer.status_code != 401:
            found.append(f"declares {operation['security']} but answers {answer.status_code}")
        elif answer.status_code == 401 and "401" not in operation["responses"]:
            found.append("declares no credentials but answers 401")
        wrong += [f"{label(method, path)}: {problem}" for problem in found]
    assert not wrong, "\n".join(wrong)


async def test_unknown_ids_get_declared_answers_with_the_declared_error_body(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    device = await register_device(client, uuid="reference-device")
    credentials = {
        "Authorization": f"Bearer {client.headers['Authorization'].split()[1]}",
        "X-Device-API-Key": device["api_key"],
    }
    wrong, called = [], 0
    for method, path, operation in operations(document):
        if "{" not in path or (method, path) in NEVER_ANSWERS:
            continue
        if operation["security"] and {"deviceKey": []} in operation["security"]:
            headers = {"X-Device-API-Key": device["api_key"], "Authorization": ""}
        else:
            headers = credentials
        answer = await call(client, method, path, operation, NO_SUCH, headers=headers)
        called += 1
        wrong += [
            f"{label(method, path)}: {w}" for w in answer_problems(document, operation, answer)
        ]
    assert called >= 15
    assert not wrong, "\n".join(wrong)


async def test_a_body_past_the_limit_gets_the_declared_413(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    operation = document["paths"]["/api/v1/image-policies"]["post"]
    answer = await client.post(
        "/api/v1/image-policies",
        content=b"[" + b"0," * (600 * 1024) + b"0]",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer_problems(document, operation, answer) == []


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    operation: dict[str, Any],
    values: dict[str, str],
    headers: dict[str, str],
) -> httpx.Response:
    url = path.format(**{name: value for name, value in values.items() if f"{{{name}}}" in path})
    body = {"json": {}} if "requestBody" in operation or method in ("post", "put", "patch") else {}
    return await client.request(method.upper(), url, headers=headers, **body)  # type: ignore[arg-type]


def answer_problems(
    document: dict[str, Any], operation: dict[str, Any], answer: httpx.Response
) -> list[str]:
    status = str(answer.status_code)
    declared = operation["responses"].get(status)
    if declared is None:
        return [f"answers {status} ({answer.text[:120]}), which it does not declare"]
    if answer.status_code < 400:
        return []
    schema = declared.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return [f"declares {status} without a body schema"]
    reasons = mismatches(document, schema, answer.json(), "body")
    return [f"{status}: {reason}" for reason in reasons]


def mismatches(document: dict[str, Any], schema: dict[str, Any], value: Any, at: str) -> list[str]:
    """Where ``value`` breaks ``schema`` (the subset of JSON Schema the error body uses)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return mismatches(document, document["components"]["schemas"][name], value, at)
    if "anyOf" in schema:
        options = [mismatches(document, option, value, at) for option in schema["anyOf"]]
        return [] if any(not found for found in options) else options[0]
    kind = schema.get("type")
    python = {"object": dict, "array": list, "string": str}.get(kind) if kind else None
    if python is not None and not isinstance(value, python):
        return [f"{at} is not a {kind}: {value!r}"]
    found = []
    if kind == "object":
        found += [
            f"{at}.{key} is missing" for key in schema.get("required", []) if key not in value
        ]
        for key, inner in schema.get("properties", {}).items():
            if key in value:
                found += mismatches(document, inner, value[key], f"{at}.{key}")
    if kind == "array":
        for index, item in enumerate(value):
            found += mismatches(document, schema.get("items", {}), item, f"{at}[{index}]")
    return found


def label(method: str, path: str) -> str:
    return f"{method.upper()} {path}"
