"""Apply the Alembic migration history programmatically (``fleetwave migrate``), one migrator
at a time, and tell a process whether the database's schema is the one its code was written
for (a replica refuses to start on any other)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from fleetwave.store.db import describe, sync_url

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_lock's key for `fleetwave migrate`: any constant no other lock of ours uses
MIGRATION_LOCK = 0x666C_7477_6D69_6772 & 0x7FFF_FFFF_FFFF_FFFF


class SchemaMismatch(RuntimeError):
    """The database's schema revision is not the code's head: the process must not serve."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = sync_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``, creating a SQLite file's folder if needed.
    Two migrators at once take turns: the second finds the work done."""
    parsed = make_url(sync_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    with migration_lock(url):
        refuse_newer_schema(url)
        command.upgrade(alembic_config(url), revision)


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """PostgreSQL: a session advisory lock; a SQLite file: an flock on a file beside it."""
    parsed = make_url(sync_url(url))
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        engine = create_engine(sync_url(url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                    conn.commit()
        finally:
            engine.dispose()
    elif backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with open(f"{parsed.database}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        yield


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str:
    """The newest revision in the migration history."""
    head = scripts().get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def known(revision: str) -> bool:
    return any(script.revision == revision for script in scripts().walk_revisions())


def refuse_newer_schema(url: str) -> None:
    """A database migrated by a newer fleetwave is not for this code, not even to migrate."""
    current = current_revision(url)
    if current is not None and not known(current):
        raise SchemaMismatch(
            f"the database at {describe(url)} is at schema revision {current}, which this "
            f"fleetwave (head {head_revision()}) does not know: it was migrated by a newer "
            "version. Run that version, or restore a backup made before the upgrade."
        )


def require_current_schema(url: str) -> None:
    """Refuse to run against any schema but the code's head, naming both revisions."""
    refuse_newer_schema(url)
    current, head = current_revision(url), head_revision()
    if current == head:
        return
    found = "not migrated (no schema revision)" if current is None else f"at revision {current}"
    raise SchemaMismatch(
        f"the database at {describe(url)} is {found}, but this fleetwave needs revision {head}: "
        "run `fleetwave migrate` first (once, before the replicas start)."
    )
