"""Small SQL helpers shared by the features (dialect differences live here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
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
