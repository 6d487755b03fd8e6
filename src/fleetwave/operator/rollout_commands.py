"""``fleetwave rollouts …`` and ``fleetwave trigger``: read, steer and watch rollouts."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.live import Live

from fleetwave.operator.args import parse_tags
from fleetwave.operator.client import AdminClient
from fleetwave.operator.commands import (
    JsonOption,
    LimitOption,
    TokenOption,
    UrlOption,
    admin_api,
    console,
    emit,
    parsed,
)
from fleetwave.operator.outcomes import ExitCode
from fleetwave.operator.plan_views import preview_view
from fleetwave.operator.render import (
    control_view,
    events_table,
    rollout_devices_table,
    rollout_view,
    rollouts_table,
    trigger_view,
)
from fleetwave.operator.watch import (
    JsonDisplay,
    LiveDisplay,
    LogDisplay,
    Pace,
    RolloutFeed,
    watch,
)

rollouts_cli = typer.Typer(help="Rollouts: list, inspect, steer, watch.", no_args_is_help=True)

RolloutId = Annotated[
    str, typer.Argument(help="the rollout's id, or its first 8 or more characters")
]
Note = Annotated[str | None, typer.Option(help="why, kept in the event log")]
Statuses = Annotated[list[str] | None, typer.Option("--status", help="repeatable")]
Cursor = Annotated[str | None, typer.Option(help="the next page, as the previous one said")]

CONTROLS = {
    "pause": "Pause: no new batch; devices already updating finish.",
    "approve": "Approve a rollout awaiting approval (manual strategy): it starts.",
    "reject": "Reject a rollout awaiting approval: it is cancelled, no device changed.",
    "promote": "Start the next batch now, skipping the delay (never the failure gate).",
    "cancel": "Cancel: no new devices; devices not yet on the new image go back.",
    "retry-failed": "Give failed and rolled-back devices with retries left the new image again.",
    "rollback-all": "Send every device the rollout moved back to its own old images.",
}


def control_body(note: str | None, force: bool = False) -> dict[str, Any]:
    """A control's body: the server records who acted from the token, never from here."""
    return {"note": note, "force": force}


