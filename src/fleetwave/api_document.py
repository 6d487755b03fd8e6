"""The OpenAPI document as the API really answers.

- Every error, a 422 included, is the body ``web.error`` writes: ``{"error": "...", "detail":
  ...}`` (FastAPI would document its own ``{"detail": [{"loc", "msg", "type"}]}``), so every
  4xx answer declared refers to :data:`ERROR_BODY`.
- Each operation says what it needs to be called (``security``): the admin routes through
  their dependency (``web.authorize``, alias ``require_admin``, declares the bearer token and
  the session; a 403 by role, ``permissions.py``); the device protocol and the webhooks, which
  check their credentials themselves, with :func:`requires`; the rest need nothing and say so
  (``security: []``).
- Each operation declares the errors it can answer: 401 where it needs credentials, 413 where
  it takes a body (``body_limits``), 422 where it reads parameters or a body, and the route's
  own with :func:`errors` (403, 404, 409, 415, 429).

Clients, schemathesis and ``tests/integration/test_api_reference.py`` check answers against
this document, so it says what is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fleetwave.web import MAX_BODY_BYTES

ERROR_BODY: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, in a sentence"},
        "detail": {
            "description": "for a 422, one {field, message} per problem; else null or details",
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
                {},
            ],
        },
    },
}
ERROR_REFERENCE = {"$ref": "#/components/schemas/Error"}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "deviceKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Device-API-Key",
        "description": "The device's own key (from registering, or POST /api/v1/devices).",
    },
    "deviceBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The device's own key as a bearer token.",
    },
    "provisioningKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A fleet's provisioning key (POST /api/v1/provisioning-keys).",
    },
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Hub-Signature-256",
        "description": "GHCR: sha256=<hex HMAC-SHA256 of the body, keyed with the secret>.",
    },
    "webhookSecret": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Fleetwave-Webhook-Secret",
        "description": "Distribution, Harbor, ACR: the webhook secret (Authorization: Bearer "
        "<secret> works too).",
    },
    "webhookSecretInQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "secret",
        "description": "Docker Hub, Quay: the webhook secret in the URL they are given.",
    },
}

Security = list[dict[str, list[str]]]
DEVICE_KEY: Security = [{"deviceKey": []}, {"deviceBearer": []}]
DEVICE_BEARER: Security = [{"deviceBearer": []}]
PROVISIONING_KEY: Security = [{"provisioningKey": []}]
WEBHOOK_VERIFICATION: Security = [
    {"webhookSignature": []},
    {"webhookSecret": []},
    {"webhookSecretInQuery": []},
]

ERROR_MEANINGS = {
    400: "the body cannot be read (JSON nested too deeply)",
    401: "no credentials, or wrong ones",
    403: "the credentials are valid but do not cover this",
    404: "nothing has this id",
    409: "it clashes with what is stored",
    413: f"the body is larger than {MAX_BODY_BYTES} bytes (as sent or unpacked)",
    415: "the Content-Type or Content-Encoding is not one this operation reads",
    422: "invalid parameters or body: `detail` lists every problem with its field",
    429: "too many attempts: Retry-After says when to try again",
}


AMBIGUOUS_ID = (409, "a short id (a prefix of 8 or more) that matches several: `detail` lists them")
DEVICE_REFUSALS: tuple[int | tuple[int, str], ...] = (
    (403, "the key is another device's"),
    (429, "too many failed authentications from this address or for this device"),
)
"""What the device protocol answers besides 401: ``devices.protocol.authenticate``."""


def requires(security: Security) -> dict[str, Any]:
    """``openapi_extra`` for a route that checks its credentials itself (not by a dependency)."""
    return {"security": security}


def errors(*declared: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a route's own errors: a status (its usual meaning), or a status with
    what it means here. The body is always :data:`ERROR_BODY`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for item in declared:
        status, meaning = item if isinstance(item, tuple) else (item, ERROR_MEANINGS[item])
        responses[status] = {"description": meaning}
    return responses


def openapi_with_error_bodies(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with security and the error body declared on every operation."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemas["Error"] = ERROR_BODY
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    _declare_errors(operation)
            app.openapi_schema = schema
        return app.openapi_schema

    return document


ROLE_SCHEME = "bearerToken"  # web.authorize: the permission matrix may refuse the role
ROLE_REFUSAL = "the caller's role does not cover this operation (fleetwave/permissions.py)"


def _declare_errors(operation: dict[str, Any]) -> None:
    operation.setdefault("security", [])
    responses = operation["responses"]
    if operation["security"]:
        responses.setdefault("401", {"description": ERROR_MEANINGS[401]})
    if any(ROLE_SCHEME in need for need in operation["security"]):
        responses.setdefault("403", {"description": ROLE_REFUSAL})
    if "requestBody" in operation:  # body_limits bounds it; json_input refuses deep JSON
        responses.setdefault("400", {"description": ERROR_MEANINGS[400]})
        responses.setdefault("413", {"description": ERROR_MEANINGS[413]})
    if responses.get("422", {}).get("description") == "Validation Error":
        responses["422"]["description"] = ERROR_MEANINGS[422]
    for status, response in responses.items():
        if status[0] in "45":  # web.error writes them all
            response["content"] = {"application/json": {"schema": ERROR_REFERENCE}}
