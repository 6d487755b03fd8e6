"""The HTTP application: routers, error handlers, and the container they share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from fleetwave import __version__
from fleetwave.api_document import openapi_with_error_bodies
from fleetwave.api_pages import install_api_pages
from fleetwave.body_limits import BodyLimits
from fleetwave.bootstrap import Container
from fleetwave.devices import device_routes
from fleetwave.devices import routes as device_admin_routes
from fleetwave.devices.fast_poll import FastPoll
from fleetwave.devices.give_way import ReportsGiveWay
from fleetwave.last_resort import LastResort
from fleetwave.ops import routes as ops_routes
from fleetwave.policies import routes as policy_routes
from fleetwave.provisioning import routes as provisioning_routes
from fleetwave.registries import registry_routes
from fleetwave.registries import routes as webhook_routes
from fleetwave.rings import routes as ring_routes
from fleetwave.rollouts import routes as rollout_routes
from fleetwave.rollouts import stream_routes
from fleetwave.ui import routes as ui_routes
from fleetwave.ui.pages import install_page_errors
from fleetwave.url_rules import RefuseControlCharacters
from fleetwave.users import routes as user_routes
from fleetwave.web import install_error_handlers


class _API(FastAPI):
    """FastAPI with :class:`LastResort` outside its own error layer (which raises again)."""

    def build_middleware_stack(self) -> ASGIApp:
        return LastResort(super().build_middleware_stack())


def create_app(container: Container, *, run_monitor: bool = False) -> FastAPI:
    """The API; with ``run_monitor`` the rollout monitor runs inside it (``fleetwave serve``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        notifier = asyncio.create_task(container.notifier.run(stop))
        monitor = asyncio.create_task(container.monitor.run(stop)) if run_monitor else None
        poller = asyncio.create_task(container.poller.run(stop)) if run_monitor else None
        last_seen = asyncio.create_task(container.last_seen.run(stop))
        container.target_watch.start_listening()  # the poll cache trusts what it relays
        stream_routes.end_streams_on_exit_signals(container.broadcast, container.target_watch)
        yield
        stop.set()
        await container.webhooks.settle()  # plans of answered webhooks end, not cut short
        await last_seen  # pending last-seen refreshes are written before the pool goes
        await container.broadcast.close()
        await container.target_watch.close()
        container.waker.wake()
        if monitor is not None:
            await monitor
        if poller is not None:
            await poller
        await notifier
        await container.db.dispose()

    app = _API(
        title="fleetwave",
        version=__version__,
        description="Safe rolling container-image updates for fleets of IoT devices.",
        lifespan=lifespan,
        docs_url=None,  # served from fleetwave itself, not a CDN: api_pages
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.openapi = openapi_with_error_bodies(app)  # type: ignore[method-assign]
    app.state.container = container
    # the last added runs first: the usual poll (a GET, no body) is answered before the others
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(BodyLimits, container=container)
    app.add_middleware(ReportsGiveWay, watch=container.protocol.watch)
    app.add_middleware(FastPoll, protocol=container.protocol)
    install_error_handlers(app)
    install_api_pages(app)
    install_page_errors(app)  # under /ui, missing things are pages
    for router in (
        device_routes.router,  # first: the device poll is matched before anything else
        ops_routes.router,
        device_admin_routes.router,
        provisioning_routes.router,
        provisioning_routes.device_router,
        policy_routes.router,
        ring_routes.router,
        rollout_routes.router,
        rollout_routes.device_router,
        stream_routes.router,
        user_routes.router,
        ui_routes.router,
        webhook_routes.router,
        registry_routes.router,
    ):
        app.include_router(router)
    if container.settings.metrics_port is None:  # else /metrics has a port of its own
        public = container.settings.metrics_public
        app.include_router(
            ops_routes.public_metrics_router if public else ops_routes.metrics_router
        )
    return app


def create_metrics_app(container: Container) -> FastAPI:
    """``/metrics`` alone, without a token, for ``FLEETWAVE_METRICS_PORT`` (beside the API, or
    beside a worker); the API's app owns the container's lifespan."""
    app = _API(title="fleetwave metrics", version=__version__, docs_url=None, redoc_url=None)
    app.state.container = container
    install_error_handlers(app)
    app.include_router(ops_routes.public_metrics_router)
    return app
