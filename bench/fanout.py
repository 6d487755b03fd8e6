"""Benchmark of the fan-out: one registry push turned into a staged rollout of a whole fleet.

What it does, in one run (see bench/README.md):

1. creates a throwaway PostgreSQL database through the admin URL (``--database-url``,
   ``$FLEETWAVE_BENCH_DATABASE_URL`` or postgres@127.0.0.1:5432), migrates it, and registers
   ``--devices`` devices (100,000) whose target state runs ``iotistic/myapp:v2.0.0``, ~90 %
   of them online: set-based, multi-row INSERTs of ``CHUNK_ROWS`` rows into ``devices``,
   ``device_target_state`` and ``device_target_images``;
2. copies that database (``CREATE DATABASE ... TEMPLATE``) for the baseline: the same fleet;
3. starts ``fleetwave serve --no-migrate`` on the first copy, creates a staged policy
   (3 batches: 10 %, 40 %, 50 %) through the API, then sends ONE Docker Hub webhook
   ``POST /api/v1/webhooks/dockerhub?secret=...`` for ``iotistic/myapp:v2.0.1`` and times
   its answer (200 with the rollout if planned within ``FLEETWAVE_WEBHOOK_ANSWER_WAIT``, else
   202 "pending") and the first batch written: until the delivery's record says it is planned,
   which is committed in the transaction that writes the rollout, every device's row and the
   first batch's target states (polled by primary key every few milliseconds);
4. on the second copy, times the same inserts and updates as hand-written SQL (psycopg 3, one
   transaction, set-based);
5. checks both databases (rows, statuses, versions, images, ETags; the same devices in the
   first batch with the same ETags), prints ``webhook answered``, ``first batch written``, the
   raw SQL's time, their ``ratio`` and the server's peak RSS, and drops both databases, also on
   failure, Ctrl-C or SIGTERM.

    .venv/bin/python bench/fanout.py [--devices 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import tempfile
import time
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from common import (
    BenchError,
    Server,
    add_database_url_argument,
    fleetwave_command,
    fleetwave_env,
    fleetwave_executable,
    free_port,
    libpq_url,
    main,
    running,
    throwaway_database,
    vacuum,
    wait_until_ready,
)
from fleetwave.devices.targets import image_rows
from fleetwave.domain.health import default_checks
from fleetwave.domain.target_state import state_etag
from fleetwave.security import hash_key
from fleetwave.store.db import sync_url
from fleetwave.store.migrate import upgrade

ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(16)
WEBHOOK_SECRET = "bench-webhook-secret-" + secrets.token_hex(16)

IMAGE_NAME = "iotistic/myapp"  # as people and Docker Hub write it
REPOSITORY = "docker.io/iotistic/myapp"  # as device_target_images keys it
OLD_TAG, NEW_TAG = "v2.0.0", "v2.0.1"
OLD_IMAGE, NEW_IMAGE = f"{IMAGE_NAME}:{OLD_TAG}", f"{IMAGE_NAME}:{NEW_TAG}"
PUSHED_AT = 1732700000
POLICY = {
    "image_pattern": "iotistic/myapp:*",
    "update_strategy": "staged",
    "staged_batches": 3,
    "batch_delay_minutes": 30,
}
WEBHOOK_BODY = {
    "repository": {"repo_name": IMAGE_NAME},
    "push_data": {"tag": NEW_TAG, "pushed_at": PUSHED_AT},
}
FRACTIONS = (0.1, 0.5, 1.0)  # fleetwave's default staged batches: what a 3-batch policy gets
OFFLINE_SHARE = 0.1
OFFLINE_AFTER = timedelta(minutes=5)  # fleetwave's default device_offline_after
CHUNK_ROWS = 5000  # rows per multi-row INSERT while seeding
EVENT_LOG_LOCK = 0x0F1EE7  # fleetwave.rollouts.events: every writer of the event log takes it
SEED = 20241127  # the fleet is the same from run to run
TABLES = (
    "devices",
    "device_target_state",
    "device_target_images",
    "image_update_policies",
    "image_rollouts",
    "device_rollout_status",
    "rollout_events",
    "webhook_deliveries",
)


# --- the fleet -----------------------------------------------------------------------------


def device_apps(name: str) -> dict[str, Any]:
    """One app (1001 "web") with one service ("app") on the old image, in both image fields."""
    return {
        "1001": {
            "appId": 1001,
            "appName": "web",
            "services": [
                {
                    "serviceId": 1,
                    "serviceName": "app",
                    "imageName": OLD_IMAGE,
                    "config": {
                        "image": OLD_IMAGE,
                        "ports": ["80:8080"],
                        "environment": {"DEVICE_NAME": name, "LOG_LEVEL": "info"},
                        "restart": "unless-stopped",
                    },
                }
            ],
        }
    }


DEVICE_CONFIG = {"SUPERVISOR_POLL_INTERVAL": "60000"}


def insert_rows(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: dict[str, str],
    rows: Iterator[tuple[Any, ...]],
) -> int:
    """Multi-row INSERTs, ``CHUNK_ROWS`` rows per statement: ``INSERT ... SELECT * FROM
    unnest(<one array per column>)``, so a statement has one parameter per column (a
    ``VALUES (%s, ...), ...`` list of 20,000 parameters costs psycopg more to parse than
    PostgreSQL to insert)."""
    names = ", ".join(columns)
    arrays = ", ".join(f"%b::{kind}[]" for kind in columns.values())  # %b: binary, no escaping
    statement = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
    count = 0
    while chunk := list(islice(rows, CHUNK_ROWS)):
        cur.execute(statement, [list(column) for column in zip(*chunk, strict=True)])
        count += len(chunk)
    return count


def seed(url: str, count: int, now: datetime) -> int:
    """Register ``count`` devices with their target states and image index; returns how many
    are online. Deterministic (``SEED``): random uuids, ~10 % offline, spread among them."""
    rng = random.Random(SEED)
    uuids = [f"{rng.getrandbits(128):032x}" for _ in range(count)]
    offline = set(rng.sample(range(count), round(count * OFFLINE_SHARE)))
    a_day_ago = now - timedelta(days=1)
    apps = [device_apps(f"bench-{n:06d}") for n in range(count)]

    def device_rows() -> Iterator[tuple[Any, ...]]:
        for n, uuid in enumerate(uuids):
            online = n not in offline
            yield (
                uuid,
                f"bench-{n:06d}",
                "raspberrypi4-64",
                "bench",
                Jsonb({"site": "bench"}),
                online,
                now if online else a_day_ago,
                hash_key(f"fwd_bench_key_{uuid}"),
                state_etag(apps[n], DEVICE_CONFIG),
                now,
                now,
            )

    def state_rows() -> Iterator[tuple[Any, ...]]:
        for n, uuid in enumerate(uuids):
            yield (uuid, Jsonb(apps[n]), Jsonb(DEVICE_CONFIG), 1, now)

    def image_index_rows() -> Iterator[tuple[Any, ...]]:
        for n, uuid in enumerate(uuids):
            for row in image_rows(uuid, apps[n]):
                yield tuple(row[c] for c in IMAGE_COLUMNS)

    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        insert_rows(cur, "devices", DEVICE_COLUMNS, device_rows())
        insert_rows(cur, "device_target_state", STATE_COLUMNS, state_rows())
        insert_rows(cur, "device_target_images", IMAGE_COLUMNS, image_index_rows())
    return count - len(offline)


DEVICE_COLUMNS = {
    "uuid": "text",
    "device_name": "text",
    "device_type": "text",
    "fleet_id": "text",
    "tags": "jsonb",
    "is_online": "boolean",
    "last_connectivity_event": "timestamptz",
    "api_key_hash": "text",
    "target_etag": "text",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
STATE_COLUMNS = {
    "device_uuid": "text",
    "apps": "jsonb",
    "config": "jsonb",
    "version": "integer",
    "updated_at": "timestamptz",
}
IMAGE_COLUMNS = {
    "device_uuid": "text",
    "app_id": "text",
    "service_name": "text",
    "repository": "text",
    "tag": "text",
    "digest": "text",
    "image": "text",
}


def staged_sizes(total: int) -> list[int]:
    """Batch sizes for ``FRACTIONS`` of ``total`` devices (cumulative, rounded up)."""
    reached = [min(total, math.ceil(f * total - 1e-9)) for f in FRACTIONS]
    return [b - a for a, b in pairwise([0, *reached])]


# --- fleetwave: one webhook through the real server ----------------------------------------


@dataclass(frozen=True)
class FleetwaveRun:
    answered: float  # seconds from sending the webhook to its answer
    first_batch: float  # ... to the plan committed: rollout, device rows, first batch's targets
    status_code: int
    rollout_id: str
    response: dict[str, Any]
    rss_before_kib: int | None
    peak_rss_kib: int | None


POLL_SECONDS = 0.005
DELIVERY = "SELECT outcome, rollout_id, reason FROM webhook_deliveries WHERE id = %s"


def planned(db: psycopg.Connection[Any], delivery_id: int) -> dict[str, Any]:
    """Wait until the delivery is planned (its record and the plan commit together); what its
    record says then, shaped like the webhook's answer."""
    while True:
        row = db.execute(DELIVERY, [delivery_id]).fetchone()
        if row is None:
            raise BenchError(f"delivery {delivery_id} is not recorded")
        outcome, rollout_id, reason = row
        if outcome != "pending":
            return {"outcome": outcome, "rollout_id": rollout_id, "message": reason}
        time.sleep(POLL_SECONDS)


