"""A cross-process "devices changed" signal for SQLite, which has no NOTIFY.

The API normally runs alone on SQLite, but ``fleetwave worker`` or ``fleetwave monitor tick``
may change targets from another process. Each process that commits a change appends one byte
to a file beside the database; every process compares the file's size with the last size it
knew (one ``stat``, no database round trip) and, if another process appended, forgets what it
cached. The file grows by a byte per committed change and is never truncated while in use.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url


def change_file_for(database_url: str) -> ChangeFile | None:
    """The change file beside a SQLite database file (None for PostgreSQL or in-memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return ChangeFile(Path(f"{url.database}-changes"))


class ChangeFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._known = self._size()

    def changed_elsewhere(self) -> bool:
        """Whether another process announced a change since the last look."""
        size = self._size()
        if size == self._known:
            return False
        self._known = size
        return True

    def announce(self) -> bool:
        """Tell the other processes this one changed something; True if another process did
        too since the last look (its change is then ours to take in as well)."""
        with self.path.open("ab") as handle:  # O_APPEND: concurrent appends never overlap
            handle.write(b".")
        size = self._size()
        others = size != self._known + 1
        self._known = size
        return others

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
