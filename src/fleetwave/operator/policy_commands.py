"""``fleetwave policies list|show|create|update|delete``.

``create`` and ``update`` take the usual fields as flags and any other as ``--set
field=value``; the server checks them and its message is shown as it came. ``update`` reads
the policy and writes it back with the changes (the API replaces a policy as a whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetwave.operator.args import (
    parse_assignments,
    parse_percentages,
    parse_tags,
    parse_window,
    read_json_object,
)
from fleetwave.operator.commands import (
    JsonOption,
    TokenOption,
    UrlOption,
    admin_api,
    emit,
    parsed,
)
from fleetwave.operator.render import policies_table, policy_view

policies_cli = typer.Typer(help="Image update policies.", no_args_is_help=True)

READ_ONLY = (
    "id", "effective_health_checks", "health_check_coverage", "created_at", "updated_at"
)  # fmt: skip

BATCHES, DEVICES, SAFETY, POLICY = "Batches", "Devices", "Safety", "Policy"
Strategy = Annotated[
    str | None,
    typer.Option(
        metavar="STRATEGY",
        show_default=False,
        rich_help_panel=BATCHES,
        help="auto | staged | manual | scheduled",
    ),
]
Batches = Annotated[
    int | None, typer.Option(metavar="N", rich_help_panel=BATCHES, help="how many batches")
]
Percentages = Annotated[
    str | None,
    typer.Option(metavar="PERCENTS", rich_help_panel=BATCHES, help="cumulative, e.g. 5,25,100"),
]
BatchDelay = Annotated[
    int | None,
    typer.Option(metavar="MINUTES", rich_help_panel=BATCHES, help="between batches"),
]
Window = Annotated[
    str | None,
    typer.Option(metavar="HH:MM-HH:MM", rich_help_panel=BATCHES, help="maintenance window"),
]
Timezone = Annotated[
    str | None,
    typer.Option(metavar="ZONE", rich_help_panel=BATCHES, help="the window's, e.g. Europe/Paris"),
]
Fleet = Annotated[
    str | None,
    typer.Option(metavar="FLEET", rich_help_panel=DEVICES, help="only devices of this fleet"),
]
Tags = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        metavar="KEY=VALUE",
        rich_help_panel=DEVICES,
        help="only devices tagged so (repeat)",
    ),
]
Devices = Annotated[
    list[str] | None,
    typer.Option("--device", metavar="UUID", rich_help_panel=DEVICES, help="only these (repeat)"),
]
MaxFailureRate = Annotated[
    float | None,
    typer.Option(metavar="RATE", rich_help_panel=SAFETY, help="pause above this, 0 to 1"),
]
HealthChecks = Annotated[
    bool | None,
    typer.Option(
        "--health-checks/--no-health-checks", rich_help_panel=SAFETY, help="run health checks"
    ),
]
AutoRollback = Annotated[
    bool | None,
    typer.Option(
        "--auto-rollback/--no-auto-rollback",
        rich_help_panel=SAFETY,
        help="roll failed devices back",
    ),
]
Enabled = Annotated[
    bool | None, typer.Option("--enable/--disable", rich_help_panel=POLICY, help="in use or not")
]
Priority = Annotated[
    int | None,
    typer.Option(metavar="N", rich_help_panel=POLICY, help="the highest matching wins"),
]
Description = Annotated[
    str | None, typer.Option(metavar="TEXT", rich_help_panel=POLICY, help="for people")
]
Assignments = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        rich_help_panel=POLICY,
        help="any other field (JSON or text), e.g. soak_seconds=0",
    ),
]
File = Annotated[
    Path | None,
    typer.Option(
        "--file", metavar="FILE", rich_help_panel=POLICY, help="JSON fields; flags override them"
    ),
]


@dataclass
class PolicyFlags:
    """The flags of ``create`` and ``update``, as the API's field names."""

    image_pattern: str | None = None
    update_strategy: str | None = None
    staged_batches: int | None = None
    percentages: str | None = None
    batch_delay_minutes: int | None = None
    window: str | None = None
    maintenance_window_timezone: str | None = None
    fleet_id: str | None = None
    tags: list[str] | None = None
    device_uuids: list[str] | None = None
    max_failure_rate: float | None = None
    health_check_enabled: bool | None = None
    auto_rollback: bool | None = None
    enabled: bool | None = None
    priority: int | None = None
    description: str | None = None
    assignments: list[str] = field(default_factory=list)
    file: Path | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given, file first, then flags, then ``--set``."""
        values: dict[str, Any] = parsed(self._file_fields)
        plain = ("assignments", "file", "percentages", "window", "tags")
        values |= {k: v for k, v in vars(self).items() if k not in plain and v not in (None, [])}
        if self.percentages is not None:
            values["batch_percentages"] = parsed(parse_percentages, self.percentages)
        if self.window is not None:
            start, end = parsed(parse_window, self.window)
            values |= {"maintenance_window_start": start, "maintenance_window_end": end}
        if self.tags:
            values["device_tags"] = parsed(parse_tags, self.tags)
        assigned: dict[str, Any] = parsed(parse_assignments, self.assignments)
        return values | assigned

    def _file_fields(self) -> dict[str, Any]:
        if self.file is None:
            return {}
        try:
            text = self.file.read_text()
        except OSError as exc:
            raise ValueError(f"--file {self.file}: {exc.strerror or exc}") from None
        return read_json_object(text, f"--file {self.file}")


def updated(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The whole policy to PUT: what it is, with the changes."""
    body = {k: v for k, v in current.items() if k not in READ_ONLY} | changes
    if "staged_batches" in changes and "batch_percentages" not in changes:
        body["batch_percentages"] = None  # a new batch count replaces the old percentages
    return body


