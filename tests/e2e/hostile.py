"""The fuzz corpus: hostile values and bodies that schemathesis does not generate, and the
requests that carry them to every route the application has.

A value goes wherever a request can carry it: each path segment, each query parameter, each
header parameter, and each string (key or value) and number of a valid body. Whole bodies
(deep nesting, bytes that are no JSON, gzip bombs, oversized ones) go to every route that
takes a body. ``requests_for`` enumerates the routes from the application, so a new route is
covered the day it is added."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

import fastapi.routing
from fastapi import FastAPI

NUL = "fuzz\u0000nul"
SURROGATE = "fuzz\ud800"
HOSTILE_TEXTS = (NUL, SURROGATE)

HUGE_NUMBERS: tuple[int | float, ...] = (2**63, 1e30, int("9" * 4000), -1e20)

# in a URL: a NUL, the UTF-8 encoding of a surrogate (no valid UTF-8), the huge numbers
HOSTILE_SEGMENTS = (
    "fuzz%00nul",
    "fuzz%ED%A0%80",
    *(quote(json.dumps(n)) for n in HUGE_NUMBERS),
)
# cursors that decode to nothing, or to something that is no position
BOGUS_CURSORS = ("bm90LWEtY3Vyc29y", "eyJpZCI6IC0xfQ", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAA")

OVERSIZED_BYTES = 100 * 1024 * 1024  # declared in Content-Length, never sent
CHUNKED_LIMIT = 32 * 1024 * 1024  # a chunked body still being read past this was not refused

RAW_BODY_ROUTES = {
    # routes that read their body themselves, so FastAPI does not know they take one
    ("PATCH", "/api/v1/device/state"),
    ("POST", "/api/v1/device/{uuid}/logs"),
    ("POST", "/api/v1/webhooks/{endpoint}"),
    ("POST", "/api/v1/webhooks/{endpoint}/{secret}"),
}
NOT_INPUT = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[tuple[str, bool], ...]  # (name, whether it is a number)
    header_params: tuple[str, ...]
    takes_body: bool

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


@dataclass(frozen=True)
class Hostile:
    """One request: what it carries, and where."""

    route: Route
    what: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunked: bool = False
    declared_length: int | None = None

    def label(self) -> str:
        return f"{self.route.method} {self.route.path}: {self.what}"


def routes_of(app: FastAPI) -> list[Route]:
    found = []
    for context in fastapi.routing.iter_route_contexts(app.routes):
        route = context.route
        if context.path in NOT_INPUT or not isinstance(route, fastapi.routing.APIRoute):
            continue
        dependant = route.dependant
        for method in sorted(context.methods or ()):
            raw_body = (method, context.path) in RAW_BODY_ROUTES
            found.append(
                Route(
                    method=method,
                    path=context.path,
                    path_params=tuple(p.name for p in dependant.path_params),
                    query_params=tuple((q.alias, is_number(q)) for q in dependant.query_params),
                    header_params=tuple(h.alias for h in dependant.header_params),
                    takes_body=bool(dependant.body_params) or raw_body,
                )
            )
    return found


def is_number(param: Any) -> bool:
    text = repr(param.field_info.annotation)
    return "int" in text or "float" in text


def requests_for(
    route: Route, real: dict[str, str], valid_body: dict[str, Any] | list[Any] | None
) -> Iterator[Hostile]:
    """Every hostile request for ``route``; ``real`` names existing things for the path
    parameters a request does not attack, ``valid_body`` is the body a request mutates."""
    path = fill(route.path, real)
    for name in route.path_params:
        for segment in HOSTILE_SEGMENTS:
            yield Hostile(route, f"path {name}={segment}", fill(route.path, real | {name: segment}))
    for name, number in route.query_params:
        # no surrogate: a URL can carry one only as invalid UTF-8, which arrives as U+FFFD
        values = [NUL, *([json.dumps(n) for n in HUGE_NUMBERS] if number else [])]
        if name == "cursor":
            values += BOGUS_CURSORS
        for value in values:
            yield Hostile(route, f"query {name}={shown(value)}", path, query={name: value})
    for name in route.header_params:
        for value in [json.dumps(n) for n in HUGE_NUMBERS]:
            yield Hostile(route, f"header {name}={shown(value)}", path, headers={name: value})
    if route.takes_body:
        yield from bodies(route, path, valid_body)
    if route.method in ("POST", "PUT", "PATCH"):
        yield Hostile(route, "Content-Length 100 MiB", path, declared_length=OVERSIZED_BYTES)
    if route.takes_body:  # a route that reads no body may answer before a chunked one ends
        yield Hostile(route, "chunked body past 32 MiB", path, chunked=True)


def bodies(route: Route, path: str, valid: dict[str, Any] | list[Any] | None) -> Iterator[Hostile]:
    json_type = {"Content-Type": "application/json"}
    whole = {
        "100,000 nested [": b"[" * 100_000,
        "100,000 nested {": b'{"a":' * 100_000,
        "a raw NUL byte in a string": b'{"fuzz": "a\x00b"}',
        "invalid UTF-8 (an encoded surrogate)": b'{"fuzz": "\xed\xa0\x80"}',
        "no JSON": b"{not json",
    }
    for what, body in whole.items():
        yield Hostile(route, what, path, headers=json_type, body=body)
    gzipped = json_type | {"Content-Encoding": "gzip"}
    yield Hostile(route, "gzip bomb (256 MiB of zeros)", path, headers=gzipped, body=gzip_bomb())
    if valid is not None:
        for what, mutated in mutations(valid):
            body = json.dumps(mutated).encode()
            yield Hostile(route, f"body {what}", path, headers=json_type, body=body)


def mutations(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """``value`` with one string (key or value) or number replaced by a hostile one, each
    way, with where it was replaced."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        for text in HOSTILE_TEXTS:
            yield f"{where or '.'}={shown(text)}", text
    elif isinstance(value, int | float):
        for number in HUGE_NUMBERS:
            yield f"{where or '.'}={shown(json.dumps(number))}", number
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for what, changed in mutations(item, f"{where}[{i}]"):
                yield what, [*value[:i], changed, *value[i + 1 :]]
    elif isinstance(value, dict):
        for key, item in value.items():
            for text in HOSTILE_TEXTS:
                renamed = {(text if k == key else k): v for k, v in value.items()}
                yield f"{where}.{key} (key)={shown(text)}", renamed
            for what, changed in mutations(item, f"{where}.{key}"):
                yield what, value | {key: changed}


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def shown(value: str) -> str:
    text = ascii(value)[1:-1]
    return text if len(text) <= 24 else f"{text[:12]}…({len(text)} chars)"


@cache
def gzip_bomb() -> bytes:
    """256 MiB of zeros, a quarter of a megabyte gzipped: under any body limit as sent."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1024 * 1024)
    packed = [packer.compress(zeros) for _ in range(256)]
    return b"".join([*packed, packer.flush()])