@rollouts_cli.command("list")
def list_rollouts(
    status: Statuses = None,
    image: Annotated[str | None, typer.Option(help="only this image, e.g. iotistic/myapp")] = None,
    since: Annotated[
        str | None, typer.Option(help="created at or after, e.g. 2026-12-01 or 2026-12-01T08:00Z")
    ] = None,
    until: Annotated[str | None, typer.Option(help="created before (a date or a time)")] = None,
    limit: LimitOption = None,
    offset: Annotated[int | None, typer.Option(help="skip this many rollouts")] = None,
    cursor: Annotated[int | None, typer.Option(help="the next page")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rollouts, newest first: progress, failures against the bound, what each waits for."""
    with admin_api(url, token) as api:
        page = api.rollouts(
            status=status,
            image=image,
            created_from=since,
            created_until=until,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
    emit(page, as_json, rollouts_table)


@rollouts_cli.command("show")
def show_rollout(
    rollout_id: RolloutId,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """One rollout: its settings, progress per batch, and what it waits for."""
    with admin_api(url, token) as api:
        emit(api.rollout(rollout_id), as_json, rollout_view)


@rollouts_cli.command("devices")
def rollout_devices(
    rollout_id: RolloutId,
    batch: Annotated[int | None, typer.Option(help="only this batch")] = None,
    status: Statuses = None,
    search: Annotated[str | None, typer.Option(help="text in the device's uuid or name")] = None,
    limit: LimitOption = None,
    cursor: Cursor = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The rollout's devices: batch, status, old → new tag, health, error."""
    with admin_api(url, token) as api:
        page = api.rollout_devices(
            rollout_id, batch=batch, status=status, q=search, limit=limit, cursor=cursor
        )
    emit(page, as_json, rollout_devices_table)


@rollouts_cli.command("events")
def rollout_events(
    rollout_id: RolloutId,
    after: Annotated[int, typer.Option(help="events after this id")] = 0,
    limit: LimitOption = None,
    event_type: Annotated[str | None, typer.Option("--type", help="e.g. device_failed")] = None,
    device: Annotated[str | None, typer.Option(help="only this device's events")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The rollout's event log, oldest first."""
    with admin_api(url, token) as api:
        page = api.rollout_events(
            rollout_id, after=after, limit=limit, event_type=event_type, device_uuid=device
        )
    emit(page, as_json, events_table)


def _control_command(name: str, doc: str) -> None:
    def command(
        rollout_id: RolloutId,
        note: Note = None,
        url: UrlOption = None,
        token: TokenOption = None,
        as_json: JsonOption = False,
    ) -> None:
        with admin_api(url, token) as api:
            rollout = api.control(rollout_id, name, control_body(note))
        emit(rollout, as_json, lambda r: control_view(name, r))

    command.__doc__ = doc
    rollouts_cli.command(name)(command)


for _name, _doc in CONTROLS.items():
    _control_command(_name, _doc)


@rollouts_cli.command("resume")
def resume(
    rollout_id: RolloutId,
    force: Annotated[bool, typer.Option(help="pass a failure gate that is still tripped")] = False,
    note: Note = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a paused rollout (--force past a failure gate still tripped)."""
    with admin_api(url, token) as api:
        rollout = api.control(rollout_id, "resume", control_body(note, force))
    emit(rollout, as_json, lambda r: control_view("resume", r))


DEVICE_CONTROLS = {
    "rollback": "Send one device of the rollout back to its own old images.",
    "retry": "Give one failed or rolled-back device of the rollout the new image again.",
}


def _device_command(action: str, doc: str) -> None:
    def command(
        rollout_id: RolloutId,
        uuid: Annotated[str, typer.Argument(help="the device's uuid")],
        note: Note = None,
        url: UrlOption = None,
        token: TokenOption = None,
        as_json: JsonOption = False,
    ) -> None:
        with admin_api(url, token) as api:
            rollout = api.device_control(rollout_id, uuid, action, control_body(note))
        emit(rollout, as_json, lambda r: control_view(f"{action} {uuid}", r))

    command.__doc__ = doc
    rollouts_cli.command(f"{action}-device")(command)


for _action, _doc in DEVICE_CONTROLS.items():
    _device_command(_action, _doc)


WATCH, DEVICES = "Watch", "Devices"
Interval = Annotated[
    float,
    typer.Option(min=0.05, metavar="SECONDS", rich_help_panel=WATCH, help="between reads"),
]
Timeout = Annotated[
    float | None,
    typer.Option(min=0, metavar="SECONDS", rich_help_panel=WATCH, help="then give up (exit 14)"),
]
ThroughPause = Annotated[
    bool,
    typer.Option("--through-pause", rich_help_panel=WATCH, help="keep watching a paused rollout"),
]


@rollouts_cli.command("watch")
def watch_rollout(
    rollout_id: RolloutId,
    interval: Interval = 1.0,
    timeout: Timeout = None,
    through_pause: ThroughPause = False,
    events: Annotated[int, typer.Option(min=0, help="how many of the newest events")] = 8,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a rollout live until it ends: a bar per batch and the newest events.

    Exit codes: 0 completed, 10 failed, 11 cancelled, 12 rolled back,
    13 paused (unless --through-pause), 14 --timeout reached;
    1 refused, 3 unreachable, 4 no or wrong token."""
    with admin_api(url, token) as api:
        code = follow(api, rollout_id, Pace(time.sleep, time.monotonic, interval, timeout),
                      through_pause=through_pause, keep=events, as_json=as_json)  # fmt: skip
    raise typer.Exit(int(code))


def follow(
    api: AdminClient,
    rollout_id: str,
    pace: Pace,
    *,
    through_pause: bool = False,
    keep: int = 8,
    as_json: bool = False,
) -> ExitCode:
    """Watch with the display that suits the output: live, log lines, or JSON lines."""
    feed = RolloutFeed(api, rollout_id, keep=keep)
    out = console()
    if as_json:
        code = watch(feed, JsonDisplay(typer.echo), pace, through_pause=through_pause)
        typer.echo(json.dumps(api.rollout(rollout_id)))
        return code
    if not out.is_terminal:
        code = watch(feed, LogDisplay(out), pace, through_pause=through_pause)
    else:
        with Live(console=out, auto_refresh=False, transient=False) as live:
            code = watch(feed, LiveDisplay(live), pace, through_pause=through_pause)
    out.print(ending_line(rollout_id, code))
    return code


ENDING_WORDS = {
    ExitCode.OK: "completed",
    ExitCode.FAILED: "failed",
    ExitCode.CANCELLED: "was cancelled",
    ExitCode.ROLLED_BACK: "was rolled back",
    ExitCode.PAUSED: "is paused",
    ExitCode.TIMED_OUT: "is not finished yet (timeout)",
}


def ending_line(rollout_id: str, code: ExitCode) -> str:
    return f"rollout {rollout_id} {ENDING_WORDS.get(code, 'ended')} (exit {int(code)})"


def trigger(
    image: Annotated[str, typer.Argument(help="IMAGE:TAG, e.g. iotistic/myapp:v2.0.1")],
    strategy: Annotated[
        str | None,
        typer.Option(metavar="STRATEGY", help="auto | staged | manual | scheduled"),
    ] = None,
    fleet: Annotated[
        str | None,
        typer.Option(metavar="FLEET", rich_help_panel=DEVICES, help="only devices of this fleet"),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", rich_help_panel=DEVICES, help="only these (repeat)"),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(metavar="UUID", rich_help_panel=DEVICES, help="only these (repeat)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="allow rolling back to an older version")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="show what it would do (batches, times); start nothing"),
    ] = False,
    then_watch: Annotated[
        bool,
        typer.Option("--watch", rich_help_panel=WATCH, help="then watch it (watch's exit codes)"),
    ] = False,
    interval: Interval = 1.0,
    timeout: Timeout = None,
    through_pause: ThroughPause = False,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Roll an image out now, as if its registry had announced it (the policy's strategy
    unless --strategy). With --watch, follow it as `rollouts watch` does, with its
    --interval, --timeout and --through-pause."""
    if not then_watch and (timeout is not None or through_pause):
        raise typer.BadParameter("--timeout and --through-pause need --watch")
    if dry_run and then_watch:
        raise typer.BadParameter("--dry-run starts nothing to --watch")
    request: dict[str, Any] = {"image": image, "strategy": strategy, "force": force or None}
    filters = {
        "fleet_id": fleet,
        "device_tags": parsed(parse_tags, tag or []),
        "device_uuids": device,
    }
    filters = {k: v for k, v in filters.items() if v}
    if filters:
        request["filters"] = filters
    with admin_api(url, token) as api:
        body = {k: v for k, v in request.items() if v is not None}
        if dry_run:
            emit(api.preview(body), as_json, preview_view)
            return
        answer = api.trigger(body)
        emit(answer, as_json and not then_watch, trigger_view)
        if not then_watch or not answer.get("rollout_id"):
            return
        pace = Pace(time.sleep, time.monotonic, interval, timeout)
        code = follow(api, answer["rollout_id"], pace, through_pause=through_pause, as_json=as_json)
    raise typer.Exit(int(code))
