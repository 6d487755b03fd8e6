"""``fleetwave rings list|show|create|update|delete``: the deployment rings policies list."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetwave.operator.args import parse_tags
from fleetwave.operator.commands import (
    JsonOption,
    TokenOption,
    UrlOption,
    admin_api,
    emit,
    parsed,
)
from fleetwave.operator.plan_views import ring_view, rings_table

rings_cli = typer.Typer(help="Deployment rings: named device selectors.", no_args_is_help=True)

Fleet = Annotated[str | None, typer.Option(metavar="FLEET", help="devices of this fleet")]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", metavar="KEY=VALUE", help="with this tag (repeat)")
]
Devices = Annotated[
    list[str] | None, typer.Option("--device", metavar="UUID", help="only these (repeat)")
]
Description = Annotated[str | None, typer.Option(help="what the ring is for")]


def selector(
    fleet: str | None, tag: list[str] | None, device: list[str] | None, description: str | None
) -> dict[str, Any]:
    return {
        "fleet_id": fleet,
        "device_tags": parsed(parse_tags, tag) if tag else None,
        "device_uuids": device,
        "description": description,
    }


@rings_cli.command("list")
def list_rings(
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Every ring, with how many devices it selects now and the policies listing it."""
    with admin_api(url, token) as api:
        emit(api.rings(), as_json, rings_table)


@rings_cli.command("show")
def show_ring(
    name: str, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """One ring."""
    with admin_api(url, token) as api:
        emit(api.ring(name), as_json, ring_view)


@rings_cli.command("create")
def create_ring(
    name: str,
    fleet: Fleet = None,
    tag: Tags = None,
    device: Devices = None,
    description: Description = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save a ring: the devices matching every part given (none given: every device)."""
    body = {"name": name} | selector(fleet, tag, device, description)
    with admin_api(url, token) as api:
        emit(api.create_ring(body), as_json, ring_view)


@rings_cli.command("update")
def update_ring(
    name: str,
    fleet: Fleet = None,
    tag: Tags = None,
    device: Devices = None,
    description: Description = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a ring's selector whole with the parts given."""
    with admin_api(url, token) as api:
        emit(api.replace_ring(name, selector(fleet, tag, device, description)), as_json, ring_view)


@rings_cli.command("delete")
def delete_ring(name: str, url: UrlOption = None, token: TokenOption = None) -> None:
    """Remove a ring (refused while a policy lists it)."""
    with admin_api(url, token) as api:
        api.delete_ring(name)
    typer.echo(f"ring {name} deleted")
