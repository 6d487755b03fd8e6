"""registries, registry_repositories

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Registries fleetwave polls (issue 17): their URL, interval, credentials (the password sealed
with the data directory's registry key), when each is polled next and how its last poll went;
and, per polled repository, the tags and digests its last poll found.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "registries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("poll_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_sealed", sa.Text(), nullable=True),
        sa.Column("insecure", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("next_poll_at", moment, nullable=False),
        sa.Column("last_polled_at", moment, nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registries")),
        sa.UniqueConstraint("name", name=op.f("uq_registries_name")),
    )
    op.create_index(
        op.f("ix_registries_next_poll_at"), "registries", ["next_poll_at"], unique=False
    )
    op.create_table(
        "registry_repositories",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("tags", json, nullable=False),
        sa.Column("polled_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name=op.f("fk_registry_repositories_registry_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registry_id", "repository", name=op.f("pk_registry_repositories")),
    )


def downgrade() -> None:
    op.drop_table("registry_repositories")
    op.drop_index(op.f("ix_registries_next_poll_at"), table_name="registries")
    op.drop_table("registries")
