"""The pure pieces of a poll answered from memory: the poll cache and what it forgets, when
last-seen is written (at once, behind, or not at all), what makes two reports "the same", how
changed devices are announced (NOTIFY payloads, SQLite's change file), device chatter kept out
of the INFO access log, and which database errors mean "unavailable, try again"."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from fleetwave.devices.heard_changes import HeardChanges
from fleetwave.devices.last_seen import PresenceWrite, presence_write
from fleetwave.devices.poll_cache import FORGOTTEN_KEPT, CachedDevice, PollCache
from fleetwave.devices.targets import NOTIFY_PAYLOAD_LIMIT, notify_payloads, read_payload
from fleetwave.domain.report import report_digest
from fleetwave.logs import DeviceChatterAtDebug, is_device_chatter
from fleetwave.store.change_file import ChangeFile
from fleetwave.store.db import database_unavailable

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)
TICK = timedelta(microseconds=1)


def device(key: str = "key-a", etag: str = '"etag-1"') -> CachedDevice:
    return CachedDevice(key_hash=key, etag=etag, online=True, last_seen=NOW)


def filled(size: int, *uuids: str, **options: Any) -> PollCache:
    """A cache holding ``uuids`` (each with the key ``key-<uuid>``), put in that order."""
    cache = PollCache(size, **options)
    for uuid in uuids:
        cache.put(uuid, device(f"key-{uuid}"), cache.begin())
    return cache


class FakeMonotonic:
    """The seconds the cache reads for how long an unknown key is remembered."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


# --- the poll cache: bounded, least recently used dropped first --------------------------------


def test_past_its_size_the_cache_drops_the_device_put_longest_ago() -> None:
    cache = filled(2, "a", "b", "c")
    assert len(cache) == 2
    assert cache.get("a") is None
    assert cache.get("b") is not None and cache.get("c") is not None


def test_a_device_read_recently_is_kept_over_one_put_more_recently_but_not_read() -> None:
    cache = filled(2, "a", "b")
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", device("key-c"), cache.begin())
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_putting_a_cached_device_again_replaces_it_without_growing_the_cache() -> None:
    cache = filled(2, "a", "b")
    cache.put("a", device("key-a", '"etag-2"'), cache.begin())
    assert len(cache) == 2
    found = cache.get("a")
    assert found is not None and found.etag == '"etag-2"'
    cache.put("c", device("key-c"), cache.begin())  # "b" is the least recently used now
    assert cache.get("b") is None and cache.get("a") is not None


def test_a_cache_of_size_zero_is_off_and_holds_nothing() -> None:
    cache = filled(0, "a")
    cache.put_unknown_key("stranger", cache.begin())
    assert not cache.enabled
    assert len(cache) == 0 and cache.get("a") is None
    assert cache.owner_of("key-a") is None and not cache.is_unknown_key("stranger")


# --- forgetting: a fill that began before a change is refused ----------------------------------


def test_forgetting_a_device_drops_it_and_its_key() -> None:
    cache = filled(10, "a", "b")
    cache.forget(["a"])
    assert cache.get("a") is None and cache.owner_of("key-a") is None
    assert cache.get("b") is not None and cache.owner_of("key-b") == "b"


def test_a_fill_that_began_before_its_device_was_forgotten_is_refused_but_others_are_not() -> None:
    cache = PollCache(10)
    since = cache.begin()  # the read starts…
    cache.forget(["a"])  # …a change to "a" commits and is announced meanwhile
    cache.put("a", device("key-a"), since)
    cache.put("b", device("key-b"), since)
    assert cache.get("a") is None  # what was read may be stale
    assert cache.get("b") is not None
    cache.put("a", device("key-a"), cache.begin())  # read after the change: kept
    assert cache.get("a") is not None


def test_forgetting_everything_refuses_every_fill_in_flight() -> None:
    cache = filled(10, "a")
    since = cache.begin()
    cache.forget_all()
    assert len(cache) == 0 and cache.owner_of("key-a") is None
    cache.put("a", device("key-a"), since)
    cache.put("b", device("key-b"), since)
    assert len(cache) == 0
    cache.put("b", device("key-b"), cache.begin())
    assert cache.get("b") is not None


