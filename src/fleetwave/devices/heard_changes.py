"""Hearing each change to devices once, though it arrives twice.

The process that writes a change hears of it twice: from its own commit (the database's
``committed`` listeners), and again through PostgreSQL's ``NOTIFY``, which every listening
process gets, the writer too. Acting on it twice is not wrong, but it is costly: the second
"forget these devices" can arrive after their woken polls were answered and refilled the poll
cache, so that each device's next poll reads the database again, one query each, just after a
batch of thousands.

So each change carries a tag (where it was written, and its number there), and a
:class:`HeardChanges` remembers the recent ones: a change heard whole on commit is not acted on
again when its notifications come; the devices of a notification that came first are left out
when the commit is heard. A change heard only through ``NOTIFY`` (its commit ended in an error
after the database had committed it) is still acted on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Set

CHANGES_KEPT = 10_000  # past it the oldest are forgotten: hearing one again only costs a read


class HeardChanges:
    def __init__(self, kept: int = CHANGES_KEPT) -> None:
        self.kept = kept
        self._heard: OrderedDict[str, frozenset[str] | None] = OrderedDict()  # None: all of it

    def news(self, tag: str | None, uuids: Set[str], *, whole: bool) -> Set[str]:
        """Which of ``uuids`` change ``tag`` had not yet told of; ``whole``: these are all its
        devices (heard on commit), not one of its notifications."""
        if tag is None:
            return uuids
        heard = self._heard.get(tag, frozenset())
        if heard is None:
            return frozenset()
        new = uuids - heard
        self._heard[tag] = None if whole else heard | new
        self._heard.move_to_end(tag)
        while len(self._heard) > self.kept:
            self._heard.popitem(last=False)
        return new

    def clear(self) -> None:
        self._heard.clear()
