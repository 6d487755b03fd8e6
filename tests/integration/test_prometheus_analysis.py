"""A batch's Prometheus analysis against a real Prometheus (Debian's ``prometheus``), which
scrapes a small exporter the test serves: a batch whose error ratio is within the bound lets
the next batch start; one above it fails the batch (its devices roll back) and pauses the
rollout. Prometheus runs once for the module, scraping every second, on a free loopback port.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from shutil import which
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.rollouts.analysis import BatchAnalysis
from tests.e2e.realparts import unavailable
from tests.integration.engine import (
    NEW,
    OLD,
    ScriptedDevice,
    batch_devices,
    device_rows,
    fleet_of,
    push,
    tick,
)
from tests.integration.engine import rollout as rollout_detail
from tests.integration.health_helpers import free_port
from tests.integration.pipeline import policy

PROMETHEUS = "/usr/bin/prometheus"


class Exporter:
    """Serves ``/metrics`` in Prometheus's text format; the test sets the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = ("\n".join(exporter.lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Prometheus:
    def __init__(self, url: str, exporter: Exporter) -> None:
        self.url, self.exporter = url, exporter

    def serve(self, line: str, query: str) -> None:
        """Serve ``line`` alone and wait (bounded) until Prometheus has scraped it."""
        self.exporter.lines = [line]
        expected = float(line.rsplit(" ", 1)[1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query}).json()
            result = answer["data"]["result"]
            if result and float(result[0]["value"][1]) == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"Prometheus never scraped {line!r}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if which(PROMETHEUS) is None and not Path(PROMETHEUS).exists():
        unavailable(f"{PROMETHEUS} missing (Debian: prometheus)")
    exporter = Exporter()
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: app\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError((work / "prometheus.log").read_text()[-2000:])
            time.sleep(0.2)
        yield Prometheus(url, exporter)
    finally:
        process.terminate()
        process.wait(timeout=10)
        exporter.server.shutdown()


QUERY = 'app_error_ratio{rollout="{{rollout_id}}", batch="{{batch}}", image="{{image}}"}'


async def run_batch(
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    fleet: dict[str, ScriptedDevice],
    rid: str,
    batch: int,
) -> list[str]:
    """The batch's devices run the new image and pass the default check (10 s soak)."""
    uuids = await batch_devices(client, rid, batch)
    for uuid in uuids:
        assert await fleet[uuid].apply_target() == NEW
    clock.advance(timedelta(seconds=10))
    await tick(container)  # the devices complete; the batch finishes
    return uuids


async def test_a_batch_over_its_prometheus_bound_rolls_back_and_pauses_the_rollout(
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    prometheus: Prometheus,
) -> None:
    async with httpx.AsyncClient() as http:
        container.monitor.analysis = BatchAnalysis(container.db, http)  # the injected client
        await policy(
            client,
            staged_batches=2,
            batch_delay_minutes=1,
            soak_seconds=10,
            max_failure_rate=1,
            health_check_config=[
                {
                    "type": "prometheus",
                    "name": "errors",
                    "url": prometheus.url,
                    "query": QUERY,
                    "max": 0.05,
                }
            ],
        )
        fleet = await fleet_of(client, 4)
        rid = await push(client)
        await tick(container)
        first = await run_batch(client, container, clock, fleet, rid, 1)
        labels = f'rollout="{rid}",batch="1",image="{NEW}"'
        prometheus.serve(f"app_error_ratio{{{labels}}} 0.01", f"app_error_ratio{{{labels}}}")
        clock.advance(timedelta(seconds=59))
        await tick(container)  # the soak is not over: not asked yet
        assert (await batch_devices(client, rid, 2)) and (await rollout_detail(client, rid))[
            "current_batch"
        ] == 1
        clock.advance(timedelta(seconds=1))
        await tick(container)  # asked: 0.01 passes, and batch 2 starts
        assert (await rollout_detail(client, rid))["current_batch"] == 2
        passed = (await device_rows(client, rid))[first[0]]["health_check_details"]["analysis"]
        assert passed["errors"]["passed"] is True
        assert passed["errors"]["values"][0]["value"] == 0.01
        assert f'rollout="{rid}"' in passed["errors"]["query"]

        second = await run_batch(client, container, clock, fleet, rid, 2)
        labels = f'rollout="{rid}",batch="2",image="{NEW}"'
        prometheus.serve(f"app_error_ratio{{{labels}}} 0.3", f"app_error_ratio{{{labels}}}")
        clock.advance(timedelta(seconds=60))
        await tick(container)

    rows = await device_rows(client, rid)
    for uuid in second:
        assert rows[uuid]["status"] == "failed"
        assert "failed its Prometheus analysis" in rows[uuid]["error_message"]
        assert (
            "0.3 is above max 0.05"
            in rows[uuid]["health_check_details"]["analysis"]["errors"]["error"]
        )
        assert await fleet[uuid].target_image() == OLD  # rolled back
    assert {rows[uuid]["status"] for uuid in first} == {"completed"}
    detail = await rollout_detail(client, rid)
    assert detail["status"] == "paused" and detail["auto_paused"] is True


async def test_an_unreachable_prometheus_is_asked_again_then_fails_the_batch(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        staged_batches=1,
        batch_delay_minutes=1,
        soak_seconds=10,
        health_check_timeout_seconds=60,
        auto_rollback=False,
        health_check_config=[
            {
                "type": "prometheus",
                "url": f"http://127.0.0.1:{free_port()}",
                "query": "up",
                "min": 1,
                "timeout_seconds": 2,
            }
        ],
    )
    fleet = await fleet_of(client, 1)
    rid = await push(client)
    await tick(container)
    [uuid] = await run_batch(client, container, clock, fleet, rid, 1)
    clock.advance(timedelta(seconds=60))
    await tick(container)  # nobody answers: asked again later
    assert (await rollout_detail(client, rid))["status"] == "in_progress"
    clock.advance(timedelta(seconds=60))
    await tick(container)  # past the health-check timeout: the batch fails
    row = (await device_rows(client, rid))[uuid]
    assert row["status"] == "failed" and "did not answer" in row["error_message"]
    assert await fleet[uuid].target_image() == NEW  # auto-rollback off: left on the new image
    assert (await rollout_detail(client, rid))["status"] == "paused"