def rollout_devices(db: psycopg.Connection[Any], rollout_id: str | None) -> int:
    row = db.execute(
        "SELECT total_devices FROM image_rollouts WHERE rollout_id = %s", [rollout_id]
    ).fetchone()
    return int(row[0]) if row else 0


def fleetwave_fanout(server: Server, url: str, devices: int) -> FleetwaveRun:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(5, read=900)) as client,
        psycopg.connect(libpq_url(url), autocommit=True) as db,
    ):
        created = client.post("/api/v1/image-policies", json=POLICY, headers=admin)
        if created.status_code != 201:
            raise BenchError(f"creating the policy: HTTP {created.status_code} {created.text}")
        # The same keep-alive connection carries the webhook: no connect in the timing.
        rss_before = server.memory_kib("VmRSS")
        started = time.perf_counter()
        response = client.post(
            "/api/v1/webhooks/dockerhub", params={"secret": WEBHOOK_SECRET}, json=WEBHOOK_BODY
        )
        answered = time.perf_counter() - started
        if response.status_code not in (200, 202):
            raise BenchError(
                f"webhook: HTTP {response.status_code} {response.text[:500]}\n{server.log_tail()}"
            )
        body = outcome = response.json()
        first_batch = answered
        if response.status_code == 202:  # planned after the answer
            outcome = planned(db, body["delivery_id"])
            first_batch = time.perf_counter() - started
            outcome["affected_devices"] = rollout_devices(db, outcome["rollout_id"])
        peak = server.memory_kib("VmHWM")
    if outcome.get("outcome") != "rollout_created" or outcome.get("affected_devices") != devices:
        raise BenchError(
            f"webhook: expected rollout_created for {devices} devices, got {json.dumps(body)}, "
            f"then {json.dumps(outcome)}\n{server.log_tail()}"
        )
    return FleetwaveRun(
        answered,
        first_batch,
        response.status_code,
        str(outcome["rollout_id"]),
        body,
        rss_before,
        peak,
    )


