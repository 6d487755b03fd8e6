"""Creating a user without a server: how the first admin comes to exist.

``fleetwave users create NAME --role admin --offline`` runs this on the server's machine: it
brings the schema up to date (as ``serve`` does) and calls the same use case as the API, with
the same password rules and audit entry, recorded as done by ``offline-cli``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fleetwave.clock import SystemClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.migrate import upgrade
from fleetwave.users.passwords import Passwords
from fleetwave.users.schemas import UserCreate
from fleetwave.users.service import UserService

OFFLINE_ACTOR = "offline-cli"


def create_user(settings: Settings, username: str, password: str, role: str) -> dict[str, Any]:
    """The new user as the API answers it; raises what the API would answer 409/422 with."""
    data = UserCreate(username=username, password=password, role=role)
    upgrade(settings.resolved_database_url)
    return asyncio.run(_create(settings, data))


async def _create(settings: Settings, data: UserCreate) -> dict[str, Any]:
    db = Database(settings.resolved_database_url, pool_size=1)
    try:
        return await UserService(db, SystemClock(), Passwords()).create(data, OFFLINE_ACTOR)
    finally:
        await db.dispose()
