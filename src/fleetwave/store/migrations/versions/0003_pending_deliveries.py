"""webhook_deliveries recorded before they are planned

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08

A webhook is answered once its pushes are recorded, and planned after (see
``rollouts/deliveries.py``): the outcome "pending", the tags of one push grouped by
``push_id``, the payload kept until the push is planned, and when that happened. Deliveries
planned before this revision were planned when received.

Going down deletes the deliveries still pending: the older code cannot plan them, and a
registry's redelivery of the push is then planned as new.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OUTCOMES_BEFORE = "outcome IN ('rollout_created', 'duplicate', 'ignored', 'rejected')"
OUTCOMES = "outcome IN ('rollout_created', 'duplicate', 'ignored', 'rejected', 'pending')"
CHECK = "ck_webhook_deliveries_outcome"


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("push_id", sa.String(36), nullable=True))
        batch.add_column(
            sa.Column(
                "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
            )
        )
        batch.add_column(sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), OUTCOMES)
        batch.create_index(op.f("ix_webhook_deliveries_outcome"), ["outcome"], unique=False)
    op.execute("UPDATE webhook_deliveries SET planned_at = received_at")


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE outcome = 'pending'")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index(op.f("ix_webhook_deliveries_outcome"))
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), OUTCOMES_BEFORE)
        batch.drop_column("planned_at")
        batch.drop_column("payload")
        batch.drop_column("push_id")
