"""An empty PostgreSQL database of its own, for tests that migrate it themselves (the shared
fixtures hand out databases already migrated)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from fleetwave.store.db import sync_url
from tests.conftest import POSTGRES_URL_VARIABLE, postgres_admin_url, postgres_required


def postgres_or_skip() -> str:
    admin_url = postgres_admin_url()
    if not admin_url:
        message = f"this test needs PostgreSQL: set {POSTGRES_URL_VARIABLE}"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    return admin_url


@contextmanager
def empty_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    admin_url = postgres_or_skip()
    name = f"fleetwave_empty_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
