"""Database URLs: the driver we use per dialect, and a log form without the password."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import make_url

from fleetwave.store.db import async_url, describe, sync_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///var/fleetwave.db", "sqlite+aiosqlite:///var/fleetwave.db"),
        pytest.param("sqlite:////abs/fleetwave.db", "sqlite+aiosqlite:////abs/fleetwave.db"),
        pytest.param("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db", id="already async"),
        pytest.param(
            "postgresql://fw:pw@127.0.0.1:5432/test",
            "postgresql+psycopg://fw:pw@127.0.0.1:5432/test",
        ),
        pytest.param(
            "postgresql+psycopg://fw:pw@db/test",
            "postgresql+psycopg://fw:pw@db/test",
            id="already psycopg",
        ),
        pytest.param(
            "postgresql+asyncpg://fw:pw@db/test",
            "postgresql+psycopg://fw:pw@db/test",
            id="other postgres driver",
        ),
        pytest.param(
            "postgresql://fw:p%40ss@db/test?sslmode=require",
            "postgresql+psycopg://fw:p%40ss@db/test?sslmode=require",
            id="escaped password and query kept",
        ),
    ],
)
def test_async_url_uses_our_async_driver(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///var/fleetwave.db", "sqlite:///var/fleetwave.db"),
        pytest.param("sqlite+aiosqlite:///var/fleetwave.db", "sqlite:///var/fleetwave.db"),
        pytest.param("postgresql://fw:pw@db/test", "postgresql+psycopg://fw:pw@db/test"),
        pytest.param("postgresql+psycopg://fw:pw@db/test", "postgresql+psycopg://fw:pw@db/test"),
    ],
)
def test_sync_url_uses_a_synchronous_driver(url: str, expected: str) -> None:
    assert sync_url(url) == expected


def test_in_memory_sqlite_keeps_its_database_through_conversion() -> None:
    assert make_url(async_url("sqlite:///:memory:")).database == ":memory:"
    assert make_url(sync_url("sqlite+aiosqlite:///:memory:")).database == ":memory:"


@pytest.mark.parametrize(
    "url",
    ["mysql://fw:pw@db/test", "mysql+pymysql://fw:pw@db/test", "oracle://fw:pw@db/test"],
)
@pytest.mark.parametrize("convert", [async_url, sync_url])
def test_unsupported_backend_is_refused_by_name(url: str, convert: Callable[[str], str]) -> None:
    backend = url.split(":")[0].split("+")[0]

    with pytest.raises(ValueError, match=f"unsupported database '{backend}'"):
        convert(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("postgresql://fw:s3cret@db:5432/test", "postgresql://fw:***@db:5432/test"),
        pytest.param(
            "postgresql+psycopg://fw:s3cret@db/test", "postgresql+psycopg://fw:***@db/test"
        ),
        pytest.param("postgresql://fw@db/test", "postgresql://fw@db/test", id="no password"),
        pytest.param("sqlite:///var/fleetwave.db", "sqlite:///var/fleetwave.db", id="sqlite"),
    ],
)
def test_describe_hides_the_password(url: str, expected: str) -> None:
    assert describe(url) == expected
    assert "s3cret" not in describe(url)
