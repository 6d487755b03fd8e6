"""Small SQL helpers shared by the features (dialect differences live here).

The bulk helpers prepare many rows' values (JSON text above all) in a worker thread, and yield
while they send them: 100,000 rows take a second or more of Python, during which the event
loop goes on answering requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    Select,
    String,
    Table,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.short_ids import prefix_range
from fleetwave.store.tables import devices


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


async def upsert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
) -> None:
    """:func:`upsert` for many rows with the same columns, as one executemany (psycopg sends
    it pipelined: one round trip, however many rows)."""
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    changes = {name: statement.excluded[name] for name in rows[0] if name not in key}
    await conn.execute(
        statement.on_conflict_do_update(index_elements=list(key), set_=changes), list(rows)
    )


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
    records = await off_loop(len(rows), _records, rows, names, json_columns)
    quoted = ", ".join(f'"{name}"' for name in names)
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy,
    ):
        for n, record in enumerate(records, 1):
            await copy.write_row(record)
            if n % YIELD_ROWS == 0:
                await asyncio.sleep(0)  # writing rarely waits: let the loop run meanwhile


def _records(
    rows: Sequence[Mapping[str, Any]], names: list[str], json_columns: set[str]
) -> list[list[Any]]:
    """The rows' values in ``names`` order, JSON as its text (what COPY and casts read);
    a value shared by many rows (one object) is serialised once."""
    texts: dict[int, str] = {}  # by id: the objects live until the end of the call

    def as_json(value: Any) -> str:
        text = texts.get(id(value))
        if text is None:
            text = texts[id(value)] = json.dumps(value)
        return text

    return [
        [
            as_json(row[name]) if name in json_columns and row[name] is not None else row[name]
            for name in names
        ]
        for row in rows
    ]


def _arrays(
    rows: Sequence[Mapping[str, Any]], names: list[str], json_columns: set[str]
) -> list[list[Any]]:
    """One list of values per column of ``names``, JSON as its text."""
    return [list(column) for column in zip(*_records(rows, names, json_columns), strict=True)]


T = TypeVar("T")
OFF_LOOP_ROWS = 1000  # below, a worker thread costs more than the work
YIELD_ROWS = 2000


async def off_loop(rows: int, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``: in a worker thread when it handles many ``rows``, else here."""
    if rows < OFF_LOOP_ROWS:
        return function(*args)
    return await asyncio.to_thread(function, *args)


async def update_rows(
    conn: AsyncConnection,
    table: Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    computed: Mapping[str, str] | None = None,
) -> None:
    """Set, in the row of ``table`` whose ``key`` is each row's, that row's other values, and
    the ``computed`` columns to SQL over the row's current ones (``{"version": "version + 1"}``).

    PostgreSQL gets one ``UPDATE ... FROM unnest(<one binary array per column>)`` whatever the
    number of rows (SQLAlchemy's executemany sends one UPDATE per row, each with its JSON as
    text); SQLite an executemany. Runs in the caller's transaction.
    """
    if not rows:
        return
    names = [name for name in rows[0] if name != key]
    computed = computed or {}
    if conn.dialect.name != "postgresql":
        values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
        await conn.execute(
            update(table)
            .where(table.c[key] == bindparam("row_key"))
            .values(**values, **{name: literal_column(sql) for name, sql in computed.items()}),
            [{"row_key": row[key]} | {f"new_{n}": row[n] for n in names} for row in rows],
        )
        return
    columns = [key, *names]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    arrays = ", ".join(
        f"CAST(%b::text[] AS {table.c[name].type.compile(dialect=dialect)}[])"
        if name in json_columns
        else f"%b::{table.c[name].type.compile(dialect=dialect)}[]"
        for name in columns
    )
    assignments = [f'"{name}" = v."{name}"' for name in names]
    assignments += [f'"{name}" = {sql}' for name, sql in computed.items()]
    quoted = ", ".join(f'"{name}"' for name in columns)
    # names from the table's definition and SQL from the calling code, values as parameters
    statement = (
        f'UPDATE "{table.name}" SET {", ".join(assignments)}'  # noqa: S608
        f' FROM unnest({arrays}) AS v({quoted}) WHERE "{table.name}"."{key}" = v."{key}"'
    )
    parameters = await off_loop(len(rows), _arrays, rows, columns, json_columns)
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor() as cursor:
        await cursor.execute(statement, parameters)


async def names_a_row(conn: AsyncConnection, *conditions: ColumnElement[bool]) -> bool:
    """Whether a row meets ``conditions`` (a page's cursor must name a row of its list)."""
    return bool((await conn.execute(select(exists().where(*conditions)))).scalar())


async def ids_beginning(
    conn: AsyncConnection, column: ColumnElement[str], prefix: str, limit: int
) -> list[str]:
    """Up to ``limit`` values of a unique, indexed text ``column`` that begin with ``prefix``,
    in order: one range scan of its index (see :func:`fleetwave.domain.short_ids.prefix_range`;
    the ``substr`` keeps the answer exact under any collation)."""
    low, high = prefix_range(prefix)
    query = (
        select(column)
        .where(column >= low, column < high, func.substr(column, 1, len(prefix)) == prefix)
        .order_by(column)
        .limit(limit)
    )
    return list((await conn.execute(query)).scalars())


def device_text_match(q: str) -> ColumnElement[bool]:
    """A device whose uuid or name holds ``q`` (any case; ``%`` and ``_`` are plain text)."""
    return or_(
        devices.c.uuid.icontains(q, autoescape=True),
        devices.c.device_name.icontains(q, autoescape=True),
    )


def uuid_or_name_contains(q: str) -> Select[tuple[str]]:
    """The uuids of the devices :func:`device_text_match` finds, for ``uuid IN (...)``."""
    return select(devices.c.uuid).where(device_text_match(q))


def value_chunks(conn: AsyncConnection, values: list[str]) -> list[list[str]]:
    """PostgreSQL takes any number of values (uuids, key hashes) as one array; SQLite 5,000 at
    a time."""
    if conn.dialect.name == "postgresql":
        return [values] if values else []
    return [values[i : i + 5000] for i in range(0, len(values), 5000)]


def one_of(
    conn: AsyncConnection, column: ColumnElement[str], values: list[str]
) -> ColumnElement[bool]:
    """``= ANY(:values)``, one array parameter, on PostgreSQL; ``IN``, one per value, elsewhere."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String)))
    return column.in_(values)
