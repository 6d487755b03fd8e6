"""The rollout engine with real ``fleetwave worker`` processes on PostgreSQL.

Devices are played in-process through the app (which runs no monitor of its own), so the only
monitors are the worker processes. Two properties of the monitor are checked for real:

- crash safety: a worker SIGKILLed at random moments — many of them inside a rollout's
  transaction, some while it appends its events just before committing — and restarted each
  time leaves every rollout consistent once they are all over;
- sharing: three workers on one database advance fifty rollouts, each transition once.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from statistics import mean
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.domain.vocabulary import devices
from fleetwave.settings import Settings
from tests.conftest import ADMIN_TOKEN, truncate_all
from tests.e2e.workers import (
    KILL_MODES,
    WEBHOOK_SECRET,
    ActivityProbe,
    AnyWorker,
    Devices,
    Kill,
    PlayedDevice,
    Worker,
    WorkerForks,
    consistency_problems,
    describe,
    device_status_counts,
    directory,
    events_by_rollout,
    kill_somewhere,
    rollout_rows,
    settled,
)

pytestmark = pytest.mark.postgres

SEED = int(os.environ.get("FLEETWAVE_E2E_SEED") or random.randrange(1 << 32))


@asynccontextmanager
async def fleetwave_app(
    url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    settings = Settings(
        database_url=url,
        admin_token=SecretStr(ADMIN_TOKEN),
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        data_dir=data_dir,
        register_rate_per_minute=100_000,
        **overrides,
    )
    container = build(settings)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://fleetwave.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield container, client
    finally:
        await container.db.dispose()


async def create_policy(client: httpx.AsyncClient, pattern: str, **fields: Any) -> None:
    body = {
        "image_pattern": pattern,
        "update_strategy": "staged",
        "staged_batches": 3,
        "batch_delay_minutes": 0,
        "soak_seconds": 0,
        "max_retries": 0,
        "auto_rollback": True,
        "health_check_enabled": True,
    } | fields
    response = await client.post("/api/v1/image-policies", json=body)
    assert response.status_code == 201, response.text


async def trigger(client: httpx.AsyncClient, image: str, devices: int) -> str:
    response = await client.post(
        "/api/v1/images/trigger-update", json={"image": image, "strategy": "staged"}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "rollout_created", answer
    assert answer["status"] == "in_progress" and answer["affected_devices"] == devices, answer
    rollout_id: str = answer["rollout_id"]
    return rollout_id


async def all_settled(container: Container) -> bool:
    counts = await device_status_counts(container)
    return all(settled(r, counts[r.rollout_id]) for r in (await rollout_rows(container)).values())


# --- 1. crash safety ----------------------------------------------------------------------------

CRASH_IMAGES = 5
CRASH_DEVICES = 10  # batches of 1, 4 and 5 devices
KILLS = 40
FAILING_IMAGES = {3, 4}  # their bound (5%) is below the one bad device in ten: they fail


def expected_crash_events(status: str) -> Counter[str]:
    """Each rollout of the crash test: nine devices update, one crashes and is rolled back."""
    return Counter(
        {
            "rollout_created": 1,
            "rollout_started": 1,
            "batch_started": 3,
            "batch_completed": 3,
            f"rollout_{status}": 1,
            "device_scheduled": CRASH_DEVICES,
            "device_progress": CRASH_DEVICES,  # pulling
            "device_updated": CRASH_DEVICES - 1,
            "health_check_passed": CRASH_DEVICES - 1,
            "device_failed": 1,
            "rollback_triggered": 1,
            "device_rolled_back": 1,
        }
    )


async def test_a_worker_sigkilled_at_random_leaves_rollouts_consistent_on_postgres(
    postgres_database: str, tmp_path: Path
) -> None:
    url, rng = postgres_database, random.Random(SEED)
    truncate_all(url)
    seed_note = f"(FLEETWAVE_E2E_SEED={SEED})"
    async with fleetwave_app(url, directory(tmp_path / "app")) as (container, client):
        fleet = Devices(container, client)
        devices: dict[int, list[PlayedDevice]] = {}
        for i in range(CRASH_IMAGES):
            bound = 0.05 if i in FAILING_IMAGES else 0.2
            await create_policy(
                client,
                f"acme/crash{i}:*",
                max_failure_rate=bound,
                failure_rate_min_devices=CRASH_DEVICES,  # judged once every device finished
            )
            devices[i] = [
                await fleet.register(f"crash{i}-{j:02}", f"acme/crash{i}:1.0.0")
                for j in range(CRASH_DEVICES)
            ]

        expected: dict[str, str] = {}
        latest: dict[int, tuple[str, int]] = {}  # image → (its latest rollout, its wave)

        async def next_wave(i: int, wave: int) -> None:
            image = f"acme/crash{i}:1.{wave}.0"
            devices[i][(wave * 3 + i) % CRASH_DEVICES].crashes_on.add(image)
            rid = await trigger(client, image, CRASH_DEVICES)
            expected[rid] = "failed" if i in FAILING_IMAGES else "completed"
            latest[i] = (rid, wave)

        for i in range(CRASH_IMAGES):
            await next_wave(i, 1)

        more_waves = True

        async def conduct() -> None:
            """Roll the next version of an image out once its rollout is over, while the
            worker is still being killed, so that there is work to be killed in."""
            while more_waves:
                rows, counts = await rollout_rows(container), await device_status_counts(container)
                for i, (rid, wave) in list(latest.items()):
                    if more_waves and settled(rows[rid], counts[rid]):
                        await next_wave(i, wave + 1)
                await asyncio.sleep(0.05)

        stop = asyncio.Event()
        driver = asyncio.create_task(fleet.run(stop))
        conductor = asyncio.create_task(conduct())
        probe = await ActivityProbe.connect(url)
        forks = await WorkerForks.start(url, directory(tmp_path / "worker"))
        loop = asyncio.get_running_loop()
        started, deadline = loop.time(), loop.time() + 120
        kills: list[Kill] = []
        workers: list[AnyWorker] = []
        try:
            while True:
                name = f"fw-crash-{len(workers)}"
                # the first life is the command itself; the others are forked, so that a
                # restart does not cost a second of imports each time
                worker: AnyWorker = (
                    await forks.fork(name)
                    if workers
                    else await Worker.start(name, url, directory(tmp_path / "worker"))
                )
                workers.append(worker)
                await worker.wait_ready()
                if len(kills) >= KILLS:
                    more_waves = False
                    await conductor
                    if await all_settled(container):
                        break
                if driver.done() or (conductor.done() and more_waves):
                    await worker.kill()
                    for task in (driver, conductor):
                        if task.done():
                            task.result()  # raises what stopped it
                    pytest.fail("the devices or the conductor stopped")
                if loop.time() > deadline:
                    await worker.kill()
                    pytest.fail(
                        f"rollouts not over after {len(kills)} kills {seed_note}:\n"
                        + await describe(container)
                    )
                mode = rng.choice(KILL_MODES) if len(kills) < KILLS else "warm"
                kills.append(await kill_somewhere(worker, probe, mode, rng))
            await worker.stop()
        finally:
            more_waves = False
            stop.set()
            await asyncio.gather(driver, conductor, return_exceptions=True)
            for w in workers:
                await w.kill()
            await forks.close()
            await probe.close()
        elapsed = loop.time() - started

        aborted = [k for k in kills if k.aborted_a_transaction]
        before_commit = [k for k in kills if k.before_commit]
        summary = (
            f"{len(kills)} kills in {elapsed:.1f} s over {len(expected)} rollouts: "
            f"{len(aborted)} aborted a rollout's transaction, {len(before_commit)} of them "
            f"while appending its events; modes {Counter(k.mode for k in kills)}; workers "
            f"took {mean(w.ready_after or 0 for w in workers):.2f} s to start {seed_note}"
        )
        print(summary)
        assert fleet.errors == [], fleet.errors
        assert [w.failures() for w in workers if w.failures()] == [], summary
        problems = await consistency_problems(container, client, expected)
        assert problems == [], "\n".join([summary, *problems])
        counted = await events_by_rollout(container)
        wrong = {
            rid: counted[rid]
            for rid, status in expected.items()
            if counted[rid] != expected_crash_events(status)
        }
        assert wrong == {}, summary
        assert len(kills) >= KILLS
        # The kills landed inside the work, not only between ticks: transactions that had
        # locked a rollout (and often written to it) were cut off and rolled back, some of
        # them with all their work done, while appending their events.
        assert len(aborted) >= 5 and len(before_commit) >= 1, summary


# --- 2. several workers -------------------------------------------------------------------------

SHARED_ROLLOUTS = 50
SHARED_DEVICES = 4  # batches of 1, 1 and 2 devices


def expected_shared_events() -> Counter[str]:
    return Counter(
        {
            "rollout_created": 1,
            "rollout_started": 1,
            "batch_started": 3,
            "batch_completed": 3,
            "rollout_completed": 1,
            "device_scheduled": SHARED_DEVICES,
            "device_progress": SHARED_DEVICES,
            "device_updated": SHARED_DEVICES,
            "health_check_passed": SHARED_DEVICES,
        }
    )


async def test_three_workers_share_fifty_rollouts_each_transition_once_on_postgres(
    postgres_database: str, tmp_path: Path
) -> None:
    url = postgres_database
    truncate_all(url)
    async with fleetwave_app(url, directory(tmp_path / "app")) as (container, client):
        fleet = Devices(container, client)
        limit = asyncio.Semaphore(8)

        async def register(uuid: str, image: str) -> None:
            async with limit:
                await fleet.register(uuid, image)

        for i in range(SHARED_ROLLOUTS):
            await create_policy(client, f"acme/shared{i:02}:*")
        await asyncio.gather(
            *(
                register(f"shared{i:02}-{j}", f"acme/shared{i:02}:1.0.0")
                for i in range(SHARED_ROLLOUTS)
                for j in range(SHARED_DEVICES)
            )
        )
        here = directory(tmp_path / "worker")
        workers: list[Worker] = []
        stop = asyncio.Event()
        driver: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            for k in range(3):
                workers.append(await Worker.start(f"fw-shared-{k}", url, here))
            # All fifty start at once (the trigger starts their first batch itself) while the
            # workers start; the workers then share every later transition between them.
            expected = {
                await trigger(client, f"acme/shared{i:02}:2.0.0", SHARED_DEVICES): "completed"
                for i in range(SHARED_ROLLOUTS)
            }
            for worker in workers:
                await worker.wait_ready()
            started = loop.time()
            driver = asyncio.create_task(fleet.run(stop))
            deadline = loop.time() + 60
            while not await all_settled(container):
                if loop.time() > deadline or driver.done():
                    pytest.fail("rollouts not over within 60 s:\n" + await describe(container))
                await asyncio.sleep(0.1)
            elapsed = loop.time() - started
            await asyncio.gather(*(worker.stop() for worker in workers))
        finally:
            stop.set()
            if driver is not None:
                await driver
            for worker in workers:
                await worker.kill()

        assert fleet.errors == [], fleet.errors
        assert [w.failures() for w in workers if w.failures()] == []
        problems = await consistency_problems(container, client, expected)
        assert problems == [], "\n".join(problems)
        counted = await events_by_rollout(container)
        assert {rid: counted[rid] for rid in expected} == dict.fromkeys(
            expected, expected_shared_events()
        )

        # Every transition a worker made was logged by exactly one worker, and those are all
        # the transitions of the event log after the first batch (started by the trigger).
        logged = Counter(line for worker in workers for line in worker.advanced())
        assert [line for line, n in logged.items() if n > 1] == []
        rows = await rollout_rows(container)
        transitions = Counter(
            (rid, message)
            for rid in expected
            for message in [
                "batch 1 finished",
                f"batch 2 of 3 started: {devices(rows[rid].batch_sizes[1])}",
                "batch 2 finished",
                f"batch 3 of 3 started: {devices(rows[rid].batch_sizes[2])}",
                "batch 3 finished",
                "completed; failure rate 0.0%",
            ]
        )
        assert logged == transitions
        share = {w.name: len({rid for rid, _ in w.advanced()}) for w in workers}
        print(f"50 rollouts over in {elapsed:.1f} s; rollouts advanced per worker: {share}")
        assert sum(1 for n in share.values() if n) >= 2, share
