"""A replica, a worker or a migrator started against the wrong schema refuses, naming both
revisions, and never serves; two migrators at once take turns on PostgreSQL's advisory lock."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from fleetwave.store.db import sync_url
from fleetwave.store.migrate import (
    MIGRATION_LOCK,
    SchemaMismatch,
    current_revision,
    downgrade,
    head_revision,
    require_current_schema,
    upgrade,
)
from tests.e2e.databases import empty_postgres_database
from tests.e2e.processes import FLEETWAVE, clean_env, free_port

FUTURE = "9999_from_a_newer_fleetwave"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fleetwave.db'}"
        return
    with empty_postgres_database() as url:
        yield url


def stamp(url: str, revision: str) -> None:
    engine = create_engine(sync_url(url), poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def fleetwave(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(tmp_path / "var", FLEETWAVE_DATABASE_URL=url, FLEETWAVE_PORT=str(free_port()))
    return subprocess.run(
        [*FLEETWAVE, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_current_schema_passes_and_every_other_is_refused_naming_both_revisions(
    empty_url: str,
) -> None:
    head = head_revision()
    with pytest.raises(SchemaMismatch, match=rf"not migrated .*needs revision {head}"):
        require_current_schema(empty_url)
    upgrade(empty_url)
    require_current_schema(empty_url)  # current: no complaint
    downgrade(empty_url, "0007")
    with pytest.raises(SchemaMismatch, match=rf"at revision 0007, .*needs revision {head}"):
        require_current_schema(empty_url)
    upgrade(empty_url)
    stamp(empty_url, FUTURE)
    with pytest.raises(SchemaMismatch, match=rf"{FUTURE}, .*\(head {head}\).*newer"):
        require_current_schema(empty_url)
    with pytest.raises(SchemaMismatch, match=FUTURE):  # not even migrated "down" to ours
        upgrade(empty_url)
    assert current_revision(empty_url) == FUTURE


def test_serve_worker_and_migrate_exit_non_zero_on_the_wrong_schema(
    empty_url: str, tmp_path: Path
) -> None:
    head = head_revision()
    for command in (["serve", "--no-migrate"], ["worker"]):
        done = fleetwave(empty_url, tmp_path, *command)
        assert done.returncode == 3, done.stderr
        assert "not migrated" in done.stderr and head in done.stderr
        assert "Uvicorn running" not in done.stderr  # it never served
    upgrade(empty_url)
    stamp(empty_url, FUTURE)
    for command in (["serve", "--no-migrate"], ["serve"], ["worker"], ["migrate"]):
        done = fleetwave(empty_url, tmp_path, *command)
        assert done.returncode == 3, (command, done.stderr)
        assert FUTURE in done.stderr and head in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_two_migrators_at_once_on_postgres_take_turns_and_both_succeed(tmp_path: Path) -> None:
    with empty_postgres_database() as url:
        env = clean_env(tmp_path / "var", FLEETWAVE_DATABASE_URL=url)
        holder = create_engine(sync_url(url), poolclass=NullPool)
        with holder.connect() as held:  # a third migrator, mid-way: the lock is taken
            held.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            held.commit()
            migrators = [
                subprocess.Popen(
                    [*FLEETWAVE, "migrate"],
                    env=env,
                    cwd=tmp_path,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for _ in range(2)
            ]
            deadline = time.monotonic() + 60
            while waiting_for_the_lock(held) < 2:  # both block on it, neither has migrated
                assert time.monotonic() < deadline, "the migrators never waited for the lock"
                assert all(m.poll() is None for m in migrators)
                time.sleep(0.05)
            assert current_revision(url) is None
            held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            held.commit()
        holder.dispose()
        for migrator in migrators:
            out, err = migrator.communicate(timeout=120)
            assert migrator.returncode == 0, err
            assert "is up to date" in out
        assert current_revision(url) == head_revision()


def waiting_for_the_lock(conn: object) -> int:
    count: int = conn.execute(  # type: ignore[attr-defined]
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    ).scalar_one()
    return count
