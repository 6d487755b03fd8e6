"""image_update_policies.failure_rate_min_devices may be unset (null)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Unset means fleetwave's rule: the failure gate judges a rate once min(5, the first batch's
size) devices have finished (``domain.rollout_figures.judged_after``), rather than after the
first one — a rate of 1 in 1 is noise. Policies written before keep the number they hold (1
for most: the old default); an operator who wants the rule sets the field to null.

The active_rollouts view reads the policies' table, so it is dropped and created again around
the change (SQLite rebuilds the table). Going down writes 1 where the field is unset.
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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


def _alter(nullable: bool, server_default: str | None) -> None:
    op.execute("DROP VIEW IF EXISTS active_rollouts")
    with op.batch_alter_table("image_update_policies") as batch:
        batch.alter_column(
            "failure_rate_min_devices",
            existing_type=sa.Integer(),
            nullable=nullable,
            server_default=server_default,
        )
    op.execute(_view())


def upgrade() -> None:
    _alter(nullable=True, server_default=None)


def downgrade() -> None:
    op.execute(
        "UPDATE image_update_policies SET failure_rate_min_devices = 1"
        " WHERE failure_rate_min_devices IS NULL"
    )
    _alter(nullable=False, server_default="1")
