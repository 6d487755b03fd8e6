"""Long garbage collections are logged, short ones are not."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys

import pytest

from fleetwave.gc_pauses import CollectionTimes, logged_long_collections


def test_each_collection_is_timed_with_its_generation_while_entered() -> None:
    times: list[tuple[float, int]] = []
    with CollectionTimes(lambda seconds, generation: times.append((seconds, generation))):
        gc.collect(0)
    gc.collect(0)
    assert len(times) == 1 and times[0][0] >= 0 and times[0][1] == 0


def test_a_collection_past_the_threshold_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "fleetwave"), logged_long_collections(threshold=0):
        gc.collect(0)
    assert "a garbage collection (generation 0) paused this process for" in caplog.text


def test_a_short_collection_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "fleetwave"), logged_long_collections(threshold=60):
        gc.collect(0)
    assert caplog.text == ""


def test_collecting_less_freezes_what_exists_and_raises_the_thresholds() -> None:
    # in a process of its own: freezing this one would keep every test's objects
    script = (
        "import gc; from fleetwave.gc_pauses import collect_less; collect_less(); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 1000)"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert " ".join(found) == "(10000, 10, 100) True"