# --- baseline: the same inserts and updates as hand-written SQL ----------------------------


CANDIDATES = """
    SELECT count(DISTINCT i.device_uuid)
    FROM device_target_images i JOIN devices d ON d.uuid = i.device_uuid
    WHERE i.repository = %(repository)s AND i.tag IS DISTINCT FROM %(new_tag)s
"""

INSERT_ROLLOUT = """
    INSERT INTO image_rollouts (
        rollout_id, image_name, old_tag, new_tag, registry, digest, new_image, policy_id,
        strategy, total_devices, batch_sizes, status, current_batch, started_at, triggered_by,
        webhook_payload, filters_applied, created_at, updated_at)
    VALUES (
        %(rollout_id)s, %(image_name)s, %(old_tag)s, %(new_tag)s, 'docker.io', NULL,
        %(new_image)s, %(policy_id)s, 'staged', %(total)s, %(batch_sizes)s, 'in_progress', 1,
        %(now)s, 'webhook:dockerhub', %(payload)s, %(filters)s, %(now)s, %(now)s)
"""

# Batches by rank: online devices first, then by uuid; each device keeps its own old images.
INSERT_DEVICE_ROWS = """
    INSERT INTO device_rollout_status (
        rollout_id, device_uuid, batch_number, status, old_image_tag, new_image_tag, new_image,
        old_images, scheduled_at, created_at, updated_at)
    SELECT %(rollout_id)s, c.device_uuid,
           CASE WHEN c.rank <= %(end_1)s THEN 1 WHEN c.rank <= %(end_2)s THEN 2 ELSE 3 END,
           CASE WHEN c.rank <= %(end_1)s THEN 'scheduled' ELSE 'pending' END,
           c.old_tag, %(new_tag)s, %(new_image)s, c.old_images,
           CASE WHEN c.rank <= %(end_1)s THEN %(now)s::timestamptz END, %(now)s, %(now)s
    FROM (
        SELECT i.device_uuid,
               (array_agg(i.tag ORDER BY i.app_id, i.service_name))[1] AS old_tag,
               jsonb_object_agg(i.app_id || '/' || i.service_name, i.image) AS old_images,
               row_number() OVER (
                   ORDER BY (d.is_online AND d.last_connectivity_event >= %(horizon)s) DESC,
                            i.device_uuid COLLATE "C") AS rank
        FROM device_target_images i JOIN devices d ON d.uuid = i.device_uuid
        WHERE i.repository = %(repository)s
        GROUP BY i.device_uuid, d.is_online, d.last_connectivity_event
        HAVING bool_or(i.tag IS DISTINCT FROM %(new_tag)s)
    ) c
"""

