"""A real ``fleetwave serve`` killed with SIGKILL right after answering a webhook: the push was
recorded before the answer, so the server started again plans it, exactly once.

- on SQLite and PostgreSQL: a server that leaves the planning to a monitor (a wait of 0) and
  runs none (``--no-worker``) answers 202 and is killed; restarted with its monitor, it plans
  the push;
- on PostgreSQL: a server killed while its own planning transaction is under way (held on the
  image's lock, which the test takes first) leaves nothing of it; restarted, it plans the push.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, func, select

from fleetwave.store.db import sync_url
from fleetwave.store.tables import image_rollouts, webhook_deliveries
from tests.conftest import ADMIN_TOKEN, truncate_all
from tests.e2e.processes import RunningServer, fleetwave_server

SECRET = "test-webhook-secret-0123456789"
REPOSITORY = "docker.io/iotistic/myapp"
PUSH = {"repository": {"repo_name": "iotistic/myapp"}, "push_data": {"tag": "v2.0.1"}}
DEVICES = 5


def server_settings(database_url: str, **more: str) -> dict[str, str]:
    return {
        "FLEETWAVE_DATABASE_URL": database_url,
        "FLEETWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLEETWAVE_WEBHOOK_SECRET": SECRET,
        "FLEETWAVE_MONITOR_INTERVAL": "0.2",
    } | more


def admin(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )


def a_fleet_and_a_policy(server: RunningServer) -> None:
    with admin(server) as client:
        policy = {"image_pattern": "iotistic/myapp:*", "update_strategy": "auto"}
        assert client.post("/api/v1/image-policies", json=policy).status_code == 201
        service = {"serviceId": 1, "serviceName": "app", "imageName": "iotistic/myapp:v2.0.0"}
        for i in range(DEVICES):
            apps = {"1001": {"appId": 1001, "appName": "web", "services": [service]}}
            device = {"uuid": f"pump-{i}", "device_name": f"pump {i}", "apps": apps}
            assert client.post("/api/v1/devices", json=device).status_code == 201


def push(server: RunningServer) -> httpx.Response:
    return httpx.post(
        f"{server.base}/api/v1/webhooks/dockerhub", params={"secret": SECRET}, json=PUSH, timeout=10
    )


def kill(server: RunningServer) -> None:
    server.process.kill()  # SIGKILL: no shutdown, no plan finished on the way out
    server.process.wait(timeout=10)


def recorded(database_url: str) -> tuple[list[str], int]:
    """(the deliveries' outcomes, how many rollouts), read from the database itself."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            outcomes = list(conn.execute(select(webhook_deliveries.c.outcome)).scalars())
            made = conn.execute(select(func.count()).select_from(image_rollouts)).scalar_one()
    finally:
        engine.dispose()
    return outcomes, made


def planned_once(server: RunningServer) -> None:
    """The restarted server plans the push: one delivery, one rollout, created once."""
    with admin(server) as client:
        deadline = time.monotonic() + 20
        while (found := client.get("/api/v1/webhooks/deliveries").json())[0][
            "outcome"
        ] == "pending":
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
        [delivery] = found
        [rollout] = client.get("/api/v1/rollouts").json()["items"]
        assert (delivery["outcome"], delivery["rollout_id"], delivery["deliveries"]) == (
            "rollout_created",
            rollout["rollout_id"],
            1,
        )
        assert (rollout["status"], rollout["total_devices"]) == ("in_progress", DEVICES)
        events = client.get("/api/v1/events", params={"after": 0, "limit": 1000}).json()
        kinds = Counter(e["event_type"] for e in events["items"])
        assert (kinds["webhook_received"], kinds["rollout_created"]) == (1, 1)
        assert kinds["device_scheduled"] == DEVICES
        state = client.get("/api/v1/devices/pump-0/target-state").json()
        assert state["apps"]["1001"]["services"][0]["imageName"] == "iotistic/myapp:v2.0.1"
    again = push(server)  # a registry's redelivery: nothing more
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate", again.text


def test_a_server_killed_right_after_answering_202_plans_the_push_once_restarted(
    database_url: str, tmp_path: Path
) -> None:
    settings = server_settings(database_url, FLEETWAVE_WEBHOOK_ANSWER_WAIT="0")
    with fleetwave_server(tmp_path / "before", serve_args=["--no-worker"], **settings) as server:
        a_fleet_and_a_policy(server)
        answer = push(server)
        kill(server)
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "pending"
    assert recorded(database_url) == (["pending"], 0)
    with fleetwave_server(tmp_path / "after", **settings) as server:
        planned_once(server)


@contextmanager
def image_locked(database_url: str) -> Iterator[None]:
    """Hold the image's planning lock from outside, as another planner would."""
    with psycopg.connect(sync_url(database_url).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [REPOSITORY])
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [REPOSITORY])


@pytest.mark.postgres
def test_a_server_killed_while_planning_a_push_plans_it_once_restarted_on_postgres(
    postgres_database: str, tmp_path: Path
) -> None:
    url = postgres_database
    truncate_all(url)
    settings = server_settings(url, FLEETWAVE_WEBHOOK_ANSWER_WAIT="0.2")
    with fleetwave_server(tmp_path / "before", **settings) as server:
        a_fleet_and_a_policy(server)
        with image_locked(url):
            answer = push(server)  # its planning waits for the lock, the answer does not
            kill(server)
    assert answer.status_code == 202, answer.text
    assert recorded(url) == (["pending"], 0)
    with fleetwave_server(tmp_path / "after", **settings) as server:
        planned_once(server)
