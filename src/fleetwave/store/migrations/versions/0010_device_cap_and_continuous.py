"""Policies' max_concurrent_devices and continuous; late joiners' indexes and event (issue 16)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

``max_concurrent_devices``: a policy's own cap on its rollout's devices in flight, below the
fleet-wide ``FLEETWAVE_MAX_UPDATING_DEVICES`` (unset: none). ``continuous``: after a rollout
completed, a device that appears on its old image gets the rollout's image directly (default
on). Late joiners are looked for among devices registered, or whose report changed, since
the monitor's last look: ``devices.created_at`` and ``device_current_state.reported_at`` are
indexed for it, and ``device_joined`` joins the event types.

Adding columns leaves the active_rollouts view alone; dropping them (going down) rebuilds
the table on SQLite, so the view is dropped and created again around it.
"""

import importlib.util
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _module(name: str, file: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _view() -> str:
    """The active_rollouts view as 0001 created it."""
    return str(_module("fleetwave_migration_0001", "0001_initial_schema.py").ACTIVE_ROLLOUTS_VIEW)


def _event_types() -> tuple[str, ...]:
    """The event types as 0005 left them."""
    before = _module("fleetwave_migration_0005", "0005_device_capabilities.py")
    return tuple(before.EVENT_TYPES_BEFORE + before.NEW_EVENT_TYPES)


CHECK = "ck_rollout_events_event_type"


def _one_of(values: tuple[str, ...]) -> str:
    return "event_type IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _event_check(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("rollout_events") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), _one_of(values))


def upgrade() -> None:
    op.add_column("image_update_policies", sa.Column("max_concurrent_devices", sa.Integer()))
    op.add_column(
        "image_update_policies",
        sa.Column("continuous", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_index(op.f("ix_devices_created_at"), "devices", ["created_at"])
    op.create_index(
        op.f("ix_device_current_state_reported_at"), "device_current_state", ["reported_at"]
    )
    _event_check((*_event_types(), "device_joined"))


def downgrade() -> None:
    op.execute("DELETE FROM rollout_events WHERE event_type = 'device_joined'")
    _event_check(_event_types())
    op.drop_index(op.f("ix_device_current_state_reported_at"), "device_current_state")
    op.drop_index(op.f("ix_devices_created_at"), "devices")
    op.execute("DROP VIEW IF EXISTS active_rollouts")
    with op.batch_alter_table("image_update_policies") as batch:
        batch.drop_column("continuous")
        batch.drop_column("max_concurrent_devices")
    op.execute(_view())
