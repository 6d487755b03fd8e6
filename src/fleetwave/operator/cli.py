"""The operator commands, added to the ``fleetwave`` command in one call."""

from __future__ import annotations

import typer

from fleetwave.operator.device_commands import devices_cli
from fleetwave.operator.help import ReadableCommand, readable
from fleetwave.operator.policy_commands import policies_cli
from fleetwave.operator.registry_commands import registries_cli
from fleetwave.operator.ring_commands import rings_cli
from fleetwave.operator.rollout_commands import rollouts_cli, trigger
from fleetwave.operator.user_commands import OfflineCreate, tokens_cli, users_cli
from fleetwave.operator.user_commands import install as install_users


def install(cli: typer.Typer, offline_create: OfflineCreate) -> None:
    """``offline_create``: how ``users create --offline`` writes to the database (the server's
    work, handed in so that the operator commands stay an HTTP client)."""
    install_users(cli, offline_create)
    for commands in (
        policies_cli,
        rings_cli,
        rollouts_cli,
        devices_cli,
        users_cli,
        tokens_cli,
        registries_cli,
    ):
        readable(commands)
    cli.add_typer(policies_cli, name="policies")
    cli.add_typer(rings_cli, name="rings")
    cli.add_typer(rollouts_cli, name="rollouts")
    cli.add_typer(devices_cli, name="devices")
    cli.add_typer(registries_cli, name="registries")
    cli.command("trigger", cls=ReadableCommand)(trigger)
