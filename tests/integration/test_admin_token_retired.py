"""Retiring the break-glass admin token (``FLEETWAVE_ADMIN_TOKEN_DISABLED``): once a real admin
exists, the token is refused by the API and the login page, and sessions opened with it end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import build
from fleetwave.clock import ManualClock
from fleetwave.sessions import SESSION_COOKIE
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.users.passwords import Passwords
from tests.conftest import ADMIN_TOKEN, USER_PASSWORD, acting


@pytest.fixture
async def retired(settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The same database served with the admin token retired (a restart with the setting)."""
    db = Database(settings.resolved_database_url)
    container = build(
        settings.model_copy(update={"admin_token_disabled": True}),
        clock=clock,
        db=db,
        passwords=Passwords(cheap=True),
    )
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test") as http:
        yield http
    await db.dispose()


async def test_a_retired_admin_token_is_refused_while_users_tokens_work(
    client: httpx.AsyncClient, retired: httpx.AsyncClient
) -> None:
    alice = await acting(client, "alice", "admin")
    refused = await retired.get("/api/v1/users", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert refused.status_code == 401
    assert (await retired.get("/api/v1/users", headers=alice)).status_code == 200


async def test_a_retired_admin_token_no_longer_logs_in_nor_keeps_its_sessions(
    client: httpx.AsyncClient, retired: httpx.AsyncClient
) -> None:
    await acting(client, "alice", "admin")
    opened = await client.post("/ui/login", data={"token": ADMIN_TOKEN})
    assert opened.status_code == 303
    cookie = {"Cookie": f"{SESSION_COOKIE}={opened.cookies[SESSION_COOKIE]}"}

    page = await retired.get("/ui/login")
    assert 'name="token"' not in page.text and 'name="username"' in page.text
    login = await retired.post("/ui/login", data={"token": ADMIN_TOKEN})
    assert login.status_code == 401 and "retired" in login.text
    assert (await retired.get("/api/v1/me", headers=cookie)).status_code == 401
    by_password = await retired.post(
        "/ui/login", data={"username": "alice", "password": USER_PASSWORD}
    )
    assert by_password.status_code == 303
