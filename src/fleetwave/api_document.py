"""The OpenAPI document as the API really answers: FastAPI documents its own validation error
(``{"detail": [{"loc", "msg", "type"}]}``), but every error here, a 422 included, is the body
``web.error`` writes: ``{"error": "...", "detail": ...}``. Clients and schemathesis check
answers against this document, so it says what is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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


def openapi_with_error_bodies(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the validation error schema replaced by the error body."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_BODY
                schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    return document