FIRST_BATCH_TARGETS = """
    SELECT s.device_uuid, s.apps, s.config
    FROM device_target_state s JOIN device_rollout_status r ON r.device_uuid = s.device_uuid
    WHERE r.rollout_id = %(rollout_id)s AND r.batch_number = 1
"""

UPDATE_TARGETS = """
    UPDATE device_target_state s
    SET apps = v.apps, extensions = v.extensions, version = s.version + 1, updated_at = %(now)s
    FROM unnest(%(uuids)b::text[], %(apps)b::jsonb[], %(extensions)b::jsonb[])
        AS v(uuid, apps, extensions)
    WHERE s.device_uuid = v.uuid
"""
# What a policy with health checks on and none given asks of the agent (DESIGN.md §4).
DEFAULT_CHECKS = [check.as_json() for check in default_checks(soak_seconds=60)]

UPDATE_ETAGS = """
    UPDATE devices d SET target_etag = v.etag, updated_at = %(now)s
    FROM unnest(%(uuids)b::text[], %(etags)b::text[]) AS v(uuid, etag)
    WHERE d.uuid = v.uuid
"""

# The image as the device spelled it, moved to the new tag (any digest dropped).
UPDATE_IMAGE_INDEX = """
    UPDATE device_target_images i
    SET image = regexp_replace(i.image, '(:[^:/@]*)?(@.*)?$', ':' || %(new_tag)s),
        tag = %(new_tag)s, digest = NULL
    FROM device_rollout_status r
    WHERE r.rollout_id = %(rollout_id)s AND r.batch_number = 1
      AND i.device_uuid = r.device_uuid AND i.repository = %(repository)s
"""

INSERT_EVENT = """
    INSERT INTO rollout_events (rollout_id, event_type, event_data, message, "timestamp")
    VALUES (%s, %s, %s, %s, %s)
"""

INSERT_DEVICE_EVENTS = """
    INSERT INTO rollout_events (
        rollout_id, device_uuid, event_type, event_data, message, "timestamp")
    SELECT rollout_id, device_uuid, 'device_scheduled', %(data)s, %(message)s, %(now)s
    FROM device_rollout_status
    WHERE rollout_id = %(rollout_id)s AND batch_number = 1
    ORDER BY device_uuid
"""

INSERT_DELIVERY = """
    INSERT INTO webhook_deliveries (
        provider, dedupe_key, image_name, tag, outcome, reason, rollout_id, received_at,
        last_received_at)
    VALUES ('dockerhub', %(key)s, %(image_name)s, %(new_tag)s, 'rollout_created', %(reason)s,
            %(rollout_id)s, %(now)s, %(now)s)
"""


def moved_apps(apps: dict[str, Any]) -> dict[str, Any]:
    """``apps`` with every service of the repository on the new tag, in both image fields."""
    moved = {}
    for app_id, app in apps.items():
        services = []
        for service in app["services"]:
            if service["imageName"].rsplit(":", 1)[0] == IMAGE_NAME:
                service = service | {
                    "imageName": NEW_IMAGE,
                    "config": service["config"] | {"image": NEW_IMAGE},
                }
            services.append(service)
        moved[app_id] = app | {"services": services}
    return moved


