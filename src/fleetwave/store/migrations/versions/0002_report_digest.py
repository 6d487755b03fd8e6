"""device_current_state.report_digest

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

A digest of the last report stored and of the target it was judged against: a report whose
content and target have not changed since writes nothing but last-seen (see
``devices/protocol.py``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device_current_state") as batch:
        batch.add_column(sa.Column("report_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_current_state") as batch:
        batch.drop_column("report_digest")
