"""The migration history: it builds exactly the tables the code uses, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from fleetwave.store.db import sync_url
from fleetwave.store.migrate import current_revision, downgrade, head_revision, upgrade
from fleetwave.store.tables import (
    device_rollout_status,
    devices,
    image_rollouts,
    image_update_policies,
    metadata,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_every_seed_column_exists(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    columns = {
        table: {c["name"] for c in inspect(engine).get_columns(table)}
        for table in ("image_update_policies", "image_rollouts", "device_rollout_status")
    }
    engine.dispose()
    assert {
        "image_pattern",
        "update_strategy",
        "staged_batches",
        "batch_delay_minutes",
        "health_check_enabled",
        "health_check_timeout_seconds",
        "auto_rollback",
        "health_check_config",
        "maintenance_window_start",
        "maintenance_window_end",
        "fleet_id",
        "device_tags",
        "device_uuids",
        "enabled",
        "priority",
        "description",
    } <= columns["image_update_policies"]
    assert {
        "rollout_id",
        "image_name",
        "old_tag",
        "new_tag",
        "registry",
        "policy_id",
        "strategy",
        "total_devices",
        "batch_sizes",
        "status",
        "current_batch",
        "updated_devices",
        "failed_devices",
        "healthy_devices",
        "rolled_back_devices",
        "failure_rate",
        "auto_paused",
        "scheduled_at",
        "started_at",
        "paused_at",
        "resumed_at",
        "completed_at",
        "triggered_by",
        "webhook_payload",
        "filters_applied",
        "error_message",
        "notes",
    } <= columns["image_rollouts"]
    assert {
        "rollout_id",
        "device_uuid",
        "batch_number",
        "status",
        "old_image_tag",
        "new_image_tag",
        "current_image_tag",
        "health_check_passed",
        "health_check_details",
        "health_check_attempts",
        "scheduled_at",
        "update_started_at",
        "image_pulled_at",
        "container_restarted_at",
        "health_checked_at",
        "update_completed_at",
        "rolled_back_at",
        "error_message",
        "error_details",
        "retry_count",
        "max_retries",
    } <= columns["device_rollout_status"]


def seed_rollout(conn: object, statuses: list[str]) -> None:
    run = conn.execute  # type: ignore[attr-defined]
    policy_id = run(
        insert(image_update_policies)
        .values(image_pattern="iotistic/myapp:*", update_strategy="staged", description="p")
        .returning(image_update_policies.c.id)
    ).scalar_one()
    run(
        insert(image_rollouts).values(
            rollout_id="r-1",
            image_name="iotistic/myapp",
            new_tag="v2",
            policy_id=policy_id,
            strategy="staged",
            total_devices=len(statuses),
            updated_devices=2,
            status="in_progress",
        )
    )
    for i, status in enumerate(statuses):
        run(
            insert(devices).values(
                uuid=f"d{i}", device_name=f"d{i}", api_key_hash=f"h{i}", target_etag='"e"'
            )
        )
        run(
            insert(device_rollout_status).values(
                rollout_id="r-1", device_uuid=f"d{i}", batch_number=1, status=status
            )
        )


def test_the_active_rollouts_view_counts_devices_by_status(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        seed_rollout(conn, ["completed", "completed", "failed", "pending", "scheduled", "pulling"])
        row = conn.execute(text("SELECT * FROM active_rollouts")).mappings().one()
    engine.dispose()
    assert row["rollout_id"] == "r-1" and row["image_pattern"] == "iotistic/myapp:*"
    assert row["policy_description"] == "p"
    assert (row["devices_completed"], row["devices_failed"], row["devices_pending"]) == (2, 1, 2)
    assert row["devices_in_flight"] == 1
    assert row["progress_percentage"] == pytest.approx(2 / 6 * 100)


@pytest.mark.parametrize(
    ("table", "values"),
    [
        (image_rollouts, {"status": "exploded"}),
        (image_rollouts, {"strategy": "yolo"}),
        (image_rollouts, {"failure_rate": 1.5}),
    ],
)
def test_status_checks_refuse_unknown_values(
    database_url: str, table: object, values: dict[str, object]
) -> None:
    engine = create_engine(sync_url(database_url))
    row = {
        "rollout_id": "bad",
        "image_name": "i",
        "new_tag": "t",
        "strategy": "auto",
        "total_devices": 1,
    } | values
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(image_rollouts).values(**row))
    engine.dispose()


def test_a_device_rollout_status_outside_the_list_is_refused(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        seed_rollout(conn, ["teleported"])
    engine.dispose()


def test_migrations_go_down_and_up_again(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    assert current_revision(url) == head_revision()
    downgrade(url, "base")
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision()