@pytest.mark.parametrize(
    ("forgotten", "old_fill_kept"),
    [
        pytest.param(FORGOTTEN_KEPT, True, id="as many forgets as are kept: per device"),
        pytest.param(FORGOTTEN_KEPT + 1, False, id="one more: fills begun before are refused"),
    ],
)
def test_past_the_forget_records_kept_every_fill_begun_before_the_dropped_one_is_refused(
    forgotten: int, old_fill_kept: bool
) -> None:
    cache = PollCache(10)
    since = cache.begin()
    for i in range(forgotten):
        cache.forget([f"other-{i}"])
    cache.put("never-forgotten", device(), since)
    assert (cache.get("never-forgotten") is not None) is old_fill_kept
    cache.put("fresh", device("key-fresh"), cache.begin())  # begun after: always kept
    assert cache.get("fresh") is not None


def test_past_the_forget_records_kept_a_dropped_record_still_refuses_its_own_device() -> None:
    cache = PollCache(10)
    since = cache.begin()
    cache.forget(["a"])
    cache.forget([f"other-{i}" for i in range(FORGOTTEN_KEPT)])  # "a"'s record is dropped
    cache.put("a", device("key-a"), since)
    assert cache.get("a") is None


# --- whose key is it -----------------------------------------------------------------------------


def test_a_key_belongs_to_the_device_it_was_cached_with_until_that_device_is_dropped() -> None:
    cache = filled(2, "a")
    assert cache.owner_of("key-a") == "a"
    assert cache.owner_of("key-nobody") is None
    cache.put("b", device("key-b"), cache.begin())
    cache.put("c", device("key-c"), cache.begin())  # "a" is dropped: least recently used
    assert cache.owner_of("key-a") is None
    assert cache.owner_of("key-b") == "b" and cache.owner_of("key-c") == "c"


def test_a_device_re_cached_with_a_new_key_no_longer_owns_the_old_one() -> None:
    cache = filled(10, "a")
    cache.forget(["a"])  # its key was rotated
    cache.put("a", device("key-a-rotated"), cache.begin())
    assert cache.owner_of("key-a") is None
    assert cache.owner_of("key-a-rotated") == "a"
    cache.put("a", device("key-a-again"), cache.begin())  # replaced without a forget too
    assert cache.owner_of("key-a-rotated") is None
    assert cache.owner_of("key-a-again") == "a"


# --- keys nobody has, remembered briefly ---------------------------------------------------------


def test_an_unknown_key_is_remembered_until_its_time_runs_out() -> None:
    monotonic = FakeMonotonic()
    cache = PollCache(10, unknown_key_seconds=10.0, monotonic=monotonic)
    cache.put_unknown_key("stranger", cache.begin())
    assert cache.is_unknown_key("stranger")
    assert not cache.is_unknown_key("someone-else")
    monotonic.seconds += 9.9
    assert cache.is_unknown_key("stranger")
    monotonic.seconds += 0.1
    assert not cache.is_unknown_key("stranger")


@pytest.mark.parametrize(
    "forget",
    [
        pytest.param(lambda cache: cache.forget(["somebody"]), id="a device forgotten"),
        pytest.param(lambda cache: cache.forget([]), id="a forget naming no device"),
        pytest.param(lambda cache: cache.forget_all(), id="everything forgotten"),
    ],
)
def test_any_forget_clears_the_unknown_keys(forget: Callable[[PollCache], None]) -> None:
    cache = PollCache(10, monotonic=FakeMonotonic())
    cache.put_unknown_key("stranger", cache.begin())
    forget(cache)  # a device created or re-keyed may own it now
    assert not cache.is_unknown_key("stranger")


def test_an_unknown_key_is_not_remembered_if_anything_was_forgotten_since_the_lookup_began() -> (
    None
):
    cache = PollCache(10, monotonic=FakeMonotonic())
    since = cache.begin()
    cache.forget(["new-device"])  # created meanwhile, perhaps with this very key
    cache.put_unknown_key("stranger", since)
    assert not cache.is_unknown_key("stranger")


def test_unknown_keys_are_bounded_by_the_cache_size() -> None:
    cache = PollCache(2, monotonic=FakeMonotonic())
    for key in ("first", "second", "third"):
        cache.put_unknown_key(key, cache.begin())
    assert not cache.is_unknown_key("first")
    assert cache.is_unknown_key("second") and cache.is_unknown_key("third")


# --- untrusted: while changes may go unheard, the cache answers nothing --------------------------


def test_an_untrusted_cache_answers_nothing_and_stores_nothing() -> None:
    trusted = [True]
    monotonic = FakeMonotonic()
    cache = filled(10, "a", trusted=lambda: trusted[0], monotonic=monotonic)
    cache.put_unknown_key("stranger", cache.begin())
    trusted[0] = False
    assert not cache.enabled
    assert cache.get("a") is None
    assert cache.owner_of("key-a") is None
    assert not cache.is_unknown_key("stranger")
    cache.put("b", device("key-b"), cache.begin())
    cache.put_unknown_key("another-stranger", cache.begin())
    trusted[0] = True
    assert cache.get("b") is None and cache.owner_of("key-b") is None
    assert not cache.is_unknown_key("another-stranger")


