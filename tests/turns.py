"""Turns on the machine for pytest-xdist's workers: most tests two at a time, a few alone.

``make test`` runs the suite in two worker processes. A test marked ``solo`` has the machine to
itself: those that restart PostgreSQL under everyone (they use the ``postgres_ctl`` fixture, and
are solo without the mark) and those whose thousands of agents load both cores, whose timings a
neighbour would stretch. Every other test shares the machine with one other.

Two file locks in a folder the workers share make the turns: a test takes the *room*, shared
or (solo) exclusive, for its setup, call and teardown. It takes the *turnstile* first and lets
it go once in the room, so a solo test waiting for the room holds the turnstile and the other
worker cannot keep slipping shared tests in ahead of it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FOLDER_VARIABLE = "FLEETWAVE_TEST_TURNS"  # set by the controller, inherited by its workers
SOLO_FIXTURES = frozenset({"postgres_ctl"})


def is_solo(item: pytest.Item) -> bool:
    fixtures = frozenset(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("solo") is not None or bool(fixtures & SOLO_FIXTURES)


def open_turns(config: pytest.Config) -> None:
    """On the controller of a distributed run: the folder its workers will share."""
    distributed = bool(getattr(config.option, "numprocesses", None))
    if distributed and not hasattr(config, "workerinput"):
        os.environ[FOLDER_VARIABLE] = tempfile.mkdtemp(prefix="fleetwave-turns-")


def close_turns(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and FOLDER_VARIABLE in os.environ:
        shutil.rmtree(os.environ.pop(FOLDER_VARIABLE), ignore_errors=True)


@contextmanager
def turn(item: pytest.Item) -> Iterator[None]:
    """The item's turn: at once outside a distributed run."""
    folder = os.environ.get(FOLDER_VARIABLE)
    if folder is None or not hasattr(item.config, "workerinput"):
        yield
        return
    with taken(Path(folder), exclusive=is_solo(item)):
        yield


@contextmanager
def taken(folder: Path, *, exclusive: bool) -> Iterator[None]:
    with (folder / "turnstile").open("a") as turnstile, (folder / "room").open("a") as room:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(room, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)
