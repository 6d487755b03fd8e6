"""Settings: the plan's defaults, FLEETWAVE_ variables, and start-up errors naming the setting."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from fleetwave.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited FLEETWAVE_ variables and no .env file from the working directory."""
    for name in list(os.environ):
        if name.upper().startswith("FLEETWAVE_") or name.upper() == "DOCKER_WEBHOOK_SECRET":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_are_the_plans() -> None:
    settings = load_settings()

    assert settings.default_strategy == "staged"
    assert settings.staged_batches == [0.1, 0.5, 1.0]
    assert settings.batch_delay_minutes == 30
    assert settings.health_check_timeout == 300
    assert settings.max_failure_rate == 0.2
    assert settings.auto_rollback is True
    assert settings.device_offline_after == timedelta(minutes=5)
    assert settings.not_applying_after == timedelta(minutes=10)
    assert settings.port == 3001
    assert settings.host == "127.0.0.1"
    assert settings.webhook_secret is None
    assert settings.admin_token is None
    assert settings.database_url is None
    assert settings.device_log_lines == 1000
    assert settings.device_log_max_age == timedelta(days=7)


def test_default_database_is_sqlite_in_the_data_dir(clean_environment: Path) -> None:
    expected = (clean_environment / "var" / "fleetwave.db").resolve()

    assert load_settings().resolved_database_url == f"sqlite+aiosqlite:///{expected}"


def test_database_follows_a_configured_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLEETWAVE_DATA_DIR", str(tmp_path / "state"))

    settings = load_settings()

    assert settings.resolved_database_url == (
        f"sqlite+aiosqlite:///{(tmp_path / 'state' / 'fleetwave.db').resolve()}"
    )
    assert settings.admin_token_path == tmp_path / "state" / "admin-token"


def test_configured_database_url_is_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETWAVE_DATABASE_URL", "postgresql://fw@127.0.0.1:5432/test")

    assert load_settings().resolved_database_url == "postgresql://fw@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("FLEETWAVE_DEFAULT_STRATEGY", "auto", "default_strategy", "auto"),
        ("FLEETWAVE_STAGED_BATCHES", "[0.25, 1.0]", "staged_batches", [0.25, 1.0]),
        ("FLEETWAVE_STAGED_BATCHES", "[1.0]", "staged_batches", [1.0]),
        ("FLEETWAVE_BATCH_DELAY_MINUTES", "0", "batch_delay_minutes", 0),
        ("FLEETWAVE_HEALTH_CHECK_TIMEOUT", "60", "health_check_timeout", 60),
        ("FLEETWAVE_MAX_FAILURE_RATE", "0.5", "max_failure_rate", 0.5),
        ("FLEETWAVE_MAX_FAILURE_RATE", "1", "max_failure_rate", 1.0),
        ("FLEETWAVE_AUTO_ROLLBACK", "false", "auto_rollback", False),
        ("FLEETWAVE_DEVICE_OFFLINE_AFTER", "PT10M", "device_offline_after", timedelta(minutes=10)),
        ("FLEETWAVE_NOT_APPLYING_AFTER", "3m", "not_applying_after", timedelta(minutes=3)),
        ("FLEETWAVE_PORT", "8080", "port", 8080),
        ("FLEETWAVE_HOST", "192.168.1.10", "host", "192.168.1.10"),
        ("FLEETWAVE_DATA_DIR", "/srv/fleetwave", "data_dir", Path("/srv/fleetwave")),
        ("FLEETWAVE_REGISTER_RATE_PER_MINUTE", "5", "register_rate_per_minute", 5),
        ("FLEETWAVE_LOG_LEVEL", "debug", "log_level", "debug"),
        ("FLEETWAVE_DEVICE_LOG_LINES", "200", "device_log_lines", 200),
        ("FLEETWAVE_DEVICE_LOG_MAX_AGE", "2d", "device_log_max_age", timedelta(days=2)),
        ("FLEETWAVE_DEVICE_LOG_MAX_AGE", "12h", "device_log_max_age", timedelta(hours=12)),
        ("FLEETWAVE_DEVICE_LOG_MAX_AGE", "P30D", "device_log_max_age", timedelta(days=30)),
    ],
)
def test_fleetwave_variables_are_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, attribute: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)

    assert getattr(load_settings(), attribute) == expected


def test_offline_after_given_in_plain_seconds_is_read_as_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # like FLEETWAVE_HEALTH_CHECK_TIMEOUT=300, a bare number of seconds
    monkeypatch.setenv("FLEETWAVE_DEVICE_OFFLINE_AFTER", "600")

    assert load_settings().device_offline_after == timedelta(minutes=10)


