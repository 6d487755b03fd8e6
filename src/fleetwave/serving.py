"""The HTTP servers of one process: the API, and ``/metrics`` on a port of its own if asked.

With ``FLEETWAVE_METRICS_PORT`` set, ``/metrics`` is served there without a token (for a
network only Prometheus reaches) and not on the API's port; ``fleetwave worker`` serves it
there too, so the monitor's own counters (ticks, probes, rollbacks) can be scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator

import uvicorn

from fleetwave import event_loop
from fleetwave.api import create_metrics_app
from fleetwave.bootstrap import Container
from fleetwave.gc_pauses import collect_less, logged_long_collections
from fleetwave.logs import uvicorn_log_config


class _BesideMain(uvicorn.Server):
    """A server that leaves the signals to the main one, which stops it when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_config(container: Container) -> uvicorn.Config | None:
    """The metrics port's server, or None when ``/metrics`` is served on the API's port."""
    settings = container.settings
    if settings.metrics_port is None:
        return None
    return uvicorn.Config(
        create_metrics_app(container),
        host=settings.metrics_host or settings.host,
        port=settings.metrics_port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(),
        proxy_headers=False,
        lifespan="off",
    )


async def beside(main: Awaitable[None], metrics: uvicorn.Config | None) -> None:
    """Run ``main`` with the metrics server beside it (if any) until ``main`` ends."""
    if metrics is None:
        await main
        return
    server = _BesideMain(metrics)
    serving = asyncio.create_task(server.serve())
    try:
        await main
    finally:
        server.should_exit = True
        await serving


def run_api(api: uvicorn.Config, container: Container) -> None:
    """Serve the API until a signal stops it, ``/metrics`` on its own port if configured;
    garbage collections that pause it long are logged."""
    collect_less()
    with logged_long_collections():
        event_loop.run(beside(uvicorn.Server(api).serve(), metrics_config(container)))
