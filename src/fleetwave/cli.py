"""The ``fleetwave`` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fleetwave import __version__, event_loop
from fleetwave.operator.cli import install as install_operator_commands
from fleetwave.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:  # imported where used: the agent's dependencies load only for the agent
    from fleetwave.agent.docker_runtime import DockerRuntime
    from fleetwave.agent.simulated import SimulatedRuntime

cli = typer.Typer(
    help="fleetwave: safe rolling container-image updates for IoT fleets.",
    no_args_is_help=True,
    add_completion=False,
)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"fleetwave: {exc}", err=True)
        raise typer.Exit(2) from None


def create_user_offline(username: str, password: str, role: str) -> dict[str, Any]:
    """``fleetwave users create --offline``: straight to the database, as the server would."""
    from pydantic import ValidationError

    from fleetwave.errors import Conflict
    from fleetwave.users.offline import create_user

    settings = settings_or_exit()
    try:
        return create_user(settings, username, password, role)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"fleetwave: {problems}", err=True)
    except (ValueError, Conflict) as exc:
        typer.echo(f"fleetwave: {exc}", err=True)
    raise typer.Exit(1)


# policies, rollouts, devices, trigger, users: over the HTTP API (and the first admin offline)
install_operator_commands(cli, create_user_offline)


def stop_on_signals() -> asyncio.Event:
    """An event that Ctrl-C or SIGTERM sets (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def schema_ready_or_exit(url: str, migrate_first: bool) -> None:
    """Migrate (under the migration lock), or check that someone did: a replica or worker on an
    unmigrated or newer schema exits naming both revisions, and never serves."""
    from fleetwave.store.migrate import SchemaMismatch, require_current_schema, upgrade

    try:
        if migrate_first:
            upgrade(url)
        else:
            require_current_schema(url)
    except SchemaMismatch as exc:
        typer.echo(f"fleetwave: {exc}", err=True)
        raise typer.Exit(3) from None


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema (a second migrator at once waits its turn)."""
    from fleetwave.store.db import describe

    settings = settings_or_exit()
    url = settings.resolved_database_url
    schema_ready_or_exit(url, migrate_first=True)
    typer.echo(f"database at {describe(url)} is up to date")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="default: FLEETWAVE_HOST or 127.0.0.1"),
    port: int | None = typer.Option(None, help="default: FLEETWAVE_PORT or 3001"),
    migrate_first: bool = typer.Option(True, "--migrate/--no-migrate"),
    worker: bool = typer.Option(True, "--worker/--no-worker", help="run the rollout monitor too"),
) -> None:
    """Serve the API (migrating the database first), with the rollout monitor inside."""
    import uvicorn

    from fleetwave.api import create_app
    from fleetwave.bootstrap import build
    from fleetwave.logs import uvicorn_log_config
    from fleetwave.serving import run_api

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    schema_ready_or_exit(settings.resolved_database_url, migrate_first)
    container = build(settings)
    api = uvicorn.Config(
        create_app(container, run_monitor=worker),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(),
        proxy_headers=False,
    )
    run_api(api, container)  # and /metrics on its own port, with FLEETWAVE_METRICS_PORT


@cli.command("worker")
def worker_command() -> None:
    """Run the rollout monitor alone (beside API replicas started with --no-worker)."""

    from fleetwave.bootstrap import build
    from fleetwave.gc_pauses import collect_less, logged_long_collections
    from fleetwave.serving import beside, metrics_config

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    schema_ready_or_exit(settings.resolved_database_url, migrate_first=False)

    async def run() -> None:
        container = build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def shut_down() -> None:
            stop.set()
            container.waker.wake()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, shut_down)
        logging.getLogger("fleetwave").info(
            "rollout monitor running every %.3g s", settings.monitor_interval
        )
        sender = asyncio.create_task(container.notifier.run(stop))
        try:  # with FLEETWAVE_METRICS_PORT, the worker's /metrics is served there
            await beside(
                _together(container.monitor.run(stop), container.poller.run(stop)),
                metrics_config(container),
            )
        finally:
            stop.set()
            await sender
            await container.db.dispose()

    collect_less()
    with logged_long_collections():
        event_loop.run(run())


async def _together(*runs: Awaitable[None]) -> None:
    """The worker's loops (the rollout monitor, the registry poller), until all end."""
    await asyncio.gather(*runs)


monitor_cli = typer.Typer(help="The rollout monitor.", no_args_is_help=True)
cli.add_typer(monitor_cli, name="monitor")


@monitor_cli.command("tick")
def monitor_tick() -> None:
    """Run one tick of the rollout monitor and print what it did."""

    from fleetwave.bootstrap import build

    settings = settings_or_exit()

    async def run() -> list[str]:
        container = build(settings)
        stop = asyncio.Event()
        sender = asyncio.create_task(container.notifier.run(stop))
        try:
            lines = []
            for advanced in await container.monitor.tick():
                for message in advanced.events:
                    lines.append(f"{advanced.rollout_id}: {message}")
                if advanced.waiting:
                    lines.append(f"{advanced.rollout_id}: waiting: {advanced.waiting}")
            return lines
        finally:
            stop.set()  # what was queued is still delivered, briefly
            await sender
            await container.db.dispose()

    lines = asyncio.run(run())
    typer.echo("\n".join(lines) if lines else "nothing to do")


@cli.command("agent")
def agent_command(
    server: str = typer.Option(..., help="fleetwave's URL, e.g. http://127.0.0.1:3001"),
    uuid: str = typer.Option(..., help="this device's uuid"),
    key: str = typer.Option(..., envvar="FLEETWAVE_DEVICE_KEY", help="this device's API key"),
    runtime: str = typer.Option("docker", help="container runtime: docker or simulated"),
    docker_url: str | None = typer.Option(
        None,
        help="the engine's socket, e.g. unix:///run/podman/podman.sock (default: DOCKER_HOST)",
    ),
    poll_interval: float = typer.Option(60, help="seconds between polls (with jitter)"),
    report_interval: float = typer.Option(10, help="at most one state report per this many s"),
    device_address: str = typer.Option(
        "127.0.0.1", help="where this device's services answer its own health checks"
    ),
    allow_custom_checks: Path | None = typer.Option(
        None, help="run custom health checks, only programs inside this directory"
    ),
    long_poll: bool = typer.Option(
        True, help="when the server offers it, wait for a new target in each poll (?wait=)"
    ),
    logs: bool = typer.Option(True, help="ship the containers' output to the server"),
    log_interval: float = typer.Option(
        5, min=0.1, max=3600, help="seconds between two shipments of log lines"
    ),
    log_lines: int = typer.Option(
        200,
        min=1,
        max=10_000,
        help="log lines sent per interval at most (the rest dropped, counted)",
    ),
) -> None:
    """Run the device agent: poll the target state, apply it, check health, report, and
    ship its containers' logs."""

    import httpx

    from fleetwave.agent.agent import Agent
    from fleetwave.agent.client import DeviceClient
    from fleetwave.agent.log_shipper import LogShipper
    from fleetwave.agent.simulated import SimulatedRuntime
    from fleetwave.health.custom import CustomChecks

    engine: SimulatedRuntime | DockerRuntime
    if runtime == "simulated":
        engine = SimulatedRuntime()
    elif runtime == "docker":
        from docker.errors import DockerException

        from fleetwave.agent.docker_runtime import DockerRuntime

        try:
            engine = DockerRuntime(uuid, docker_url)
        except DockerException as exc:
            typer.echo(f"fleetwave: cannot reach the container engine: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        typer.echo(f"fleetwave: unknown runtime {runtime!r}; use docker or simulated", err=True)
        raise typer.Exit(2)
    configure_logging("info")

    async def run() -> None:
        stop = stop_on_signals()
        async with httpx.AsyncClient(base_url=server) as http:
            client = DeviceClient(http, uuid, key)
            shipper = (
                LogShipper(client, engine, interval=log_interval, lines_per_interval=log_lines)
                if logs
                else None
            )
            agent = Agent(
                client,
                engine,
                poll_interval=poll_interval,
                report_interval=report_interval,
                device_address=device_address,
                custom_checks=CustomChecks(allow_custom_checks),
                long_poll=long_poll,
                logs=shipper,
            )
            shipping = asyncio.create_task(shipper.run(stop)) if shipper else None
            await agent.run(stop)
            if shipping is not None:
                await shipping

    event_loop.run(run())


@cli.command("simulate")
def simulate_command(
    server: str = typer.Option("http://127.0.0.1:3001", help="fleetwave's URL"),
    devices: int = typer.Option(10, min=1, max=100_000, help="how many devices"),
    image: str = typer.Option("iotistic/myapp:v2.0.0", help="the image they run at first"),
    fail: list[str] = typer.Option(
        [], help="TAG:RATE: that share of devices crash on TAG, e.g. v2.0.1:0.1 (repeatable)"
    ),
    unhealthy: list[str] = typer.Option(
        [], help="TAG:RATE: that share run TAG but fail their health checks (repeatable)"
    ),
    poll_interval: float = typer.Option(10, help="seconds between each device's polls"),
    token: str | None = typer.Option(None, envvar="FLEETWAVE_ADMIN_TOKEN", help="admin token"),
    seed: int | None = typer.Option(None, help="fix which devices fail"),
    long_poll: bool = typer.Option(
        False, help="agents ask the server to hold their polls (?wait=), each on its own connection"
    ),
    received_log: Path | None = typer.Option(
        None, help="write a JSON line per target a device receives: device, UTC time, images"
    ),
    pull_seconds: str = typer.Option(
        "0", help="seconds each pull takes: SECONDS, or MIN-MAX drawn once per device"
    ),
) -> None:
    """Register N simulated devices and run N real agents on simulated runtimes."""

    from fleetwave.bootstrap import resolve_admin_token
    from fleetwave.sim.simulate import SimulateOptions, simulate
    from fleetwave.sim.simulator import parse_failures, parse_seconds_range

    try:
        failures = parse_failures(fail)
        sick = parse_failures(unhealthy, "--unhealthy")
        pulls = parse_seconds_range(pull_seconds)
    except ValueError as exc:
        typer.echo(f"fleetwave: {exc}", err=True)
        raise typer.Exit(2) from None
    options = SimulateOptions(
        server=server,
        admin_token=token or resolve_admin_token(settings_or_exit()),
        devices=devices,
        image=image,
        failures=failures,
        unhealthy=sick,
        poll_interval=poll_interval,
        seed=seed,
        long_poll=long_poll,
        received_log=received_log,
        pull_seconds=pulls,
    )

    async def run() -> None:
        await simulate(options, stop_on_signals(), typer.echo)

    event_loop.run(run())


@cli.command("demo")
def demo_command(
    devices: int = typer.Option(50, min=1, max=1000, help="how many simulated devices"),
    fail_rate: float = typer.Option(0.06, min=0, max=1, help="share crashing on the new tag"),
    seed: int = typer.Option(3, help="which devices crash (the same ones every run)"),
    batches: int = typer.Option(3, min=1, max=10, help="staged batches (10% → 50% → 100%)"),
    soak: int = typer.Option(3, min=0, help="seconds an updated device is watched"),
    poll_interval: float = typer.Option(1.0, min=0.1, help="seconds between device polls"),
    report_interval: float = typer.Option(1.0, min=0.1, help="least seconds between reports"),
    timeout: float = typer.Option(120, min=10, help="give up after this many seconds"),
    plain: bool = typer.Option(False, "--plain", help="print lines, never redraw"),
) -> None:
    """Start a server and 50 simulated devices, push v2.0.1, watch the staged rollout live."""
    from fleetwave.sim.demo import DemoOptions, main

    options = DemoOptions(
        devices=devices,
        fail_rate=fail_rate,
        seed=seed,
        batches=batches,
        soak_seconds=soak,
        poll_interval=poll_interval,
        report_interval=report_interval,
        timeout=timeout,
    )
    raise typer.Exit(main(options, plain=plain))


@cli.command("admin-token")
def admin_token(show: bool = typer.Option(False, "--show", help="print the token itself")) -> None:
    """Where the admin token is kept (generated on first use); --show prints it."""
    from fleetwave.bootstrap import resolve_admin_token

    settings = settings_or_exit()
    token = resolve_admin_token(settings)
    if show:
        typer.echo(token)
    elif settings.admin_token is not None:
        typer.echo("the admin token comes from FLEETWAVE_ADMIN_TOKEN")
    else:
        typer.echo(f"the admin token is in {settings.admin_token_path.resolve()}")


@cli.command()
def version() -> None:
    """Print fleetwave's version."""
    typer.echo(__version__)


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        print(f"fleetwave: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