@dataclass(frozen=True)
class RawRun:
    seconds: float
    rollout_id: str
    total: int
    steps: list[tuple[str, float]]


class Laps:
    """Wall time of each step since the previous one."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self.last = time.perf_counter()

    def __call__(self, label: str) -> None:
        now = time.perf_counter()
        self.steps.append((label, now - self.last))
        self.last = now


def add_policy(url: str) -> None:
    """The policy the API made in the other database, so that both hold the same rows."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO image_update_policies (image_pattern, update_strategy, staged_batches,"
            " batch_delay_minutes, created_at, updated_at)"
            " VALUES (%(image_pattern)s, %(update_strategy)s, %(staged_batches)s,"
            " %(batch_delay_minutes)s, now(), now())",
            POLICY,
        )


def raw_fanout(url: str) -> RawRun:
    rollout_id = str(uuidlib.uuid4())
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SELECT 1")  # connected and ready before the clock starts
        started = time.perf_counter()
        lap = Laps()
        now = datetime.now(UTC)
        shared = {
            "rollout_id": rollout_id,
            "repository": REPOSITORY,
            "image_name": IMAGE_NAME,
            "new_tag": NEW_TAG,
            "new_image": NEW_IMAGE,
            "now": now,
        }
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [REPOSITORY])
            policies = conn.execute(
                "SELECT id, image_pattern FROM image_update_policies WHERE enabled"
                " ORDER BY priority DESC, id"
            ).fetchall()
            policy_id = next(
                (pid for pid, pattern in policies if fnmatchcase(NEW_IMAGE, pattern)), None
            )
            row = conn.execute(CANDIDATES, shared).fetchone()
            total = int(row[0]) if row else 0
            sizes = staged_sizes(total)
            lap("lock, policy, count the candidates")
            conn.execute(
                INSERT_ROLLOUT,
                shared
                | {
                    "old_tag": OLD_TAG,
                    "policy_id": policy_id,
                    "total": total,
                    "batch_sizes": Jsonb(sizes),
                    "payload": Jsonb(WEBHOOK_BODY),
                    "filters": Jsonb({"policy": POLICY["image_pattern"]}),
                },
            )
            conn.execute(
                INSERT_DEVICE_ROWS,
                shared
                | {
                    "end_1": sizes[0],
                    "end_2": sizes[0] + sizes[1],
                    "horizon": now - OFFLINE_AFTER,
                },
            )
            lap(f"INSERT image_rollouts + INSERT ... SELECT {total} device_rollout_status")
            uuids, apps, extensions, etags = [], [], [], []
            for uuid, old_apps, config in conn.execute(FIRST_BATCH_TARGETS, shared):
                new_apps = moved_apps(old_apps)
                extension = {
                    "rollout_id": shared["rollout_id"],
                    "health_checks": DEFAULT_CHECKS,
                    "health_report": f"/api/v1/device/{uuid}/health",
                }
                uuids.append(uuid)
                apps.append(Jsonb(new_apps))
                extensions.append(Jsonb(extension))
                etags.append(state_etag(new_apps, config, extension))  # what devices compare
            lap(f"SELECT {len(uuids)} target states, new apps + ETags in Python")
            conn.execute(
                UPDATE_TARGETS,
                {"uuids": uuids, "apps": apps, "extensions": extensions, "now": now},
            )
            lap("UPDATE device_target_state FROM unnest(...)")
            conn.execute(UPDATE_ETAGS, {"uuids": uuids, "etags": etags, "now": now})
            lap("UPDATE devices.target_etag FROM unnest(...)")
            conn.execute(UPDATE_IMAGE_INDEX, shared)
            lap("UPDATE device_target_images")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [EVENT_LOG_LOCK])
            with conn.cursor() as cur:
                cur.executemany(
                    INSERT_EVENT,
                    [
                        (rollout_id, kind, Jsonb(data), message, now)
                        for kind, message, data in (
                            ("webhook_received", f"dockerhub announced {NEW_IMAGE}", {}),
                            ("rollout_created", f"staged rollout of {NEW_IMAGE}", {"sizes": sizes}),
                            ("rollout_started", "first batch starting", {}),
                            ("batch_started", "batch 1 of 3 started", {"batch": 1}),
                        )
                    ],
                )
            conn.execute(
                INSERT_DEVICE_EVENTS,
                shared | {"data": Jsonb({"batch": 1}), "message": f"target set to {NEW_IMAGE}"},
            )
            conn.execute(
                INSERT_DELIVERY,
                shared
                | {"key": f"{REPOSITORY}:{NEW_TAG}@{PUSHED_AT}", "reason": f"rollout {rollout_id}"},
            )
            lap(f"INSERT {len(uuids) + 4} rollout_events, INSERT webhook_deliveries")
        seconds = time.perf_counter() - started
        lap("COMMIT")
    return RawRun(seconds, rollout_id, total, lap.steps)


