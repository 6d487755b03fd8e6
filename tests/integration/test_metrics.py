"""``/metrics`` through the API, on both databases: who may read it, and the numbers it gives
after real pushes, polls, reports, health results and monitor ticks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetwave.api import create_app, create_metrics_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.conftest import ADMIN_TOKEN
from tests.dashboards import load_dashboard, queries, unknown_names
from tests.integration.engine import NEW, OLD, ScriptedDevice, device_rows, rollout, tick
from tests.integration.factories import as_device, register_device, target_apps
from tests.integration.health_helpers import free_port
from tests.integration.pipeline import docker_hub_push, policy

NO_TOKEN = {"Authorization": ""}


class Exposition:
    """A parsed exposition: ``value(name, **labels)`` is one sample (missing: ``None``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float | None:
        found = [v for n, sample_labels, v in self.samples if n == name and sample_labels == labels]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None

    def series(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of ``name`` whose labels include ``labels``."""
        return {
            tuple(sorted(sample_labels.items())): v
            for n, sample_labels, v in self.samples
            if n == name and labels.items() <= sample_labels.items()
        }


async def scrape(client: httpx.AsyncClient) -> Exposition:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return Exposition(response.text)


async def device_on(client: httpx.AsyncClient, uuid: str, **fields: Any) -> ScriptedDevice:
    device = await register_device(client, uuid=uuid, apps=target_apps(OLD), **fields)
    scripted = ScriptedDevice(client, device)
    await scripted.report(OLD)
    return scripted


# --- who may read it --------------------------------------------------------------------------


async def test_metrics_need_the_admin_token_and_speak_prometheus_text(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/metrics", headers=NO_TOKEN)).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    exposition = Exposition(answer.text)
    assert exposition.value("fleetwave_active_rollouts") == 0
    assert exposition.value("fleetwave_rollouts", status="in_progress") == 0
    assert exposition.value("fleetwave_webhooks_received_total", provider="ghcr") == 0
    assert exposition.value("fleetwave_device_polls_total") == 0


@pytest.fixture
async def configured(settings: Settings, clock: ManualClock) -> AsyncIterator[Any]:
    """Containers built with some settings changed (closed at the end of the test)."""
    databases: list[Database] = []

    def make(**changes: Any) -> Container:
        changed = settings.model_copy(update=changes)
        databases.append(Database(changed.resolved_database_url))
        return build(changed, clock=clock, db=databases[-1])

    yield make
    for db in databases:
        await db.dispose()


def http_to(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fw.test")


async def test_public_metrics_need_no_token(configured: Any) -> None:
    async with http_to(create_app(configured(metrics_public=True))) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200 and "fleetwave_active_rollouts 0.0" in answer.text


async def test_metrics_on_their_own_port_leave_the_api_port(configured: Any) -> None:
    container = configured(metrics_port=9464)
    async with http_to(create_app(container)) as api:
        refused = await api.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert refused.status_code == 404
    async with http_to(create_metrics_app(container)) as metrics_port:
        answer = await metrics_port.get("/metrics")
        assert (await metrics_port.get("/api/v1/rollouts")).status_code == 404
    assert answer.status_code == 200 and "fleetwave_rollouts{" in answer.text


async def test_each_container_counts_for_itself(client: httpx.AsyncClient, configured: Any) -> None:
    await docker_hub_push(client, "v9.9.9", secret="wrong")
    assert (await scrape(client)).value(
        "fleetwave_webhooks_rejected_total", provider="dockerhub"
    ) == 1
    other = configured()
    assert other.telemetry.value("fleetwave_webhooks_rejected_total", provider="dockerhub") == 0


# --- what it counts -----------------------------------------------------------------------------


async def test_polls_and_the_304s_among_them_are_counted(client: httpx.AsyncClient) -> None:
    device = await register_device(client, uuid="dev-poll")
    url, headers = "/api/v1/device/dev-poll/state", as_device(device)
    first = await client.get(url, headers=headers)
    assert first.status_code == 200
    for _ in range(3):
        again = await client.get(url, headers=headers | {"if-none-match": first.headers["etag"]})
        assert again.status_code == 304
    refused = await client.get(url, headers={"X-Device-API-Key": "not-a-key", **NO_TOKEN})
    assert refused.status_code == 401
    exposition = await scrape(client)
    assert exposition.value("fleetwave_device_polls_total") == 4
    assert exposition.value("fleetwave_device_polls_not_modified_total") == 3


async def test_webhooks_received_rejected_and_deduplicated_are_counted_per_provider(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="auto")
    await device_on(client, "dev-00")
    assert (await docker_hub_push(client, "v2.0.1", secret="wrong")).status_code == 401
    assert (await docker_hub_push(client, "v2.0.1", secret="also-wrong")).status_code == 401
    outcomes = [(await docker_hub_push(client, "v2.0.1")).json()["outcome"] for _ in range(3)]
    assert outcomes == ["rollout_created", "duplicate", "duplicate"]
    exposition = await scrape(client)
    dockerhub = {"provider": "dockerhub"}
    assert exposition.value("fleetwave_webhooks_rejected_total", **dockerhub) == 2
    assert exposition.value("fleetwave_webhooks_received_total", **dockerhub) == 3
    assert exposition.value("fleetwave_webhooks_deduplicated_total", **dockerhub) == 2
    assert exposition.value("fleetwave_webhooks_received_total", provider="harbor") == 0
    assert "wrong" not in (await client.get("/metrics")).text  # secrets never appear


async def test_a_staged_rollout_its_failed_canary_rollback_and_pause_show_in_the_metrics(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    closed_port = free_port()
    await policy(
        client,
        max_failure_rate=0.3,
        max_retries=0,
        health_check_config=[
            {
                "type": "tcp",
                "name": "port",
                "port": closed_port,
                "run_on": "server",
                "retries": 0,
                "timeout_seconds": 2,
            }
        ],
    )
    devices = [await device_on(client, f"dev-{i:02}", ip_address="127.0.0.1") for i in range(10)]
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    labels = {"rollout_id": rid, "image": "iotistic/myapp:v2.0.1"}

    planned = await scrape(client)
    assert planned.value("fleetwave_active_rollouts") == 1
    assert planned.value("fleetwave_rollouts", status="in_progress") == 1
    assert planned.value("fleetwave_rollouts", status="completed") == 0
    info = {"status": "in_progress", "strategy": "staged"}
    assert planned.value("fleetwave_rollout_info", **labels, **info) == 1
    assert planned.series("fleetwave_rollout_batch_size", **labels) == {
        (("batch", str(n)), *sorted(labels.items())): size for n, size in ((1, 1), (2, 4), (3, 5))
    }
    assert planned.value("fleetwave_rollout_batches", **labels) == 3
    assert planned.value("fleetwave_rollout_current_batch", **labels) == 1
    in_batch = "fleetwave_rollout_batch_devices"
    assert planned.value(in_batch, **labels, batch="1", status="scheduled") == 1
    assert planned.value(in_batch, **labels, batch="2", status="pending") == 4
    assert planned.value(in_batch, **labels, batch="3", status="pending") == 5
    assert planned.value("fleetwave_rollout_devices", **labels, status="pending") == 9
    assert planned.value("fleetwave_rollout_devices", **labels, status="scheduled") == 1
    assert planned.value("fleetwave_rollout_devices", **labels, status="failed") == 0
    assert planned.value("fleetwave_device_rollouts", status="pending") == 9
    assert planned.value("fleetwave_rollout_failure_rate", **labels) == 0
    assert planned.value("fleetwave_rollout_max_failure_rate", **labels) == 0.3
    assert planned.value("fleetwave_webhooks_received_total", provider="dockerhub") == 1

    [canary] = [d for d in devices if d.uuid in await device_rows(client, rid, batch=1)]
    assert await canary.apply_target() == NEW
    clock.advance(timedelta(seconds=1))
    await tick(container)  # the server's probe finds the port closed: failed, sent back
    assert (await device_rows(client, rid))[canary.uuid]["status"] == "failed"
    await canary.report(OLD)  # back on its old image
    await tick(container)  # batch 1 finished with 1 of 1 failed: above 0.3, paused

    assert (await rollout(client, rid))["status"] == "paused"
    after = await scrape(client)
    assert after.value("fleetwave_rollouts", status="paused") == 1
    assert after.value("fleetwave_rollouts", status="in_progress") == 0
    assert after.value("fleetwave_active_rollouts") == 1
    assert after.value("fleetwave_rollout_failure_rate", **labels) == 1
    assert after.value("fleetwave_rollout_devices", **labels, status="rolled_back") == 1
    assert after.value(in_batch, **labels, batch="1", status="rolled_back") == 1
    assert after.value(in_batch, **labels, batch="1", status="scheduled") is None
    port_failed = {"check_type": "tcp", "result": "failed", "source": "server"}
    assert after.value("fleetwave_health_check_results_total", **port_failed) == 1
    assert after.value("fleetwave_health_verdicts_total", verdict="failed") == 1
    assert after.value("fleetwave_rollbacks_started_total") == 1
    assert after.value("fleetwave_rollback_results_total", result="rolled_back") == 1
    assert after.value("fleetwave_monitor_tick_duration_seconds_count") == 2
    assert after.value("fleetwave_monitor_tick_duration_seconds_bucket", le="+Inf") == 2
    assert unknown_names(queries(load_dashboard()), after.text) == set()  # Grafana's queries

    rolled_back = await client.post(
        f"/api/v1/rollouts/{rid}/rollback-all",
    )
    assert rolled_back.status_code == 200, rolled_back.text
    finished = await scrape(client)
    assert finished.value("fleetwave_active_rollouts") == 0
    assert finished.value("fleetwave_rollouts", status="rolled_back") == 1
    assert finished.series("fleetwave_rollout_devices") == {}  # only active rollouts, per rollout
    assert finished.value("fleetwave_device_rollouts", status="rolled_back") == 1


async def test_device_side_health_results_are_counted_by_check_type(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(
        client,
        update_strategy="auto",
        health_check_config=[
            {"type": "http", "name": "web", "url": "http://localhost:8080/health"},
            {"type": "tcp", "name": "mqtt", "host": "localhost", "port": 1883},
        ],
    )
    device = await device_on(client, "dev-00")
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    await device.apply_target()
    results = [
        {"check": "web", "passed": False, "detail": "HTTP 500"},
        {"check": "web", "passed": True},
        {"check": "mqtt", "passed": True},
    ]
    answer = await client.post(
        f"/api/v1/device/{device.uuid}/health",
        json={"rollout_id": rid, "results": results},
        headers=device.headers,
    )
    assert answer.status_code < 300, answer.text
    exposition = await scrape(client)
    counted = exposition.series("fleetwave_health_check_results_total", source="device")
    assert counted == {
        (("check_type", "http"), ("result", "failed"), ("source", "device")): 1,
        (("check_type", "http"), ("result", "passed"), ("source", "device")): 1,
        (("check_type", "tcp"), ("result", "passed"), ("source", "device")): 1,
    }
    await tick(container)
    assert (await scrape(client)).value("fleetwave_health_verdicts_total", verdict="passed") == 1