# --- presence: when hearing from a device writes last-seen ---------------------------------------


@pytest.mark.parametrize(
    ("stored_online", "last_seen", "offline_after", "expected"),
    [
        pytest.param(True, NOW, FIVE_MINUTES, PresenceWrite.NONE, id="just written"),
        pytest.param(
            True, NOW - timedelta(seconds=75) + TICK, FIVE_MINUTES, PresenceWrite.NONE,
            id="just under a quarter of offline_after",
        ),
        pytest.param(
            True, NOW - timedelta(seconds=75), FIVE_MINUTES, PresenceWrite.BEHIND,
            id="a quarter of offline_after: refreshed behind",
        ),
        pytest.param(
            True, NOW - timedelta(minutes=4), FIVE_MINUTES, PresenceWrite.BEHIND, id="4 min"
        ),
        pytest.param(
            True, NOW - FIVE_MINUTES, FIVE_MINUTES, PresenceWrite.BEHIND,
            id="exactly offline_after: still online, refreshed behind",
        ),
        pytest.param(
            True, NOW - FIVE_MINUTES - TICK, FIVE_MINUTES, PresenceWrite.NOW,
            id="just past offline_after: comes online now",
        ),
        pytest.param(
            True, NOW - timedelta(hours=1), FIVE_MINUTES, PresenceWrite.NOW, id="an hour silent"
        ),
        pytest.param(True, None, FIVE_MINUTES, PresenceWrite.NOW, id="never seen"),
        pytest.param(False, NOW, FIVE_MINUTES, PresenceWrite.NOW, id="said offline just now"),
        pytest.param(False, None, FIVE_MINUTES, PresenceWrite.NOW, id="offline, never seen"),
        pytest.param(
            True, NOW - timedelta(seconds=14), timedelta(minutes=1), PresenceWrite.NONE,
            id="1 min threshold: 14 s",
        ),
        pytest.param(
            True, NOW - timedelta(seconds=15), timedelta(minutes=1), PresenceWrite.BEHIND,
            id="1 min threshold: 15 s",
        ),
        pytest.param(
            True, NOW - timedelta(seconds=61), timedelta(minutes=1), PresenceWrite.NOW,
            id="1 min threshold: 61 s",
        ),
    ],
)  # fmt: skip
def test_presence_write(
    stored_online: bool,
    last_seen: datetime | None,
    offline_after: timedelta,
    expected: PresenceWrite,
) -> None:
    assert presence_write(stored_online, last_seen, NOW, offline_after) is expected


# --- report digest: what makes two reports the same ----------------------------------------------

REPORT = {
    "apps": {"1001": {"services": [{"imageName": "iotistic/myapp:v2.0.0", "status": "running"}]}},
    "is_online": True,
    "cpu_usage": 12.5,
}


def test_the_same_report_in_another_key_order_has_the_same_digest() -> None:
    service = {"status": "running", "imageName": "iotistic/myapp:v2.0.0"}
    reordered = {"cpu_usage": 12.5, "is_online": True, "apps": {"1001": {"services": [service]}}}
    assert report_digest(3, reordered) == report_digest(3, REPORT)


@pytest.mark.parametrize(
    ("version", "report"),
    [
        pytest.param(4, REPORT, id="the same content under another target version"),
        pytest.param(3, REPORT | {"cpu_usage": 12.6}, id="another metric"),
        pytest.param(3, REPORT | {"is_online": False}, id="now offline"),
        pytest.param(3, {k: v for k, v in REPORT.items() if k != "cpu_usage"}, id="one field less"),
    ],
)
def test_another_target_version_or_other_content_has_another_digest(
    version: int, report: dict[str, Any]
) -> None:
    assert report_digest(version, report) != report_digest(3, REPORT)


def test_lone_surrogates_in_a_report_do_not_break_its_digest() -> None:
    # json.loads accepts "\ud800" escapes: a report may carry strings no UTF-8 can encode
    broken = REPORT | {"os_version": "\ud800", "\udc80": "key too"}
    digest = report_digest(3, broken)
    assert len(digest) == 64
    assert digest == report_digest(3, dict(broken))
    assert digest != report_digest(3, REPORT | {"os_version": "\udbff", "\udc80": "key too"})


# --- NOTIFY payloads: every changed device named once, within PostgreSQL's limit -----------------

TAG = "@0123456789ab.42"