# --- checks --------------------------------------------------------------------------------


def check_rollout(url: str, label: str, rollout_id: str, devices: int) -> dict[str, str]:
    """What both runs must have written; returns the first batch's ``uuid -> ETag``."""
    first = staged_sizes(devices)[0]
    problems = []
    with psycopg.connect(libpq_url(url)) as conn:

        def scalar(query: str, *params: Any) -> int:
            row = conn.execute(query, params).fetchone()
            return int(row[0]) if row else -1

        def expect(what: str, found: int, wanted: int) -> None:
            if found != wanted:
                problems.append(f"{what}: {found}, expected {wanted}")

        rows = "SELECT count(*) FROM device_rollout_status WHERE rollout_id = %s"
        expect("device_rollout_status rows", scalar(rows, rollout_id), devices)
        expect("scheduled", scalar(rows + " AND status = 'scheduled'", rollout_id), first)
        expect("pending", scalar(rows + " AND status = 'pending'", rollout_id), devices - first)
        sizes = conn.execute(
            "SELECT batch_number, count(*) FROM device_rollout_status WHERE rollout_id = %s"
            " GROUP BY batch_number ORDER BY batch_number",
            [rollout_id],
        ).fetchall()
        found_sizes = [int(n) for _, n in sizes]
        if found_sizes != staged_sizes(devices):
            problems.append(f"batch sizes {found_sizes}, expected {staged_sizes(devices)}")
        new_image = (
            "apps->'1001'->'services'->0->>'imageName' = %s"
            " AND apps->'1001'->'services'->0->'config'->>'image' = %s"
        )
        targets = "SELECT count(*) FROM device_target_state WHERE "
        expect("target states at version 2", scalar(targets + "version = 2"), first)
        expect(
            "target states on the new image",
            scalar(targets + new_image, NEW_IMAGE, NEW_IMAGE),
            first,
        )
        expect(
            "version 2 AND new image",
            scalar(targets + "version = 2 AND " + new_image, NEW_IMAGE, NEW_IMAGE),
            first,
        )
        expect(
            "scheduled devices at version 2",
            scalar(
                "SELECT count(*) FROM device_rollout_status r JOIN device_target_state s"
                " ON s.device_uuid = r.device_uuid"
                " WHERE r.rollout_id = %s AND r.status = 'scheduled' AND s.version = 2",
                rollout_id,
            ),
            first,
        )
        expect(
            "scheduled devices that are offline",
            scalar(
                "SELECT count(*) FROM device_rollout_status r JOIN devices d"
                " ON d.uuid = r.device_uuid"
                " WHERE r.rollout_id = %s AND r.status = 'scheduled' AND NOT d.is_online",
                rollout_id,
            ),
            0,
        )
        expect(
            "image index rows on the new tag",
            scalar(
                "SELECT count(*) FROM device_target_images WHERE tag = %s AND image = %s",
                NEW_TAG,
                NEW_IMAGE,
            ),
            first,
        )
        expect(
            "device_scheduled events",
            scalar(
                "SELECT count(*) FROM rollout_events"
                " WHERE rollout_id = %s AND event_type = 'device_scheduled'",
                rollout_id,
            ),
            first,
        )
        etags = {}
        stale = 0
        for uuid, etag, apps, config, extensions in conn.execute(
            "SELECT d.uuid, d.target_etag, s.apps, s.config, s.extensions"
            " FROM device_target_state s"
            " JOIN devices d ON d.uuid = s.device_uuid WHERE s.version = 2"
        ):
            etags[uuid] = etag
            stale += etag != state_etag(apps, config, extensions)
        expect("ETags that are not the new target state's", stale, 0)
    if problems:
        raise BenchError(f"{label}: " + "; ".join(problems))
    return etags


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark one webhook's fan-out to a staged rollout of a whole fleet."
    )
    add_database_url_argument(parser)
    parser.add_argument("--devices", type=int, default=100_000, help="default: %(default)s")
    args = parser.parse_args()
    if args.devices < 10:
        parser.error("--devices must be at least 10 (three non-empty batches)")
    return args


