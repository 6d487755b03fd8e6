"""device_rings, image_update_policies.rings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Deployment rings: named, saved device selectors (fleet, tags, uuids); a policy may list rings
in order, and its rollouts' batches are then those rings instead of percentages.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "device_rings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("fleet_id", sa.String(length=255), nullable=True),
        sa.Column("device_tags", json, nullable=True),
        sa.Column("device_uuids", json, nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", moment, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", moment, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_rings")),
        sa.UniqueConstraint("name", name=op.f("uq_device_rings_name")),
    )
    # a plain ADD / DROP COLUMN: no table copy (SQLite's batch mode trips on the view)
    op.add_column("image_update_policies", sa.Column("rings", json, nullable=True))


def downgrade() -> None:
    op.drop_column("image_update_policies", "rings")
    op.drop_table("device_rings")
