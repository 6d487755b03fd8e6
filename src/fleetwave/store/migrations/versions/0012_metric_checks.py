"""device_metric_samples and batch_analyses: metric health checks and Prometheus analysis

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

``device_metric_samples`` keeps the numeric readings of devices' recent state reports (one row
per changed report with metrics), pruned by age and count; ``metric`` health checks judge a
device on them. ``batch_analyses`` keeps each ``prometheus`` check's result per batch.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_metric_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_uuid", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "samples", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name=op.f("fk_device_metric_samples_device_uuid_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_metric_samples")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("device_metric_samples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_metric_samples_device_uuid_received_at"),
            ["device_uuid", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_device_metric_samples_received_at"), ["received_at"], unique=False
        )
    op.create_table(
        "batch_analyses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(length=255), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=False),
        sa.Column("check_name", sa.String(length=255), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["image_rollouts.rollout_id"],
            name=op.f("fk_batch_analyses_rollout_id_image_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_analyses")),
        sa.UniqueConstraint(
            "rollout_id",
            "batch_number",
            "check_name",
            name=op.f("uq_batch_analyses_rollout_id_batch_number_check_name"),
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("batch_analyses")
    with op.batch_alter_table("device_metric_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_metric_samples_received_at"))
        batch_op.drop_index(batch_op.f("ix_device_metric_samples_device_uuid_received_at"))
    op.drop_table("device_metric_samples")
