"""image_update_policies.max_concurrent_devices and .continuous (issue 16)

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06

``max_concurrent_devices``: a policy's own cap on its rollout's devices in flight, below the
fleet-wide ``FLEETWAVE_MAX_UPDATING_DEVICES`` (unset: none). ``continuous``: after a rollout
completed, a device that appears on its old image gets the rollout's image directly (default
on). Adding columns leaves the active_rollouts view alone; dropping them (going down) rebuilds
the table on SQLite, so the view is dropped and created again around it.
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def _view() -> str:
    """The active_rollouts view as 0001 created it."""
    spec = importlib.util.spec_from_file_location(
        "fleetwave_migration_0001", Path(__file__).with_name("0001_initial_schema.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.ACTIVE_ROLLOUTS_VIEW)


def upgrade() -> None:
    op.add_column("image_update_policies", sa.Column("max_concurrent_devices", sa.Integer()))
    op.add_column(
        "image_update_policies",
        sa.Column("continuous", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS active_rollouts")
    with op.batch_alter_table("image_update_policies") as batch:
        batch.drop_column("continuous")
        batch.drop_column("max_concurrent_devices")
    op.execute(_view())
