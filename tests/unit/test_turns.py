"""The turns of ``make test``'s two workers (tests/turns.py): shared tests together, a solo test
alone, and a solo test that waits is not overtaken. Threads stand in for the workers (a file
lock belongs to its open file, so two opens in one process contend as two processes do)."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.turns import taken

WAIT = 5.0


def hold(folder: Path, exclusive: bool, entered: threading.Event, leave: threading.Event) -> None:
    with taken(folder, exclusive=exclusive):
        entered.set()
        leave.wait(WAIT)


class Holder:
    def __init__(self, folder: Path, *, exclusive: bool) -> None:
        self.entered, self.leave = threading.Event(), threading.Event()
        self.thread = threading.Thread(
            target=hold, args=(folder, exclusive, self.entered, self.leave), daemon=True
        )
        self.thread.start()

    def done(self) -> None:
        self.leave.set()
        self.thread.join(WAIT)


def test_shared_turns_are_taken_together(tmp_path: Path) -> None:
    first, second = Holder(tmp_path, exclusive=False), Holder(tmp_path, exclusive=False)
    assert first.entered.wait(WAIT) and second.entered.wait(WAIT)
    first.done()
    second.done()


def test_a_solo_turn_waits_for_the_shared_one_and_is_not_overtaken(tmp_path: Path) -> None:
    shared = Holder(tmp_path, exclusive=False)
    assert shared.entered.wait(WAIT)
    solo = Holder(tmp_path, exclusive=True)
    assert not solo.entered.wait(0.3)  # the room is taken, shared
    later = Holder(tmp_path, exclusive=False)
    assert not later.entered.wait(0.3)  # would join the shared turn, but the solo one waits

    shared.done()
    assert solo.entered.wait(WAIT)
    assert not later.entered.wait(0.3)  # the solo test is alone
    solo.done()
    assert later.entered.wait(WAIT)
    later.done()
