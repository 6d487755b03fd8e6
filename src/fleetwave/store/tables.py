"""Table definitions (SQLAlchemy Core), the single source for queries.

The migration history under ``migrations/`` creates exactly these; a test compares the two.
Names and columns are the original plan's (image_update_policies, image_rollouts,
device_rollout_status, rollout_events, active_rollouts) plus the device tables it assumed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    false,
    func,
    true,
)

from fleetwave.domain.vocabulary import (
    DEVICE_ROLLOUT_STATUSES,
    LOG_LEVELS,
    ROLES,
    ROLLOUT_EVENT_TYPES,
    ROLLOUT_STATUSES,
    SEMVER_RULES,
    UPDATE_STRATEGIES,
    WEBHOOK_OUTCOMES,
)
from fleetwave.store.types import Json, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def created_at() -> Column[object]:
    return Column("created_at", UtcDateTime, nullable=False, server_default=func.now())


def updated_at() -> Column[object]:
    return Column("updated_at", UtcDateTime, nullable=False, server_default=func.now())


devices = Table(
    "devices",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("device_name", String(255), nullable=False),
    Column("device_type", String(100)),
    Column("fleet_id", String(255)),
    Column("tags", Json, nullable=False, server_default="{}"),
    Column("is_online", Boolean, nullable=False, server_default=false()),
    Column("last_connectivity_event", UtcDateTime),
    Column("ip_address", String(64)),
    Column("mac_address", String(64)),
    Column("os_version", String(100)),
    Column("supervisor_version", String(100)),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    # The strong ETag of the device's target state, kept beside the key hash so that a poll
    # answered with 304 reads this one row and nothing else.
    Column("target_etag", String(66), nullable=False),
    Column("provisioning_key_id", Integer, ForeignKey("provisioning_keys.id", ondelete="SET NULL")),
    # What its agent declared it can do in its last report (domain.capabilities); none: an
    # iotistic-style agent that runs no check on the device and reports container states only.
    Column("capabilities", Json, nullable=False, server_default="[]"),
    # The iotistic agent's applicationId, as it registered itself (text: a number or a name).
    Column("application_id", String(255)),
    created_at(),
    updated_at(),
    Index(None, "fleet_id"),
    Index(None, "created_at"),  # late joiners: devices registered since the last look (0010)
)

device_target_state = Table(
    "device_target_state",
    metadata,
    Column(
        "device_uuid",
        String(64),
        ForeignKey("devices.uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("apps", Json, nullable=False),
    Column("config", Json, nullable=False),
    # fleetwave's own part of the served state (the health checks a rollout asks the device to
    # run), served beside apps and config under "fleetwave": the iotistic agent ignores it.
    Column("extensions", Json, nullable=False, server_default="{}"),
    Column("version", Integer, nullable=False, server_default="1"),
    updated_at(),
)

device_current_state = Table(
    "device_current_state",
    metadata,
    Column(
        "device_uuid",
        String(64),
        ForeignKey("devices.uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("apps", Json, nullable=False),
    Column("config", Json, nullable=False),
    Column("system_info", Json, nullable=False),
    Column("reported_at", UtcDateTime, nullable=False),
    # sha-256 of the report's content and the target ETag it was judged against
    Column("report_digest", String(64)),
    Index(None, "reported_at"),  # late joiners: reports that changed since the last look (0010)
)

device_target_images = Table(
    "device_target_images",
    metadata,
    # One row per service of a device's target state: which image it should run. Kept in step
    # with device_target_state so that "which devices run this repository" is an index lookup.
    Column(
        "device_uuid",
        String(64),
        ForeignKey("devices.uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("app_id", String(32), primary_key=True),
    Column("service_name", String(255), primary_key=True),
    Column("repository", String(512), nullable=False),
    Column("tag", String(128)),
    Column("digest", String(128)),
    Column("image", String(1024), nullable=False),
    Index(None, "repository", "tag"),
)

device_logs = Table(
    "device_logs",
    metadata,
    # BIGINT: a fleet's log lines pass 2^31 within days. SQLite's INTEGER is already 64-bit and
    # AUTOINCREMENT never reuses an id, so a reader paging by id (``after``) never misses one.
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column(
        "device_uuid",
        String(64),
        ForeignKey("devices.uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("received_at", UtcDateTime, nullable=False),  # the server's clock: retention
    Column("logged_at", UtcDateTime, nullable=False),  # the device's (received_at if unsaid)
    Column("level", String(8), nullable=False),
    Column("source", String(32), nullable=False),  # container, system, manager, agent
    Column("service", String(255)),
    Column("stream", String(8)),  # stdout, stderr
    Column("message", Text, nullable=False),
    CheckConstraint(one_of("level", LOG_LEVELS), name="level"),
    Index(None, "device_uuid", "id"),
    Index(None, "received_at"),
    sqlite_autoincrement=True,
)

provisioning_keys = Table(
    "provisioning_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("fleet_id", String(255), nullable=False),
    Column("description", Text),
    Column("expires_at", UtcDateTime),
    Column("max_uses", Integer),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("revoked_at", UtcDateTime),
    created_at(),
    CheckConstraint("max_uses IS NULL OR max_uses > 0", name="max_uses_positive"),
)

image_update_policies = Table(
    "image_update_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_pattern", String(255), nullable=False),
    Column("update_strategy", String(50), nullable=False),
    Column("staged_batches", Integer, server_default="3"),
    Column("batch_delay_minutes", Integer, server_default="30"),
    Column("health_check_enabled", Boolean, server_default=true()),
    Column("health_check_timeout_seconds", Integer, server_default="300"),
    Column("auto_rollback", Boolean, server_default=true()),
    Column("health_check_config", Json),
    Column("maintenance_window_start", Time),
    Column("maintenance_window_end", Time),
    Column("fleet_id", String(255)),
    Column("device_tags", Json),
    Column("device_uuids", Json),
    Column("enabled", Boolean, server_default=true()),
    Column("priority", Integer, server_default="100"),
    Column("description", Text),
    created_at(),
    updated_at(),
    # Beyond the seed: tag policy, explicit batches, failure bound, window time zone, pinning.
    Column("semver_policy", String(10)),
    Column("allow_prerelease", Boolean, nullable=False, server_default=false()),
    Column("include_tags", Json),
    Column("exclude_tags", Json),
    Column("batch_percentages", Json),
    Column("max_failure_rate", Numeric(5, 4)),
    Column("maintenance_window_timezone", String(64), nullable=False, server_default="UTC"),
    Column("pin_digest", Boolean, nullable=False, server_default=true()),
    # How the engine runs the rollout: timeouts, retries, the failure gate, soak, approvals.
    Column("update_timeout_minutes", Integer, nullable=False, server_default="30"),
    Column("max_retries", Integer, nullable=False, server_default="3"),
    Column("failure_rate_min_devices", Integer),  # unset: domain.rollout_figures.judged_after
    Column("offline_grace_minutes", Integer, nullable=False, server_default="30"),
    Column("soak_seconds", Integer, nullable=False, server_default="60"),
    Column("approve_each_batch", Boolean, nullable=False, server_default=false()),
    Column("rings", Json),  # ring names in order: the rollout's batches (device_rings)
    # issue 16: a policy's own cap on devices in flight; continuous rollouts (0010)
    Column("max_concurrent_devices", Integer),
    Column("continuous", Boolean, nullable=False, server_default=true()),
    CheckConstraint(one_of("update_strategy", UPDATE_STRATEGIES), name="update_strategy"),
    CheckConstraint(
        "semver_policy IS NULL OR " + one_of("semver_policy", SEMVER_RULES), name="semver_policy"
    ),
    Index(None, "image_pattern"),
    Index(None, "enabled", "priority"),
)

image_rollouts = Table(
    "image_rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", String(255), nullable=False, unique=True),
    Column("image_name", String(255), nullable=False),
    Column("old_tag", String(128)),
    Column("new_tag", String(128), nullable=False),
    Column("registry", String(255), server_default="hub.docker.com"),
    Column("policy_id", Integer, ForeignKey("image_update_policies.id", ondelete="SET NULL")),
    Column("strategy", String(50), nullable=False),
    Column("total_devices", Integer, nullable=False),
    Column("batch_sizes", Json),
    Column("status", String(50), nullable=False, server_default="pending"),
    Column("current_batch", Integer, nullable=False, server_default="0"),
    Column("updated_devices", Integer, nullable=False, server_default="0"),
    Column("failed_devices", Integer, nullable=False, server_default="0"),
    Column("healthy_devices", Integer, nullable=False, server_default="0"),
    Column("rolled_back_devices", Integer, nullable=False, server_default="0"),
    Column("failure_rate", Numeric(5, 4), nullable=False, server_default="0"),
    Column("auto_paused", Boolean, nullable=False, server_default=false()),
    Column("scheduled_at", UtcDateTime),
    Column("started_at", UtcDateTime),
    Column("paused_at", UtcDateTime),
    Column("resumed_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    created_at(),
    updated_at(),
    Column("triggered_by", String(100)),
    Column("webhook_payload", Json),
    Column("filters_applied", Json),
    Column("error_message", Text),
    Column("notes", Text),
    # Beyond the seed: the pushed digest, the full new reference, and what superseded it.
    Column("digest", String(128)),
    Column("new_image", String(512)),
    Column("superseded_by", String(255)),
    # The engine's own bookkeeping: the policy's settings as they were when the rollout was
    # planned, the last batch an operator let start, when the current batch finished, and the
    # failure count an operator accepted when forcing a resume past the failure gate.
    Column("settings", Json),
    Column("approved_batch", Integer, nullable=False, server_default="0"),
    Column("current_batch_finished_at", UtcDateTime),
    Column("gate_accepted_failures", Integer),
    CheckConstraint(one_of("strategy", UPDATE_STRATEGIES), name="strategy"),
    CheckConstraint(one_of("status", ROLLOUT_STATUSES), name="status"),
    CheckConstraint("failure_rate >= 0 AND failure_rate <= 1", name="failure_rate_fraction"),
    Index(None, "status"),
    Index(None, "image_name", "new_tag"),
    Index(None, "created_at"),
)

device_rollout_status = Table(
    "device_rollout_status",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "rollout_id",
        String(255),
        ForeignKey("image_rollouts.rollout_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "device_uuid",
        String(64),
        ForeignKey("devices.uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("batch_number", Integer, nullable=False),
    Column("status", String(50), nullable=False, server_default="pending"),
    Column("old_image_tag", String(128)),
    Column("new_image_tag", String(128)),
    Column("current_image_tag", String(128)),
    Column("health_check_passed", Boolean),
    Column("health_check_details", Json),
    Column("health_check_attempts", Integer, nullable=False, server_default="0"),
    Column("scheduled_at", UtcDateTime),
    Column("update_started_at", UtcDateTime),
    Column("image_pulled_at", UtcDateTime),
    Column("container_restarted_at", UtcDateTime),
    Column("health_checked_at", UtcDateTime),
    Column("update_completed_at", UtcDateTime),
    Column("rolled_back_at", UtcDateTime),
    created_at(),
    updated_at(),
    Column("error_message", Text),
    Column("error_details", Json),
    Column("retry_count", Integer, nullable=False, server_default="0"),
    Column("max_retries", Integer, nullable=False, server_default="3"),
    # Each changed service's image before the rollout ("appId/serviceName" → image), so a
    # rollback restores the device's own old images, and the image it is moved to.
    Column("old_images", Json),
    Column("new_image", String(512)),
    # When a failed attempt is tried again (retries back off), and why the device failed.
    Column("next_attempt_at", UtcDateTime),
    Column("failure_reason", String(64)),
    # Set when the device is sent back to its old images (automatically or by an operator):
    # only then does running the old images mean "rolled back".
    Column("rollback_requested_at", UtcDateTime),
    # Set when the device keeps being heard from while it does not apply its target
    # (domain.not_applying); cleared when a retry tells it again.
    Column("not_applying_since", UtcDateTime),
    UniqueConstraint("rollout_id", "device_uuid"),
    CheckConstraint(one_of("status", DEVICE_ROLLOUT_STATUSES), name="status"),
    Index(None, "rollout_id", "batch_number", "status"),
    Index(None, "device_uuid", "status"),
    Index(None, "rollback_requested_at"),
)

rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", String(255), nullable=False),
    Column("device_uuid", String(64)),
    Column("event_type", String(50), nullable=False),
    Column("event_data", Json),
    Column("message", Text),
    Column("timestamp", UtcDateTime, nullable=False, server_default=func.now()),
    CheckConstraint(one_of("event_type", ROLLOUT_EVENT_TYPES), name="event_type"),
    Index(None, "rollout_id", "timestamp"),
    Index(None, "device_uuid"),
    Index(None, "event_type"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    # What makes two deliveries "the same push": provider-independent (image, tag, digest).
    Column("dedupe_key", String(512), nullable=False, unique=True),
    Column("delivery_id", String(255)),
    Column("image_name", String(255), nullable=False),
    Column("tag", String(128)),
    Column("digest", String(128)),
    Column("outcome", String(32), nullable=False),
    Column("reason", Text),
    Column("rollout_id", String(255)),
    Column("deliveries", Integer, nullable=False, server_default="1"),
    Column("received_at", UtcDateTime, nullable=False),
    Column("last_received_at", UtcDateTime, nullable=False),
    # A delivery is recorded "pending" before it is answered, then planned: the tags of one
    # push share a push_id and are planned together, in id order (the order of preference);
    # the payload is kept until then (the rollout keeps its own copy).
    Column("push_id", String(36)),
    Column("payload", Json),
    Column("planned_at", UtcDateTime),
    CheckConstraint(one_of("outcome", WEBHOOK_OUTCOMES), name="outcome"),
    Index(None, "image_name", "tag"),
    Index(None, "outcome"),
)

# --- users, their tokens and dashboard sessions, and the audit log (issue 15) ----------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # argon2id, with its parameters
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    created_at(),
    updated_at(),
    CheckConstraint(one_of("role", ROLES), name="role"),
)

# A personal API token: only its SHA-256 is kept (it is a long random string, as device keys
# are); its role is the user's or, if asked, a lower one.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("token_prefix", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("expires_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
    created_at(),
    CheckConstraint(one_of("role", ROLES), name="role"),
    UniqueConstraint("user_id", "name"),
)

# A dashboard session, server-side so that logging out and disabling a user hold on every
# replica at once. The cookie carries the session's secret; only its SHA-256 is kept. A session
# of the admin token has no user.
user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("actor", String(100), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    created_at(),
    Index(None, "expires_at"),
)

# Who changed policies, users, tokens, registries and keys, when, with before and after
# (secrets left out).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(32), nullable=False),  # created, updated, deleted, revoked
    Column("object_type", String(32), nullable=False),  # policy, user, api_token, …
    Column("object_id", String(255), nullable=False),
    Column("before", Json),
    Column("after", Json),
    Index(None, "object_type", "object_id"),
    Index(None, "at"),
    sqlite_autoincrement=True,
)

# Deployment rings: named, saved device selectors; a policy listing rings rolls out ring by
# ring (domain.rings).
device_rings = Table(
    "device_rings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("fleet_id", String(255)),
    Column("device_tags", Json),
    Column("device_uuids", Json),
    Column("description", Text),
    created_at(),
    updated_at(),
)

# --- registries fleetwave polls (issue 17) ----------------------------------------------------

# A registry that cannot reach fleetwave with webhooks. The password is sealed with the data
# directory's registry key (registries/sealing.py), never shown. One worker polls a registry
# at a time: it locks the row (SKIP LOCKED) while polling.
registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", String(512), nullable=False),
    Column("poll_interval_seconds", Integer, nullable=False),
    Column("username", String(255)),
    Column("password_sealed", Text),
    Column("insecure", Boolean, nullable=False, server_default=false()),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("next_poll_at", UtcDateTime, nullable=False),
    Column("last_polled_at", UtcDateTime),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "next_poll_at"),
)

# What the last poll of each repository found, tag → digest: the next poll's "before".
registry_repositories = Table(
    "registry_repositories",
    metadata,
    Column(
        "registry_id", Integer, ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("repository", String(255), primary_key=True),
    Column("tags", Json, nullable=False),
    Column("polled_at", UtcDateTime, nullable=False),
)

# --- metric health checks and batch analyses (issue 17) -------------------------------------

device_metric_samples = Table(
    "device_metric_samples",
    metadata,
    # one row per changed state report that carried metrics; kept for a bounded time and count
    # (``rollouts.metric_samples``): metric checks judge a device on its own recent reports
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column(
        "device_uuid",
        String(64),
        ForeignKey("devices.uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("received_at", UtcDateTime, nullable=False),  # the server's clock
    Column("samples", Json, nullable=False),  # {"cpu_usage": 42.0, "metrics.<key>": 1.0}
    Index(None, "device_uuid", "received_at"),
    Index(None, "received_at"),
    sqlite_autoincrement=True,
)

batch_analyses = Table(
    "batch_analyses",
    metadata,
    # a prometheus check's result for one batch of a rollout, evaluated once after its soak
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "rollout_id",
        String(255),
        ForeignKey("image_rollouts.rollout_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("batch_number", Integer, nullable=False),
    Column("check_name", String(255), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("details", Json, nullable=False),  # query, value, bounds, or the error
    Column("evaluated_at", UtcDateTime, nullable=False),
    Column("acted_at", UtcDateTime),  # a failure's devices were failed and the rollout paused
    UniqueConstraint("rollout_id", "batch_number", "check_name"),
    sqlite_autoincrement=True,
)
