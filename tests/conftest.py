"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured),
the application wired with a manual clock, and an HTTP client speaking to it in-process."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fastapi.dependencies.models as fastapi_models
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database, sync_url
from fleetwave.store.migrate import upgrade
from fleetwave.store.tables import metadata
from fleetwave.users.passwords import Passwords
from tests.turns import close_turns, open_turns, turn

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
POSTGRES_URL_VARIABLE = "FLEETWAVE_TEST_POSTGRES_URL"
# FastAPI remembers what kind of callable each endpoint and dependency is, in caches of 4,096
# entries that hold the callables. Ours close over their application, so a whole suite of
# per-test applications stayed alive (~8 million objects, full garbage collections of 12 s).
FASTAPI_CALLABLE_CACHES = (
    "_is_gen_callable_cached",
    "_is_async_gen_callable_cached",
    "_is_coroutine_callable_cached",
)


def pytest_configure(config: pytest.Config) -> None:
    open_turns(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    close_turns(config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Each test's setup, call and teardown in its turn (``tests/turns.py``)."""
    with turn(item):
        yield


@pytest.fixture(autouse=True)
def forget_applications() -> Iterator[None]:
    """After each test, FastAPI's caches let go of the test's application."""
    yield
    for name in FASTAPI_CALLABLE_CACHES:
        cached = getattr(fastapi_models, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE)


def postgres_required() -> bool:
    return os.environ.get("FLEETWAVE_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, migrated once."""
    admin_url = postgres_admin_url()
    if not admin_url:
        message = f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    name = f"fleetwave_test_{uuid.uuid4().hex[:12]}"
    # no pool: a connection kept from the start would not survive a PostgreSQL restart test
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {make_url(admin_url).render_as_string()} is unreachable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate_all(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "fleetwave.db"
        shutil.copy(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    truncate_all(url)
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        webhook_secret="test-webhook-secret-0123456789",  # type: ignore[arg-type]
        register_rate_per_minute=1000,
        webhook_answer_wait=60,  # answers wait for the plan; test_webhook_durability: 202s
    )


@pytest.fixture
async def container(settings: Settings, clock: ManualClock) -> AsyncIterator[Container]:
    db = Database(settings.resolved_database_url)
    yield build(settings, clock=clock, db=db, passwords=Passwords(cheap=True))
    await db.dispose()


def admin_client(container: Container) -> httpx.AsyncClient:
    """An admin client of ``container``'s API: every request carries the admin token unless
    it overrides it."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(container)),
        base_url="http://fleetwave.test",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )


USER_PASSWORD = "correct horse battery staple"


async def acting(
    client: httpx.AsyncClient, username: str, role: str = "operator"
) -> dict[str, str]:
    """The Authorization header of user ``username`` (made on first use through the admin
    API, with ``role``): what a request needs to act as that user."""
    made = await client.post(
        "/api/v1/users", json={"username": username, "password": USER_PASSWORD, "role": role}
    )
    assert made.status_code in (201, 409), made.text
    token = await client.post(
        f"/api/v1/users/{username}/tokens", json={"name": f"tests {uuid.uuid4().hex[:8]}"}
    )
    assert token.status_code == 201, token.text
    return {"Authorization": f"Bearer {token.json()['token']}"}


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(container) as http:
        yield http
