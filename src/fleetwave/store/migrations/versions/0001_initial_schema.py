"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Every table of DESIGN.md §2 with all the original plan's columns, the device tables it
assumed, provisioning keys, webhook deliveries, and the active_rollouts view.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Active rollouts with progress figures (the seed's view), written in SQL both databases speak.
ACTIVE_ROLLOUTS_VIEW = """
CREATE VIEW active_rollouts AS
SELECT
  r.*,
  p.image_pattern,
  p.description AS policy_description,
  CAST(r.updated_devices AS FLOAT) * 100.0 / NULLIF(r.total_devices, 0) AS progress_percentage,
  COUNT(d.device_uuid) FILTER (WHERE d.status = 'completed') AS devices_completed,
  COUNT(d.device_uuid) FILTER (WHERE d.status = 'failed') AS devices_failed,
  COUNT(d.device_uuid) FILTER (WHERE d.status IN ('pending', 'scheduled')) AS devices_pending,
  COUNT(d.device_uuid) FILTER (WHERE d.status IN ('pulling', 'updating', 'health_checking'))
    AS devices_in_flight,
  COUNT(d.device_uuid) FILTER (WHERE d.status = 'rolled_back') AS devices_rolled_back
FROM image_rollouts r
LEFT JOIN image_update_policies p ON r.policy_id = p.id
LEFT JOIN device_rollout_status d ON r.rollout_id = d.rollout_id
WHERE r.status IN ('pending', 'awaiting_approval', 'scheduled', 'in_progress', 'paused')
GROUP BY r.id, p.id, p.image_pattern, p.description
"""


def upgrade() -> None:
    op.create_table(
        "image_update_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_pattern", sa.String(length=255), nullable=False),
        sa.Column("update_strategy", sa.String(length=50), nullable=False),
        sa.Column("staged_batches", sa.Integer(), server_default="3", nullable=True),
        sa.Column("batch_delay_minutes", sa.Integer(), server_default="30", nullable=True),
        sa.Column("health_check_enabled", sa.Boolean(), server_default=sa.true(), nullable=True),
        sa.Column(
            "health_check_timeout_seconds", sa.Integer(), server_default="300", nullable=True
        ),
        sa.Column("auto_rollback", sa.Boolean(), server_default=sa.true(), nullable=True),
        sa.Column(
            "health_check_config",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("maintenance_window_start", sa.Time(), nullable=True),
        sa.Column("maintenance_window_end", sa.Time(), nullable=True),
        sa.Column("fleet_id", sa.String(length=255), nullable=True),
        sa.Column(
            "device_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "device_uuids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("semver_policy", sa.String(length=10), nullable=True),
        sa.Column("allow_prerelease", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "include_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "exclude_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "batch_percentages",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("max_failure_rate", sa.Numeric(precision=5, scale=4), nullable=True),
        sa.Column(
            "maintenance_window_timezone",
            sa.String(length=64),
            server_default="UTC",
            nullable=False,
        ),
        sa.Column("pin_digest", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("update_timeout_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default="3", nullable=False),
        sa.Column("failure_rate_min_devices", sa.Integer(), server_default="1", nullable=False),
        sa.Column("offline_grace_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column("soak_seconds", sa.Integer(), server_default="60", nullable=False),
        sa.Column("approve_each_batch", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "semver_policy IS NULL OR semver_policy IN ('major', 'minor', 'patch', 'all')",
            name=op.f("ck_image_update_policies_semver_policy"),
        ),
        sa.CheckConstraint(
            "update_strategy IN ('auto', 'staged', 'manual', 'scheduled')",
            name=op.f("ck_image_update_policies_update_strategy"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_update_policies")),
    )
    with op.batch_alter_table("image_update_policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_update_policies_enabled_priority"),
            ["enabled", "priority"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_image_update_policies_image_pattern"), ["image_pattern"], unique=False
        )

    op.create_table(
        "provisioning_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("fleet_id", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "max_uses IS NULL OR max_uses > 0", name=op.f("ck_provisioning_keys_max_uses_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_provisioning_keys_key_hash")),
    )
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(length=255), nullable=False),
        sa.Column("device_uuid", sa.String(length=64), nullable=True),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column(
            "event_data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "timestamp", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "event_type IN ('rollout_created', 'rollout_started', 'batch_started', 'batch_completed', 'device_scheduled', 'device_updated', 'device_failed', 'health_check_passed', 'health_check_failed', 'rollback_triggered', 'rollout_paused', 'rollout_resumed', 'rollout_completed', 'rollout_failed', 'awaiting_approval', 'rollout_approved', 'rollout_rejected', 'rollout_scheduled', 'rollout_promoted', 'rollout_cancelled', 'rollout_superseded', 'rollout_rolled_back', 'device_progress', 'device_retried', 'device_skipped', 'device_rolled_back', 'rollback_failed', 'webhook_received', 'retry_requested')",
            name=op.f("ck_rollout_events_event_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_events")),
    )
    with op.batch_alter_table("rollout_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rollout_events_device_uuid"), ["device_uuid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rollout_events_event_type"), ["event_type"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rollout_events_rollout_id_timestamp"),
            ["rollout_id", "timestamp"],
            unique=False,
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=512), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=True),
        sa.Column("image_name", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=True),
        sa.Column("digest", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rollout_id", sa.String(length=255), nullable=True),
        sa.Column("deliveries", sa.Integer(), server_default="1", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('rollout_created', 'duplicate', 'ignored', 'rejected')",
            name=op.f("ck_webhook_deliveries_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_deliveries_dedupe_key")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_image_name_tag"), ["image_name", "tag"], unique=False
        )

    op.create_table(
        "devices",
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("device_name", sa.String(length=255), nullable=False),
        sa.Column("device_type", sa.String(length=100), nullable=True),
        sa.Column("fleet_id", sa.String(length=255), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("is_online", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_connectivity_event", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("mac_address", sa.String(length=64), nullable=True),
        sa.Column("os_version", sa.String(length=100), nullable=True),
        sa.Column("supervisor_version", sa.String(length=100), nullable=True),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("target_etag", sa.String(length=66), nullable=False),
        sa.Column("provisioning_key_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provisioning_key_id"],
            ["provisioning_keys.id"],
            name=op.f("fk_devices_provisioning_key_id_provisioning_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_devices")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_devices_api_key_hash")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_fleet_id"), ["fleet_id"], unique=False)

    op.create_table(
        "image_rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(length=255), nullable=False),
        sa.Column("image_name", sa.String(length=255), nullable=False),
        sa.Column("old_tag", sa.String(length=128), nullable=True),
        sa.Column("new_tag", sa.String(length=128), nullable=False),
        sa.Column(
            "registry", sa.String(length=255), server_default="hub.docker.com", nullable=True
        ),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(length=50), nullable=False),
        sa.Column("total_devices", sa.Integer(), nullable=False),
        sa.Column(
            "batch_sizes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("status", sa.String(length=50), server_default="pending", nullable=False),
        sa.Column("current_batch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_devices", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_devices", sa.Integer(), server_default="0", nullable=False),
        sa.Column("healthy_devices", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rolled_back_devices", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "failure_rate", sa.Numeric(precision=5, scale=4), server_default="0", nullable=False
        ),
        sa.Column("auto_paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("triggered_by", sa.String(length=100), nullable=True),
        sa.Column(
            "webhook_payload",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "filters_applied",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(length=128), nullable=True),
        sa.Column("new_image", sa.String(length=512), nullable=True),
        sa.Column("superseded_by", sa.String(length=255), nullable=True),
        sa.Column(
            "settings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("approved_batch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("current_batch_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gate_accepted_failures", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'awaiting_approval', 'scheduled', 'in_progress', 'paused', 'completed', 'failed', 'cancelled', 'rolled_back')",
            name=op.f("ck_image_rollouts_status"),
        ),
        sa.CheckConstraint(
            "strategy IN ('auto', 'staged', 'manual', 'scheduled')",
            name=op.f("ck_image_rollouts_strategy"),
        ),
        sa.CheckConstraint(
            "failure_rate >= 0 AND failure_rate <= 1",
            name=op.f("ck_image_rollouts_failure_rate_fraction"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["image_update_policies.id"],
            name=op.f("fk_image_rollouts_policy_id_image_update_policies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_rollouts")),
        sa.UniqueConstraint("rollout_id", name=op.f("uq_image_rollouts_rollout_id")),
    )
    with op.batch_alter_table("image_rollouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_rollouts_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_image_rollouts_image_name_new_tag"),
            ["image_name", "new_tag"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_image_rollouts_status"), ["status"], unique=False)

    op.create_table(
        "device_current_state",
        sa.Column("device_uuid", sa.String(length=64), nullable=False),
        sa.Column("apps", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "system_info", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name=op.f("fk_device_current_state_device_uuid_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_uuid", name=op.f("pk_device_current_state")),
    )
    op.create_table(
        "device_rollout_status",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(length=255), nullable=False),
        sa.Column("device_uuid", sa.String(length=64), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=50), server_default="pending", nullable=False),
        sa.Column("old_image_tag", sa.String(length=128), nullable=True),
        sa.Column("new_image_tag", sa.String(length=128), nullable=True),
        sa.Column("current_image_tag", sa.String(length=128), nullable=True),
        sa.Column("health_check_passed", sa.Boolean(), nullable=True),
        sa.Column(
            "health_check_details",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("health_check_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("update_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("image_pulled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("container_restarted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("update_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "error_details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default="3", nullable=False),
        sa.Column(
            "old_images", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("new_image", sa.String(length=512), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("rollback_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'scheduled', 'pulling', 'updating', 'health_checking', 'completed', 'failed', 'rolled_back', 'rollback_failed', 'skipped')",
            name=op.f("ck_device_rollout_status_status"),
        ),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name=op.f("fk_device_rollout_status_device_uuid_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["image_rollouts.rollout_id"],
            name=op.f("fk_device_rollout_status_rollout_id_image_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_rollout_status")),
        sa.UniqueConstraint(
            "rollout_id",
            "device_uuid",
            name=op.f("uq_device_rollout_status_rollout_id_device_uuid"),
        ),
    )
    with op.batch_alter_table("device_rollout_status", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_rollout_status_device_uuid_status"),
            ["device_uuid", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_device_rollout_status_rollback_requested_at"),
            ["rollback_requested_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_device_rollout_status_rollout_id_batch_number_status"),
            ["rollout_id", "batch_number", "status"],
            unique=False,
        )

    op.create_table(
        "device_target_images",
        sa.Column("device_uuid", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("service_name", sa.String(length=255), nullable=False),
        sa.Column("repository", sa.String(length=512), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=True),
        sa.Column("digest", sa.String(length=128), nullable=True),
        sa.Column("image", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name=op.f("fk_device_target_images_device_uuid_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "device_uuid", "app_id", "service_name", name=op.f("pk_device_target_images")
        ),
    )
    with op.batch_alter_table("device_target_images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_target_images_repository_tag"),
            ["repository", "tag"],
            unique=False,
        )

    op.create_table(
        "device_target_state",
        sa.Column("device_uuid", sa.String(length=64), nullable=False),
        sa.Column("apps", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "extensions",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["device_uuid"],
            ["devices.uuid"],
            name=op.f("fk_device_target_state_device_uuid_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_uuid", name=op.f("pk_device_target_state")),
    )

    op.execute(ACTIVE_ROLLOUTS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS active_rollouts")
    op.drop_table("device_target_state")
    with op.batch_alter_table("device_target_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_target_images_repository_tag"))

    op.drop_table("device_target_images")
    with op.batch_alter_table("device_rollout_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_rollout_status_rollout_id_batch_number_status"))
        batch_op.drop_index(batch_op.f("ix_device_rollout_status_rollback_requested_at"))
        batch_op.drop_index(batch_op.f("ix_device_rollout_status_device_uuid_status"))

    op.drop_table("device_rollout_status")
    op.drop_table("device_current_state")
    with op.batch_alter_table("image_rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_rollouts_status"))
        batch_op.drop_index(batch_op.f("ix_image_rollouts_image_name_new_tag"))
        batch_op.drop_index(batch_op.f("ix_image_rollouts_created_at"))

    op.drop_table("image_rollouts")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_fleet_id"))

    op.drop_table("devices")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_image_name_tag"))

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("rollout_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollout_events_rollout_id_timestamp"))
        batch_op.drop_index(batch_op.f("ix_rollout_events_event_type"))
        batch_op.drop_index(batch_op.f("ix_rollout_events_device_uuid"))

    op.drop_table("rollout_events")
    op.drop_table("provisioning_keys")
    with op.batch_alter_table("image_update_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_update_policies_image_pattern"))
        batch_op.drop_index(batch_op.f("ix_image_update_policies_enabled_priority"))

    op.drop_table("image_update_policies")