@pytest.mark.parametrize(
    "uuids",
    [
        pytest.param({f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(100_000)}, id="100k"),
        pytest.param({"x" * n for n in range(1, 400)}, id="uuids of every length up to 399"),
        pytest.param({"only-one"}, id="one"),
    ],
)
def test_notify_payloads_name_every_uuid_once_within_the_payload_limit(uuids: set[str]) -> None:
    payloads = notify_payloads(frozenset(uuids), TAG)
    assert all(len(p.encode()) <= NOTIFY_PAYLOAD_LIMIT for p in payloads)
    read = [read_payload(payload) for payload in payloads]
    assert {tag for tag, _ in read} == {TAG}
    named = [uuid for _, some in read for uuid in some]
    assert len(named) == len(uuids) and set(named) == uuids


def test_notify_payloads_are_as_few_as_the_limit_allows() -> None:
    uuids = frozenset(f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(100_000))
    per_payload = (NOTIFY_PAYLOAD_LIMIT - len(TAG)) // 37  # a space and 36 characters each
    assert len(notify_payloads(uuids, TAG)) == -(-len(uuids) // per_payload)
    assert notify_payloads(frozenset(), TAG) == []


def test_an_untagged_payload_is_all_uuids() -> None:
    assert read_payload("a b") == (None, ["a", "b"])
    assert read_payload(f"{TAG} a") == (TAG, ["a"])


# --- hearing a change once, though it arrives on commit and again through NOTIFY --------------


def test_a_change_heard_whole_on_commit_has_no_news_in_its_notifications() -> None:
    heard = HeardChanges()
    assert heard.news(TAG, {"a", "b", "c"}, whole=True) == {"a", "b", "c"}
    assert heard.news(TAG, {"a", "b"}, whole=False) == set()
    assert heard.news(TAG, {"c"}, whole=False) == set()


def test_the_devices_of_notifications_heard_first_are_left_out_when_the_commit_is_heard() -> None:
    heard = HeardChanges()
    assert heard.news(TAG, {"a", "b"}, whole=False) == {"a", "b"}
    assert heard.news(TAG, {"c"}, whole=False) == {"c"}
    assert heard.news(TAG, {"a", "b", "c", "d"}, whole=True) == {"d"}
    assert heard.news(TAG, {"d"}, whole=False) == set()


def test_untagged_changes_and_other_changes_are_always_news() -> None:
    heard = HeardChanges()
    heard.news(TAG, {"a"}, whole=True)
    assert heard.news(None, {"a"}, whole=False) == {"a"}
    assert heard.news(None, {"a"}, whole=True) == {"a"}
    assert heard.news("@0123456789ab.43", {"a"}, whole=False) == {"a"}


def test_past_the_changes_kept_the_oldest_is_news_again() -> None:
    heard = HeardChanges(kept=2)
    for n in range(3):
        heard.news(f"@o.{n}", {"a"}, whole=True)
    assert heard.news("@o.0", {"a"}, whole=False) == {"a"}  # only a read more: never missed
    assert heard.news("@o.2", {"a"}, whole=False) == set()


# --- the change file: SQLite's "devices changed" across processes ------------------------------


def test_a_change_announced_by_one_process_is_seen_once_by_another(tmp_path: Path) -> None:
    path = tmp_path / "fleetwave.db-changes"
    a, b = ChangeFile(path), ChangeFile(path)
    assert b.changed_elsewhere() is False
    assert a.announce() is False  # nobody else announced anything
    assert b.changed_elsewhere() is True
    assert b.changed_elsewhere() is False
    assert a.changed_elsewhere() is False  # its own announcement is no news to it


def test_announcing_says_so_when_another_process_announced_in_between(tmp_path: Path) -> None:
    path = tmp_path / "fleetwave.db-changes"
    a, b = ChangeFile(path), ChangeFile(path)
    a.announce()
    b.announce()
    assert a.announce() is True  # b's change is a's to take in as well
    assert a.announce() is False


def test_a_process_starting_later_does_not_take_earlier_changes_for_news(tmp_path: Path) -> None:
    path = tmp_path / "fleetwave.db-changes"
    ChangeFile(path).announce()
    assert ChangeFile(path).changed_elsewhere() is False


# --- device chatter: successful polls and reports are access-logged at DEBUG --------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "chatter"),
    [
        pytest.param("GET", "/api/v1/device/d-1/state", 304, True, id="a 304 poll"),
        pytest.param("GET", "/api/v1/device/d-1/state", 200, True, id="a 200 poll"),
        pytest.param("GET", "/api/v1/device/d-1/state?wait=30", 304, True, id="a long poll"),
        pytest.param("PATCH", "/api/v1/device/state", 200, True, id="a 200 report"),
        pytest.param("GET", "/api/v1/device/d-1/state", 401, False, id="a 401 poll"),
        pytest.param("PATCH", "/api/v1/device/state", 422, False, id="a 422 report"),
        pytest.param("GET", "/api/v1/device/d-1/state", 503, False, id="a 503 poll"),
        pytest.param(
            "POST", "/api/v1/webhooks/docker-registry?secret=<redacted>", 200, False,
            id="a webhook",
        ),
        pytest.param("GET", "/api/v1/devices/d-1", 200, False, id="an admin read"),
        pytest.param("PUT", "/api/v1/devices/d-1/target-state", 200, False, id="an admin write"),
        pytest.param("GET", "/api/v1/device/d-1/state/extra", 200, False, id="another path"),
    ],
)  # fmt: skip
def test_is_device_chatter(method: str, path: str, status: int, chatter: bool) -> None:
    assert is_device_chatter(method, path, status) is chatter


