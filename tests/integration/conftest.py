"""Fixtures of the integration tests beyond tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.conftest import ADMIN_TOKEN
from tests.integration.replicas import Replica


@pytest.fixture
async def replica(settings: Settings, clock: ManualClock) -> AsyncIterator[Replica]:
    """A second API process on the same database: its own pool, cache and listener."""
    db = Database(settings.resolved_database_url)
    other = build(settings, clock=clock, db=db)
    transport = httpx.ASGITransport(app=create_app(other))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://replica.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        await other.target_watch.listening()
        yield Replica(other, client)
    await other.target_watch.close()
    await db.dispose()


@pytest.fixture
async def here(container: Container, client: httpx.AsyncClient) -> AsyncIterator[Replica]:
    await container.target_watch.listening()
    yield Replica(container, client)
    await container.target_watch.close()