def test_dotenv_file_in_the_working_directory_is_read(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text("FLEETWAVE_PORT=4000\n")

    assert load_settings().port == 4000


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETWAVE_PORT", "4000")

    assert load_settings(port=5000).port == 5000


@pytest.mark.parametrize("variable", ["DOCKER_WEBHOOK_SECRET", "FLEETWAVE_WEBHOOK_SECRET"])
def test_webhook_secret_is_read_from_either_name(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "hook-secret-1")

    secret = load_settings().webhook_secret

    assert secret is not None
    assert secret.get_secret_value() == "hook-secret-1"


def test_fleetwave_webhook_secret_wins_over_the_seeds_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_WEBHOOK_SECRET", "from-docker")
    monkeypatch.setenv("FLEETWAVE_WEBHOOK_SECRET", "from-fleetwave")

    secret = load_settings().webhook_secret

    assert secret is not None
    assert secret.get_secret_value() == "from-fleetwave"


@pytest.mark.parametrize("variable", ["DOCKER_WEBHOOK_SECRET", "FLEETWAVE_WEBHOOK_SECRET"])
def test_secrets_never_appear_in_the_settings_repr(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "hunter2-webhook")
    monkeypatch.setenv("FLEETWAVE_ADMIN_TOKEN", "hunter2-admin")

    settings = load_settings()

    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "hunter2-admin"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        pytest.param("FLEETWAVE_MAX_FAILURE_RATE", "1.5", "less than or equal to 1", id="rate>1"),
        pytest.param("FLEETWAVE_MAX_FAILURE_RATE", "-0.1", "greater than or equal", id="rate<0"),
        pytest.param("FLEETWAVE_STAGED_BATCHES", "[0.1,0.5,0.9]", "must be 1.0", id="not to 1"),
        pytest.param(
            "FLEETWAVE_STAGED_BATCHES", "[0.5,0.1,1.0]", "strictly increasing", id="decreasing"
        ),
        pytest.param(
            "FLEETWAVE_STAGED_BATCHES", "[0.5,0.5,1.0]", "strictly increasing", id="repeated"
        ),
        pytest.param("FLEETWAVE_STAGED_BATCHES", "[]", "at least one", id="empty"),
        pytest.param("FLEETWAVE_STAGED_BATCHES", "[0,1.0]", "in (0, 1]", id="zero fraction"),
        pytest.param("FLEETWAVE_STAGED_BATCHES", "[0.5,1.5]", "in (0, 1]", id="over one"),
        pytest.param("FLEETWAVE_DEFAULT_STRATEGY", "bogus", "'staged'", id="strategy"),
        pytest.param("FLEETWAVE_DEVICE_OFFLINE_AFTER", "0", "", id="offline zero"),
        pytest.param("FLEETWAVE_DEVICE_OFFLINE_AFTER", "PT0S", "positive", id="offline PT0S"),
        pytest.param("FLEETWAVE_DEVICE_OFFLINE_AFTER", "-PT5M", "positive", id="offline negative"),
        pytest.param("FLEETWAVE_NOT_APPLYING_AFTER", "0", "positive", id="not applying zero"),
        pytest.param("FLEETWAVE_PORT", "0", "greater than or equal to 1", id="port zero"),
        pytest.param("FLEETWAVE_PORT", "70000", "less than or equal to 65535", id="port big"),
        pytest.param("FLEETWAVE_HEALTH_CHECK_TIMEOUT", "0", "greater than 0", id="timeout"),
        pytest.param("FLEETWAVE_BATCH_DELAY_MINUTES", "-1", "greater than or equal", id="delay"),
        pytest.param("FLEETWAVE_LOG_LEVEL", "verbose", "'debug'", id="log level"),
        pytest.param("FLEETWAVE_DEVICE_LOG_LINES", "0", "greater than or equal to 1", id="lines"),
        pytest.param("FLEETWAVE_DEVICE_LOG_MAX_AGE", "0", "positive", id="log age zero"),
        pytest.param("FLEETWAVE_DEVICE_LOG_MAX_AGE", "20000d", "at most 3650 days", id="log age"),
        pytest.param("FLEETWAVE_DEVICE_LOG_MAX_AGE", "999999999999d", "too long", id="log age inf"),
    ],
)
def test_invalid_value_stops_start_up_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    message = str(caught.value)
    assert message.startswith("invalid settings: ")
    assert f"{variable}: " in message
    assert reason in message


def test_every_invalid_setting_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETWAVE_MAX_FAILURE_RATE", "2")
    monkeypatch.setenv("FLEETWAVE_DEFAULT_STRATEGY", "bogus")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "FLEETWAVE_MAX_FAILURE_RATE" in str(caught.value)
    assert "FLEETWAVE_DEFAULT_STRATEGY" in str(caught.value)


def test_invalid_override_is_named_like_its_variable() -> None:
    with pytest.raises(SettingsError, match="FLEETWAVE_MAX_FAILURE_RATE"):
        load_settings(max_failure_rate=1.5)


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)
