"""devices.capabilities, device_rollout_status.not_applying_since, two event types

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12

What a device's agent declares it can do (``domain.capabilities``; an empty list for every
device so far: none declared, an iotistic-style agent until its next report says otherwise),
when a device of a rollout was seen not applying its target (``domain.not_applying``), and the
events for both: ``health_check_not_runnable`` and ``device_not_applying``.

Going down deletes the events of the two new types: the older CHECK refuses them.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EVENT_TYPES_BEFORE = (
    "rollout_created",
    "rollout_started",
    "batch_started",
    "batch_completed",
    "device_scheduled",
    "device_updated",
    "device_failed",
    "health_check_passed",
    "health_check_failed",
    "rollback_triggered",
    "rollout_paused",
    "rollout_resumed",
    "rollout_completed",
    "rollout_failed",
    "awaiting_approval",
    "rollout_approved",
    "rollout_rejected",
    "rollout_scheduled",
    "rollout_promoted",
    "rollout_cancelled",
    "rollout_superseded",
    "rollout_rolled_back",
    "device_progress",
    "device_retried",
    "device_skipped",
    "device_rolled_back",
    "rollback_failed",
    "webhook_received",
    "retry_requested",
)
NEW_EVENT_TYPES = ("health_check_not_runnable", "device_not_applying")
CHECK = "ck_rollout_events_event_type"


def one_of(values: tuple[str, ...]) -> str:
    return "event_type IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("capabilities", json, server_default="[]", nullable=False))
    with op.batch_alter_table("device_rollout_status") as batch:
        batch.add_column(sa.Column("not_applying_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("rollout_events") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), one_of(EVENT_TYPES_BEFORE + NEW_EVENT_TYPES))


def downgrade() -> None:
    op.execute(
        "DELETE FROM rollout_events"
        " WHERE event_type IN ('health_check_not_runnable', 'device_not_applying')"
    )
    with op.batch_alter_table("rollout_events") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), one_of(EVENT_TYPES_BEFORE))
    # ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35) rather than a batch: rebuilding a table the
    # active_rollouts view reads breaks on SQLite
    op.execute("ALTER TABLE device_rollout_status DROP COLUMN not_applying_since")
    op.execute("ALTER TABLE devices DROP COLUMN capabilities")