@policies_cli.command("list")
def list_policies(
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    enabled: Enabled = None,
    strategy: Strategy = None,
    fleet: Fleet = None,
    image: Annotated[str | None, typer.Option(help="those whose pattern matches it")] = None,
) -> None:
    """Policies, highest priority first."""
    with admin_api(url, token) as api:
        found = api.policies(enabled=enabled, strategy=strategy, fleet_id=fleet, image=image)
    emit(found, as_json, policies_table)


@policies_cli.command("show")
def show_policy(
    policy_id: int, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """One policy with every field and the health checks that apply."""
    with admin_api(url, token) as api:
        emit(api.policy(policy_id), as_json, policy_view)


@policies_cli.command("create")
def create_policy(
    pattern: Annotated[str, typer.Argument(help="image pattern, e.g. 'iotistic/myapp:*'")],
    strategy: Strategy = None,
    batches: Batches = None,
    percentages: Percentages = None,
    batch_delay: BatchDelay = None,
    window: Window = None,
    timezone: Timezone = None,
    fleet: Fleet = None,
    tag: Tags = None,
    device: Devices = None,
    max_failure_rate: MaxFailureRate = None,
    health_checks: HealthChecks = None,
    auto_rollback: AutoRollback = None,
    enable: Enabled = None,
    priority: Priority = None,
    description: Description = None,
    assignments: Assignments = None,
    file: File = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a policy; fields not given take the server's defaults."""
    flags = PolicyFlags(
        image_pattern=pattern, update_strategy=strategy, staged_batches=batches,
        percentages=percentages, batch_delay_minutes=batch_delay, window=window,
        maintenance_window_timezone=timezone, fleet_id=fleet, tags=tag, device_uuids=device,
        max_failure_rate=max_failure_rate, health_check_enabled=health_checks,
        auto_rollback=auto_rollback, enabled=enable, priority=priority, description=description,
        assignments=assignments or [], file=file,
    )  # fmt: skip
    changes = flags.changes()
    with admin_api(url, token) as api:
        emit(api.create_policy(changes), as_json, policy_view)


@policies_cli.command("update")
def update_policy(
    policy_id: int,
    pattern: Annotated[str | None, typer.Option(help="a new image pattern")] = None,
    strategy: Strategy = None,
    batches: Batches = None,
    percentages: Percentages = None,
    batch_delay: BatchDelay = None,
    window: Window = None,
    timezone: Timezone = None,
    fleet: Fleet = None,
    tag: Tags = None,
    device: Devices = None,
    max_failure_rate: MaxFailureRate = None,
    health_checks: HealthChecks = None,
    auto_rollback: AutoRollback = None,
    enable: Enabled = None,
    priority: Priority = None,
    description: Description = None,
    assignments: Assignments = None,
    file: File = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change some fields of a policy; the others keep their values (--tag replaces the tags).

    Running rollouts keep the settings they started with."""
    flags = PolicyFlags(
        image_pattern=pattern, update_strategy=strategy, staged_batches=batches,
        percentages=percentages, batch_delay_minutes=batch_delay, window=window,
        maintenance_window_timezone=timezone, fleet_id=fleet, tags=tag, device_uuids=device,
        max_failure_rate=max_failure_rate, health_check_enabled=health_checks,
        auto_rollback=auto_rollback, enabled=enable, priority=priority, description=description,
        assignments=assignments or [], file=file,
    )  # fmt: skip
    changes = flags.changes()
    with admin_api(url, token) as api:
        current = api.policy(policy_id)
        emit(api.replace_policy(policy_id, updated(current, changes)), as_json, policy_view)


@policies_cli.command("delete")
def delete_policy(policy_id: int, url: UrlOption = None, token: TokenOption = None) -> None:
    """Delete a policy (rollouts it started keep their settings)."""
    with admin_api(url, token) as api:
        api.delete_policy(policy_id)
    typer.echo(f"policy {policy_id} deleted")
