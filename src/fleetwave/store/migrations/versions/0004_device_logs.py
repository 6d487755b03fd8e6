"""device_logs: the log lines devices send

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12

One row per line an agent sent (``POST /api/v1/device/{uuid}/logs``), deleted with its
device. Ids are BIGINTs (a fleet's lines pass 2^31 within days; SQLite's INTEGER is 64-bit
already, and AUTOINCREMENT keeps it from reusing the ids of deleted lines, so paging by id
never misses one). Retention (``FLEETWAVE_DEVICE_LOG_LINES``, ``FLEETWAVE_DEVICE_LOG_MAX_AGE``)
reads ``(device_uuid, id)`` and ``received_at``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_uuid", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=True),
        sa.Column("stream", sa.String(length=8), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "level IN ('debug', 'info', 'warn', 'error')", name=op.f("ck_device_logs_level")
        ),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name=op.f("fk_device_logs_device_uuid_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_logs")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("device_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_logs_device_uuid_id"), ["device_uuid", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_logs_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("device_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_logs_received_at"))
        batch_op.drop_index(batch_op.f("ix_device_logs_device_uuid_id"))
    op.drop_table("device_logs")