def checkpoint(admin_url: str) -> None:
    """Flush dirty pages now, so that neither timed run pays for the setup's writes.

    Needs a superuser or the pg_checkpoint role; without it, the runs go on unlevelled."""
    engine = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
    except DBAPIError as exc:
        print(f"  (CHECKPOINT refused, skipped: {str(exc.orig).strip()})", flush=True)
    finally:
        engine.dispose()


def bench(args: argparse.Namespace) -> None:
    fleetwave_executable()  # fails early if the command is missing
    n = args.devices
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetwave-bench-")))
        fw_url = stack.enter_context(throwaway_database(args.database_url))
        upgrade(fw_url)
        started = time.monotonic()
        online = seed(fw_url, n, datetime.now(UTC))
        engine = create_engine(sync_url(fw_url))
        try:
            vacuum(engine, *TABLES)
        finally:
            engine.dispose()  # a template database must have no connection
        print(
            f"seeded {n} devices ({online} online) in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        raw_url = stack.enter_context(throwaway_database(args.database_url, template=fw_url))
        add_policy(raw_url)
        sizes = staged_sizes(n)

        port = free_port()
        env = fleetwave_env(fw_url, workdir / "data", ADMIN_TOKEN, WEBHOOK_SECRET)
        server = stack.enter_context(
            running("fleetwave", fleetwave_command(port), port, env, workdir)
        )
        wait_until_ready(server, "/readyz", 200, {})
        checkpoint(args.database_url)
        print("timing fleetwave: POST /api/v1/webhooks/dockerhub ...", flush=True)
        fw = fleetwave_fanout(server, fw_url, n)
        answer = ", ".join(
            f"{k}={fw.response.get(k)}" for k in ("outcome", "status", "affected_devices")
        )
        print(f"  answered in {fw.answered:.2f} s: HTTP {fw.status_code}, {answer}", flush=True)
        print(f"  first batch written after {fw.first_batch:.2f} s", flush=True)
        fw_etags = check_rollout(fw_url, "fleetwave", fw.rollout_id, n)

        checkpoint(args.database_url)
        print("timing raw SQL: one transaction over psycopg 3 ...", flush=True)
        raw = raw_fanout(raw_url)
        print(f"  {raw.seconds:.2f} s", flush=True)
        if raw.total != n:
            raise BenchError(f"raw SQL found {raw.total} candidate devices, expected {n}")
        raw_etags = check_rollout(raw_url, "raw SQL", raw.rollout_id, n)
        if set(fw_etags) != set(raw_etags):  # ETags name each run's own rollout: not compared
            differ = len(set(fw_etags) ^ set(raw_etags))
            raise BenchError(f"the two first batches differ ({differ} devices)")
        print(
            f"checked: both databases have {n} device rows ({sizes[0]} scheduled), "
            f"{sizes[0]} target states at version 2 on {NEW_IMAGE} with matching ETags, "
            "and the same first batch",
            flush=True,
        )
        report(n, sizes, fw, raw)


def report(n: int, sizes: list[int], fw: FleetwaveRun, raw: RawRun) -> None:
    def mib(kib: int | None) -> str:
        return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"

    print()
    print(f"devices: {n}; batches {' / '.join(map(str, sizes))}; first batch: {sizes[0]}")
    print(f"webhook answered: {fw.answered:.3f} s (HTTP {fw.status_code})")
    print(f"first batch written: {fw.first_batch:.3f} s ({n / fw.first_batch:.0f} devices/s)")
    print(f"raw SQL, one transaction: {raw.seconds:.3f} s ({n / raw.seconds:.0f} devices/s)")
    print(f"ratio: {fw.first_batch / raw.seconds:.2f} (first batch written / raw SQL)")
    print("raw SQL by step:")
    for label, seconds in raw.steps:
        print(f"  {seconds:7.3f} s  {label}")
    before, peak = mib(fw.rss_before_kib), mib(fw.peak_rss_kib)
    print(f"fleetwave server RSS: {before} before the webhook, peak (VmHWM) {peak}")


if __name__ == "__main__":
    raise SystemExit(main(bench, parse_args()))
