"""The permission matrix, walked over every operation of the OpenAPI document and every role.

Generated from ``fleetwave.permissions.PERMISSIONS``: an operation the table lacks fails here,
so no endpoint ships without a rule. For each operation that a role governs, a request without
credentials gets 401, a role below the rule 403, and a role at or above it anything but 401 or
403 (the ids in the path name nothing, so most answer 404 or 422: authorization comes first).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.domain.roles import ROLES, Role
from fleetwave.permissions import PERMISSIONS, Credential, Owner, rule_for
from tests.conftest import ADMIN_TOKEN, acting

USERS = {Role.viewer: "vera", Role.operator: "otto", Role.admin: "ada"}
PATH_VALUES = {
    "uuid": "no-such-device",
    "rollout_id": "no-such-rollout",
    "policy_id": "999999",
    "name": "no-such-ring",
    "key_id": "999999",
    "token_id": "999999",
    "registry_id": "999999",
    "control": "pause",
    "endpoint": "dockerhub",
    "secret": "not-the-secret",
}
# Answered at once instead of streaming for ever
QUERY = {"/api/v1/events/stream": {"rollout_id": "no-such-rollout"}}


def operations(container: Container) -> list[tuple[str, str]]:
    document = create_app(container).openapi()
    return sorted(
        (method.upper(), path)
        for path, methods in document["paths"].items()
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    )


def url(path: str, username: str) -> str:
    """``path`` with ids that name nothing; ``{username}`` is ``username`` only where the rule
    is about a user's own things (elsewhere a user acted on could be the caller itself)."""
    own = rule_for("GET", path) is Owner.user_or_admin or path.endswith("/tokens/{token_id}")
    values = PATH_VALUES | {"username": username if own else "no-such-user"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], username: str
) -> int:
    body: Any = {} if method in ("POST", "PUT", "PATCH") else None
    response = await client.request(
        method, url(path, username), json=body, headers=headers, params=QUERY.get(path)
    )
    return response.status_code


async def test_every_operation_has_a_rule_and_every_rule_an_operation(
    container: Container,
) -> None:
    found = set(operations(container))
    missing = sorted(op for op in found if rule_for(*op) is None)
    assert missing == [], f"operations without a rule in fleetwave/permissions.py: {missing}"
    stale = sorted(set(PERMISSIONS) - found)
    assert stale == [], f"rules in fleetwave/permissions.py for no operation: {stale}"


async def test_each_role_gets_what_the_matrix_says_on_every_operation(
    client: httpx.AsyncClient, container: Container
) -> None:
    headers = {role: await acting(client, name, role.value) for role, name in USERS.items()}
    nobody = {"Authorization": ""}
    wrong: list[str] = []
    for method, path in operations(container):
        rule = rule_for(method, path)
        if isinstance(rule, Credential):
            continue  # checked by their own routes' tests (device keys, webhook verification)
        status = await call(client, method, path, nobody, "vera")
        if status != 401:
            wrong.append(f"{method} {path} without credentials: {status}, not 401")
        for role in ROLES:
            expected = _expected(rule, role, own=True)
            status = await call(client, method, path, headers[role], USERS[role])
            if not expected(status):
                wrong.append(f"{method} {path} as {role.value} (own): {status}")
            if rule is Owner.user_or_admin:
                other = USERS[Role.admin] if role is not Role.admin else USERS[Role.viewer]
                expected = _expected(rule, role, own=False)
                status = await call(client, method, path, headers[role], other)
                if not expected(status):
                    wrong.append(f"{method} {path} as {role.value} on {other}'s: {status}")
    assert wrong == []


def _expected(rule: Role | Owner | Credential | None, role: Role, *, own: bool) -> Any:
    if rule is Owner.user_or_admin:
        allowed = own or role is Role.admin
    else:
        assert isinstance(rule, Role)
        allowed = role.covers(rule)
    if allowed:
        return lambda status: status not in (401, 403)
    return lambda status: status == 403


@pytest.mark.parametrize("role", ROLES)
async def test_the_admin_token_is_an_admin_named_admin_token(
    client: httpx.AsyncClient, role: Role
) -> None:
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert me.json() == {"name": "admin-token", "role": "admin", "user": False}
    mine = await client.get("/api/v1/me", headers=await acting(client, "pat", role.value))
    assert mine.json() == {"name": "pat", "role": role.value, "user": True}
