"""The operator CLI's plumbing: the admin client's errors, where the URL and token come from,
and command-line values turned into the API's shapes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fleetwave.operator.args import (
    parse_assignments,
    parse_percentages,
    parse_tags,
    parse_window,
    single_service_apps,
)
from fleetwave.operator.client import AdminClient, ApiError, Unreachable
from fleetwave.operator.connection import MissingToken, admin_token, server_url
from fleetwave.operator.policy_commands import PolicyFlags, updated
from fleetwave.settings import Settings

# --- the client ---------------------------------------------------------------------------------


def client_answering(handler: httpx.MockTransport) -> AdminClient:
    return AdminClient("http://fleetwave.test", "secret", transport=handler)


def test_the_client_sends_the_token_and_drops_unset_query_parameters() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    client_answering(httpx.MockTransport(handle)).rollouts(status=[], image=None, limit=5)
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert str(seen[0].url) == "http://fleetwave.test/api/v1/rollouts?limit=5"


def test_ids_from_the_command_line_are_escaped_in_paths() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})

    client_answering(httpx.MockTransport(handle)).device_control("r/1", "a b", "rollback", {})
    assert seen == ["/api/v1/rollouts/r%2F1/devices/a%20b/rollback"]


def test_the_servers_error_answer_becomes_an_api_error_with_its_message() -> None:
    body = {"error": "invalid request: priority: too big", "detail": [{"field": "priority"}]}
    transport = httpx.MockTransport(lambda _: httpx.Response(422, json=body))
    with pytest.raises(ApiError) as refused:
        client_answering(transport).create_policy({"image_pattern": "x", "priority": 10**9})
    assert (refused.value.status, refused.value.message) == (422, body["error"])
    assert refused.value.detail == [{"field": "priority"}]


def test_an_error_that_is_not_json_keeps_its_text() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(502, text="Bad Gateway\n"))
    with pytest.raises(ApiError, match="Bad Gateway") as refused:
        client_answering(transport).policies()
    assert refused.value.status == 502


def test_an_empty_answer_is_none() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(204))
    assert client_answering(transport).request("DELETE", "/api/v1/image-policies/1") is None


def test_no_server_is_unreachable_with_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(Unreachable) as lost:
        client_answering(httpx.MockTransport(refuse)).rollout("r-1")
    assert (lost.value.url, lost.value.reason) == ("http://fleetwave.test", "connection refused")


# --- URL and token ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_local_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings read the environment and ./.env: neither may leak into these tests."""
    for name in ("FLEETWAVE_ADMIN_TOKEN", "FLEETWAVE_HOST", "FLEETWAVE_PORT", "FLEETWAVE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def no_settings() -> Settings:
    raise AssertionError("settings are read only when the flags say nothing")


def test_flags_win_and_settings_are_not_even_read() -> None:
    assert server_url("http://fleet.example:8080/", no_settings) == "http://fleet.example:8080"
    assert admin_token("fwa_flag", no_settings) == "fwa_flag"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:3005"),
        ("0.0.0.0", "http://127.0.0.1:3005"),  # noqa: S104 - a server listening everywhere
        ("::1", "http://[::1]:3005"),
        ("fleet.lan", "http://fleet.lan:3005"),
    ],
)
def test_without_a_flag_the_url_is_the_servers_host_and_port(host: str, expected: str) -> None:
    assert server_url(None, lambda: Settings(host=host, port=3005)) == expected


def test_without_a_flag_the_token_is_the_configured_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_token="fwa_configured")
    assert admin_token(None, lambda: settings) == "fwa_configured"


def test_else_the_token_is_read_from_the_data_directory(tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("fwa_kept\n")
    assert admin_token(None, lambda: Settings(data_dir=tmp_path)) == "fwa_kept"


def test_a_missing_token_file_is_an_error_and_no_token_is_made(tmp_path: Path) -> None:
    with pytest.raises(MissingToken, match="admin-token does not exist; pass --token"):
        admin_token(None, lambda: Settings(data_dir=tmp_path))
    assert not (tmp_path / "admin-token").exists()


def test_an_empty_token_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("\n")
    with pytest.raises(MissingToken, match="is empty"):
        admin_token(None, lambda: Settings(data_dir=tmp_path))


# --- command-line values ------------------------------------------------------------------------


def test_tags_are_written_key_equals_value_or_key_colon_value() -> None:
    assert parse_tags(["site=lyon", "ring:canary", "url=a:b"]) == {
        "site": "lyon",
        "ring": "canary",
        "url": "a:b",
    }
    with pytest.raises(ValueError, match="--tag 'lyon': write key=value"):
        parse_tags(["lyon"])


def test_set_values_are_json_when_they_parse_and_text_otherwise() -> None:
    assert parse_assignments(["soak_seconds=0", "pin_digest=false", "description=night run"]) == {
        "soak_seconds": 0,
        "pin_digest": False,
        "description": "night run",
    }
    assert parse_assignments(['health_check_config={"checks": []}']) == {
        "health_check_config": {"checks": []}
    }
    with pytest.raises(ValueError, match="write field=value"):
        parse_assignments(["soak_seconds"])


def test_percentages_and_windows() -> None:
    assert parse_percentages("5, 25,100") == [5.0, 25.0, 100.0]
    assert parse_window("22:00-04:30") == ("22:00", "04:30")
    with pytest.raises(ValueError, match="--percentages"):
        parse_percentages("5,lots")
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_window("tonight")


def test_an_image_flag_makes_one_app_with_the_image_in_both_fields() -> None:
    service = single_service_apps("iotistic/myapp:v2.0.0")["1001"]["services"][0]
    assert service["imageName"] == service["config"]["image"] == "iotistic/myapp:v2.0.0"


# --- policies: flags to fields ------------------------------------------------------------------


def test_policy_flags_become_the_apis_fields_and_unset_flags_are_left_out() -> None:
    flags = PolicyFlags(
        image_pattern="iotistic/*",
        staged_batches=2,
        window="02:00-04:00",
        tags=["site=lyon"],
        device_uuids=[],
        health_check_enabled=False,
        assignments=["soak_seconds=0"],
    )
    assert flags.changes() == {
        "image_pattern": "iotistic/*",
        "staged_batches": 2,
        "maintenance_window_start": "02:00",
        "maintenance_window_end": "04:00",
        "device_tags": {"site": "lyon"},
        "health_check_enabled": False,
        "soak_seconds": 0,
    }


def test_a_file_gives_fields_that_flags_override(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"image_pattern": "a/*", "priority": 5, "max_retries": 1}')
    flags = PolicyFlags(priority=9, file=path)
    assert flags.changes() == {"image_pattern": "a/*", "priority": 9, "max_retries": 1}


def test_an_update_keeps_the_other_fields_and_drops_read_only_ones() -> None:
    current = {
        "id": 3,
        "image_pattern": "a/*",
        "staged_batches": 3,
        "batch_percentages": [5.0, 25.0, 100.0],
        "priority": 100,
        "effective_health_checks": [],
        "created_at": "…",
        "updated_at": "…",
    }
    assert updated(current, {"priority": 7}) == {
        "image_pattern": "a/*",
        "staged_batches": 3,
        "batch_percentages": [5.0, 25.0, 100.0],
        "priority": 7,
    }
    assert updated(current, {"staged_batches": 2})["batch_percentages"] is None
