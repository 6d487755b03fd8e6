"""Scale-out, proven: a staged rollout pushed by a webhook through HAProxy reaches every
simulated long-polling device although, in its middle, an API replica is SIGKILLed (its held
polls and event streams move to the other) and a worker is SIGKILLed and restarted — or
PostgreSQL itself restarts. Every device ends on the new image, the counters match the device
rows, and each device's transitions are in the event log exactly once."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import truncate_all
from tests.e2e.realparts import unavailable
from tests.e2e.scale_out import (
    HAPROXY,
    Cluster,
    EventStream,
    admin_client,
    all_holding,
    batch_starts,
    cluster,
    counter_problems,
    create_policy,
    delivery_times,
    dump,
    event_types,
    exactly_once_problems,
    push,
    simulators,
    summary,
    wait_for,
    wait_until_over,
)
from tests.integration.test_postgres_restart import postgres_ctl  # noqa: F401 (a fixture)

# solo: 2,000 agents in four simulators load both cores (tests/turns.py)
pytestmark = [pytest.mark.postgres, pytest.mark.solo]

DEVICES = int(os.environ.get("FLEETWAVE_SCALE_OUT_DEVICES") or 2000)
SIMULATORS = max(1, DEVICES // 500)  # one asyncio process per 500 agents: each keeps up


@pytest.fixture
def scaled(tmp_path: Path, postgres_database: str) -> Iterator[Cluster]:
    if not Path(HAPROXY).exists():
        unavailable(f"the scale-out tests need {HAPROXY} (Debian: haproxy)")
    truncate_all(postgres_database)
    with cluster(tmp_path, postgres_database) as running:
        yield running


def test_a_rollout_through_haproxy_survives_a_killed_replica_and_a_killed_worker(
    scaled: Cluster, tmp_path: Path
) -> None:
    with (
        admin_client(scaled.base) as admin,
        simulators(tmp_path, scaled.base, DEVICES, SIMULATORS) as sims,
    ):
        create_policy(admin)
        rollout_id = push(admin)
        with EventStream(scaled.base, rollout_id) as stream:
            wait_for(lambda: "batch_started" in stream.types(), "the first batch", 60)
            assert "rollout_completed" not in stream.types()
            victim = stream.served_by[-1]
            scaled.kill_replica(victim)  # its held polls and this stream are cut
            scaled.kill_worker("worker1")
            scaled.start_worker("worker1")
            over = wait_until_over(admin, rollout_id, 150)
            assert over["status"] == "completed", over
            wait_for(lambda: "rollout_completed" in stream.types(), "the stream's end", 20)
        # the polls the dead replica held are held by the other one now
        wait_for(lambda: all_holding(sims), "every agent to hold a poll again", 40)
        times, missing = delivery_times(admin, rollout_id, sims)
    print(f"\n{DEVICES} devices through HAProxy, batch started → new target: {summary(times)}")

    assert len(stream.served_by) >= 2 and victim not in stream.served_by[1:], stream.served_by
    assert stream.events == event_types(scaled.database_url, rollout_id), "the stream lost one"
    assert missing == 0
    assert counter_problems(over, DEVICES) == []
    assert exactly_once_problems(scaled.database_url, rollout_id, DEVICES) == []
    assert scaled.failures() == [], dump(scaled.parts())


def test_a_rollout_through_haproxy_completes_across_a_postgres_restart(
    scaled: Cluster,
    tmp_path: Path,
    postgres_ctl: list[str],  # noqa: F811 (the imported fixture)
) -> None:
    with (
        admin_client(scaled.base) as admin,
        simulators(tmp_path, scaled.base, DEVICES, SIMULATORS) as sims,
    ):
        create_policy(admin)
        rollout_id = push(admin)
        wait_for(lambda: bool(batch_starts(admin, rollout_id)), "the first batch", 60)
        subprocess.run([*postgres_ctl, "stop", "-m", "fast"], check=True, timeout=60)
        # every replica's /readyz fails: HAProxy takes them all out of the pool
        wait_for(lambda: set(scaled.server_states().values()) == {"DOWN"}, "all DOWN", 20)
        time.sleep(1)
        subprocess.run([*postgres_ctl, "start"], check=True, timeout=60)
        wait_for(lambda: set(scaled.server_states().values()) == {"UP"}, "all UP again", 30)
        over = wait_until_over(admin, rollout_id, 150)
        assert over["status"] == "completed", over
        times, missing = delivery_times(admin, rollout_id, sims)
    print(f"\n{DEVICES} devices, PostgreSQL restarted, new target: {summary(times)}")

    assert missing == 0
    assert counter_problems(over, DEVICES) == []
    assert exactly_once_problems(scaled.database_url, rollout_id, DEVICES) == []