def access_record(logger: str, method: str, path: str, status: int) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it."""
    return logging.LogRecord(
        logger,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", method, path, "1.1", status),
        None,
    )


@pytest.fixture
def access_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.unit.poll_cache.access")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_a_successful_poll_is_dropped_from_an_info_access_log_and_kept_at_debug(
    access_logger: logging.Logger,
) -> None:
    chatter_filter = DeviceChatterAtDebug()
    access_logger.setLevel(logging.INFO)
    poll = access_record(access_logger.name, "GET", "/api/v1/device/d-1/state", 304)
    assert chatter_filter.filter(poll) is False
    access_logger.setLevel(logging.DEBUG)
    poll = access_record(access_logger.name, "GET", "/api/v1/device/d-1/state", 304)
    assert chatter_filter.filter(poll) is True
    assert (poll.levelno, poll.levelname) == (logging.DEBUG, "DEBUG")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/device/d-1/state", 401),
        ("POST", "/api/v1/webhooks/docker-registry?secret=<redacted>", 200),
        ("GET", "/api/v1/rollouts", 200),
    ],
)
def test_failed_device_requests_and_everything_else_stay_at_info(
    access_logger: logging.Logger, method: str, path: str, status: int
) -> None:
    access_logger.setLevel(logging.INFO)
    record = access_record(access_logger.name, method, path, status)
    assert DeviceChatterAtDebug().filter(record) is True
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")


def test_records_that_are_not_access_lines_pass_untouched(access_logger: logging.Logger) -> None:
    access_logger.setLevel(logging.INFO)
    record = logging.LogRecord(
        access_logger.name, logging.INFO, __file__, 1, "started %s", ("x",), None
    )
    assert DeviceChatterAtDebug().filter(record) is True
    assert record.levelno == logging.INFO


# --- database errors: unavailable (503, try again) or a statement that is wrong ---------------


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        pytest.param(
            OperationalError("UPDATE devices", {}, sqlite3.OperationalError("database is locked")),
            True, id="sqlite: database is locked",
        ),
        pytest.param(
            OperationalError("UPDATE devices", {}, sqlite3.OperationalError("database is busy")),
            True, id="sqlite: database is busy",
        ),
        pytest.param(
            OperationalError(
                "SELECT 1", {}, sqlite3.OperationalError("unable to open database file")
            ),
            True, id="sqlite: unable to open the database file",
        ),
        pytest.param(
            OperationalError("SELECT x", {}, sqlite3.OperationalError("no such table: x")),
            False, id="sqlite: no such table",
        ),
        pytest.param(
            OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
            True, id="psycopg: connection refused",
        ),
        pytest.param(
            OperationalError(
                "UPDATE devices", {}, psycopg.errors.SerializationFailure("could not serialize")
            ),
            True, id="psycopg: serialization failure",
        ),
        pytest.param(
            IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
            False, id="sqlite: integrity error",
        ),
        pytest.param(
            IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key")),
            False, id="psycopg: integrity error",
        ),
        pytest.param(
            InterfaceError("SELECT 1", {}, psycopg.InterfaceError("connection is closed")),
            True, id="psycopg: interface error",
        ),
        pytest.param(
            DBAPIError(
                "SELECT 1", {}, psycopg.DatabaseError("server closed the connection"),
                connection_invalidated=True,
            ),
            True, id="any error that invalidated the connection",
        ),
        pytest.param(
            DBAPIError("SELECT 1", {}, psycopg.DatabaseError("server closed the connection")),
            False, id="the same error, connection still valid",
        ),
    ],
)  # fmt: skip
def test_database_unavailable(error: DBAPIError, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable
