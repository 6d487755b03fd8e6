"""The database handle: one async engine, transactions as the unit of work.

SQLite (the default) gets WAL, a busy timeout, foreign keys and ``BEGIN IMMEDIATE`` for
write transactions, so that concurrent writers queue instead of failing half-way.
PostgreSQL is used through psycopg 3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

READ_ONLY = "fleetwave_read_only"
PUBLISHED = "fleetwave_published"


def _parse(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername == "postgres":  # the short scheme some hosting services hand out
        parsed = parsed.set(drivername="postgresql")
    return parsed


def async_url(url: str) -> str:
    """The URL with the async driver we use for its dialect."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def sync_url(url: str) -> str:
    """The URL with a synchronous driver (for migrations)."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return async_url(url)


def describe(url: str) -> str:
    """The URL for logs: never the password."""
    return make_url(url).render_as_string(hide_password=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def publish(conn: AsyncConnection, items: Sequence[object]) -> None:
    """Hand ``items`` (events) to the database's listeners when ``conn``'s transaction commits."""
    conn.info.setdefault(PUBLISHED, []).extend(items)


class Database:
    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "postgresql":
            # connections are opened as needed up to pool_size and then kept: an overflow
            # would open and close one per request above it, under exactly the load that hurts
            options |= {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": 10}
        self.engine = create_async_engine(self.url, **options)
        self.committed: list[Callable[[list[object]], None]] = []
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: committed when the block ends, rolled back if it raises.

        What the work published (see :func:`publish`) goes to the ``committed`` listeners
        once, and only if, it is committed.
        """
        async with self.engine.begin() as conn:
            conn.info[PUBLISHED] = []
            yield conn
            published = conn.info.pop(PUBLISHED)
        for listener in self.committed:
            listener(published)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (never takes SQLite's write lock)."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{READ_ONLY: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def single_read(self) -> AsyncIterator[AsyncConnection]:
        """For one-statement reads on hot paths: no BEGIN/COMMIT round trips on PostgreSQL."""
        if self.dialect != "postgresql":
            async with self.read() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def database_unavailable(exc: DBAPIError) -> bool:
    """A failure of the database's availability (down, restarting, connection lost, busy),
    worth retrying, as opposed to a statement that is wrong."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        text = str(exc.orig).lower()
        return any(word in text for word in ("locked", "busy", "unable to open", "disk i/o"))
    return True  # psycopg: connection failures, cancelled statements, serialization failures
