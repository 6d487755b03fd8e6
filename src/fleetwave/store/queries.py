"""Small SQL helpers shared by the features (dialect differences live here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def upsert(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    key: Sequence[str],
) -> None:
    """Insert a row, or update every given non-key column of the row with the same key."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    changes = {name: statement.excluded[name] for name in values if name not in key}
    await conn.execute(statement.on_conflict_do_update(index_elements=list(key), set_=changes))


async def insert_new(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any], key: Sequence[str]
) -> int | None:
    """Insert a row unless one with the same key exists (also one a concurrent transaction is
    inserting: PostgreSQL waits for it); returns the new row's id, or None."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(table.c.id)
    )
    new_id: int | None = (await conn.execute(statement)).scalar()
    return new_id


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert many rows with the same keys, fast: PostgreSQL's COPY, SQLite's executemany.

    A rollout writes one row per device; with COPY 100,000 of them cost a fraction of the
    same number of INSERT statements. Runs in the caller's transaction.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        await conn.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    quoted = ", ".join(f'"{name}"' for name in names)
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy,
    ):
        for row in rows:
            await copy.write_row(
                [
                    Jsonb(row[name])
                    if name in json_columns and row[name] is not None
                    else row[name]
                    for name in names
                ]
            )
