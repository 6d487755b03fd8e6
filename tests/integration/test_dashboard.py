"""The dashboard over HTTP: login and sessions, CSRF, each page, the controls and the policy form
(in-process; the browser tests drive a real server)."""

from __future__ import annotations

import re

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.sessions import SESSION_COOKIE
from tests.conftest import ADMIN_TOKEN
from tests.integration.engine import OLD, fleet_of, push
from tests.integration.pipeline import policy

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def browser(container: Container) -> httpx.AsyncClient:
    """A client without the admin token, keeping cookies like a browser."""
    transport = httpx.ASGITransport(app=create_app(container))
    return httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test")


async def logged_in(browser: httpx.AsyncClient) -> str:
    """Log in; returns the page's CSRF token."""
    answer = await browser.post("/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/rollouts"})
    assert answer.status_code == 303
    page = await browser.get("/ui/rollouts")
    assert page.status_code == 200
    return csrf_of(page.text)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def test_pages_send_a_stranger_to_the_login_page_and_back_after_login(
    browser: httpx.AsyncClient,
) -> None:
    for path in ("/ui/rollouts", "/ui/policies", "/ui/devices", "/ui/rollouts/x"):
        answer = await browser.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=")
    login = await browser.get("/ui/login?next=/ui/devices")
    assert 'name="token"' in login.text and 'for="token"' in login.text
    answer = await browser.post("/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/devices"})
    assert answer.headers["location"] == "/ui/devices"


async def test_the_session_cookie_is_http_only_strict_and_never_the_token(
    browser: httpx.AsyncClient,
) -> None:
    answer = await browser.post("/ui/login", data={"token": ADMIN_TOKEN})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert ADMIN_TOKEN not in cookie
    assert "Secure" not in cookie  # plain http here; https (or the setting) makes it Secure
    page = await browser.get("/ui/rollouts")
    assert ADMIN_TOKEN not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_a_wrong_token_is_refused_and_login_never_redirects_elsewhere(
    browser: httpx.AsyncClient,
) -> None:
    wrong = await browser.post("/ui/login", data={"token": "nope"})
    assert wrong.status_code == 401
    assert "not the admin token" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    away = await browser.post("/ui/login", data={"token": ADMIN_TOKEN, "next": "//evil.example/"})
    assert away.headers["location"] == "/ui/rollouts"


async def test_logout_ends_the_session_and_needs_the_csrf_token(
    browser: httpx.AsyncClient,
) -> None:
    csrf = await logged_in(browser)
    cookie = browser.cookies[SESSION_COOKIE]
    assert (await browser.post("/ui/logout", data={})).status_code == 403
    assert (await browser.post("/ui/logout", data={"csrf_token": csrf})).status_code == 303
    browser.cookies.set(SESSION_COOKIE, cookie)  # a copy of the old cookie no longer works
    assert (await browser.get("/ui/rollouts")).status_code == 303


async def test_the_rollouts_list_shows_tags_strategy_status_and_a_bar_per_batch(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client)
    await fleet_of(client, 10)
    rollout_id = await push(client)
    await logged_in(browser)
    page = (await browser.get("/ui/rollouts")).text
    assert f'data-rollout="{rollout_id}"' in page
    assert "iotistic/myapp" in page and "v2.0.0" in page and "v2.0.1" in page
    assert "staged" in page and "in progress" in page
    assert page.count('class="batch"') == 3
    assert "batch 1: 1 updating" in page and "batch 3: 5 pending" in page
    rows = await browser.get("/ui/rollouts/rows")
    assert rows.status_code == 200 and "<html" not in rows.text
    assert f'data-rollout="{rollout_id}"' in rows.text


async def test_the_rollout_page_shows_plan_devices_events_and_only_the_valid_controls(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client)
    await fleet_of(client, 10)
    rollout_id = await push(client)
    await logged_in(browser)
    page = (await browser.get(f"/ui/rollouts/{rollout_id}")).text
    assert "Delay between batches" in page and "5 min" in page
    assert "1 → 4 → 5 devices (3 batches)" in page
    assert page.count("data-device=") == 10
    assert "rollout created" in page.replace("_", " ")
    enabled = set(re.findall(r'data-control="([a-z-]+)"\s*>', page))
    assert enabled == {"pause", "cancel", "rollback-all"}
    assert 'data-confirm="Pause this rollout?' in page
    filtered = (await browser.get(f"/ui/rollouts/{rollout_id}?batch=1")).text
    assert filtered.count("data-device=") == 1
    by_status = (await browser.get(f"/ui/rollouts/{rollout_id}?status=pending")).text
    assert by_status.count("data-device=") == 9
    live = await browser.get(f"/ui/rollouts/{rollout_id}/live?batch=2")
    assert live.status_code == 200 and live.text.count("data-device=") == 4


async def test_controls_need_the_csrf_token_and_apply_like_the_api(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client)
    await fleet_of(client, 3)
    rollout_id = await push(client)
    csrf = await logged_in(browser)
    forged = await browser.post(f"/ui/rollouts/{rollout_id}/pause", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert (await client.get(f"/api/v1/rollouts/{rollout_id}")).json()["status"] == "in_progress"

    paused = await browser.post(f"/ui/rollouts/{rollout_id}/pause", data={"csrf_token": csrf})
    assert paused.status_code == 303
    detail = (await client.get(f"/api/v1/rollouts/{rollout_id}")).json()
    assert detail["status"] == "paused"
    again = await browser.post(f"/ui/rollouts/{rollout_id}/pause", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "cannot pause a rollout that is paused" in again.text
    resumed = await browser.post(f"/ui/rollouts/{rollout_id}/resume", data={"csrf_token": csrf})
    assert resumed.status_code == 303
    events = (await client.get(f"/api/v1/rollouts/{rollout_id}/events")).json()["items"]
    assert {"rollout_paused", "rollout_resumed"} <= {e["event_type"] for e in events}
    assert all(e["event_data"]["by"] == "admin-token" for e in events[-2:])


async def test_one_device_can_be_rolled_back_from_its_row(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto")
    devices = await fleet_of(client, 2)
    rollout_id = await push(client)
    csrf = await logged_in(browser)
    await devices["dev-00"].apply_target()
    rolled = await browser.post(
        f"/ui/rollouts/{rollout_id}/devices/dev-00/rollback", data={"csrf_token": csrf}
    )
    assert rolled.status_code == 303
    assert await devices["dev-00"].target_image() == OLD
    events = (await client.get(f"/api/v1/rollouts/{rollout_id}/events")).json()["items"]
    triggered = [e for e in events if e["event_type"] == "rollback_triggered"]
    assert {e["device_uuid"] for e in triggered} == {"dev-00"}
    assert any(e["event_data"].get("by") == "admin-token" for e in triggered)
    twice = await browser.post(
        f"/ui/rollouts/{rollout_id}/devices/dev-00/rollback", data={"csrf_token": csrf}
    )
    assert twice.status_code == 409 and "already sent back" in twice.text


async def test_a_policy_form_with_a_bad_value_shows_the_apis_message_beside_the_field(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    csrf = await logged_in(browser)
    form = (await browser.get("/ui/policies/new")).text
    assert 'for="image_pattern"' in form and 'for="max_failure_rate"' in form
    # The configured defaults are shown, so saving the form as it comes keeps them.
    assert re.search(r'id="auto_rollback" name="auto_rollback" value="true" checked', form)
    assert re.search(r'id="batch_delay_minutes" [^>]*value="30"', form)
    bad = {"csrf_token": csrf, "image_pattern": "iotistic/myapp:*", "max_failure_rate": "1.5"}
    answer = await browser.post("/ui/policies", data=bad)
    assert answer.status_code == 422
    same = {"image_pattern": "iotistic/myapp:*", "max_failure_rate": 1.5}
    api = await client.post("/api/v1/image-policies", json=same)
    message = api.json()["detail"][0]["message"]
    assert message in answer.text
    assert 'id="error-max_failure_rate"' in answer.text
    assert 'value="1.5"' in answer.text  # what was typed is kept

    window = bad | {"max_failure_rate": "0.2", "update_strategy": "scheduled"}
    answer = await browser.post("/ui/policies", data=window)
    assert answer.status_code == 422
    assert "a scheduled policy needs a maintenance window" in answer.text


async def test_a_checks_field_nested_too_deeply_is_shown_beside_the_field_and_nothing_is_saved(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    csrf = await logged_in(browser)
    deep = {
        "csrf_token": csrf,
        "image_pattern": "iotistic/myapp:*",
        "health_check_config": "[" * 50_000,
    }
    answer = await browser.post("/ui/policies", data=deep)
    assert answer.status_code == 422
    assert "is nested too deeply to be read as JSON" in answer.text
    assert (await client.get("/api/v1/image-policies")).json() == []


async def test_policies_are_created_edited_disabled_and_enabled_from_the_dashboard(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    csrf = await logged_in(browser)
    good = {
        "csrf_token": csrf,
        "image_pattern": "acme/*:*",
        "update_strategy": "staged",
        "batch_percentages": "5, 25, 100",
        "staged_batches": "3",
        "device_tags": "site:lyon, ring:canary",
        "health_check_enabled": "true",
        "health_check_config": '{"checks": [{"type": "tcp", "host": "localhost", "port": 80}]}',
        "enabled": "true",
    }
    created = await browser.post("/ui/policies", data=good)
    assert created.status_code == 303, created.text
    [stored] = (await client.get("/api/v1/image-policies")).json()
    assert stored["batch_percentages"] == [5, 25, 100]
    assert stored["device_tags"] == {"site": "lyon", "ring": "canary"}
    assert stored["health_check_config"]["checks"][0]["port"] == 80
    policy_id = stored["id"]

    edit = (await browser.get(f"/ui/policies/{policy_id}")).text
    assert 'value="5, 25, 100"' in edit
    # (PostgreSQL's JSONB keeps keys in its own order)
    assert re.search(
        r'id="device_tags" [^>]*value="(site:lyon, ring:canary|ring:canary, site:lyon)"', edit
    )
    changed = good | {"description": "edited", "priority": "7"}
    assert (await browser.post(f"/ui/policies/{policy_id}", data=changed)).status_code == 303
    assert (await client.get(f"/api/v1/image-policies/{policy_id}")).json()["priority"] == 7

    toggle = {"csrf_token": csrf, "enabled": "false"}
    await browser.post(f"/ui/policies/{policy_id}/enabled", data=toggle)
    after = (await client.get(f"/api/v1/image-policies/{policy_id}")).json()
    assert after["enabled"] is False and after["description"] == "edited"
    listing = (await browser.get("/ui/policies")).text
    assert "disabled" in listing and "acme/*:*" in listing
    await browser.post(f"/ui/policies/{policy_id}/enabled", data=toggle | {"enabled": "true"})
    assert (await client.get(f"/api/v1/image-policies/{policy_id}")).json()["enabled"] is True


async def test_the_devices_page_shows_fleet_tags_presence_and_what_runs(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await fleet_of(client, 2)
    await client.patch("/api/v1/devices/dev-01", json={"fleet_id": "north", "tags": {"site": "x"}})
    await logged_in(browser)
    page = (await browser.get("/ui/devices")).text
    assert page.count("data-device=") == 2
    assert "site:x" in page and "north" in page and "online" in page
    assert "1001/app" in page and OLD in page and "(running)" in page
    north = (await browser.get("/ui/devices?fleet_id=north")).text
    assert north.count("data-device=") == 1


async def test_static_files_are_served_from_the_package_and_nothing_else(
    browser: httpx.AsyncClient,
) -> None:
    css = await browser.get("/ui/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await browser.get("/ui/static/dashboard.js")).status_code == 200
    assert (await browser.get("/ui/static/..%2Froutes.py")).status_code == 404


def row_of(page: str, uuid: str) -> str:
    start = page.index(f'data-device="{uuid}"')
    return page[start : page.index("</tr>", start)]


async def test_a_failed_devices_last_log_lines_are_beside_its_error_and_any_device_has_a_panel(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto", max_retries=0)
    devices = await fleet_of(client, 2)
    rollout_id = await push(client)
    await logged_in(browser)
    crash = [{"message": f"line {i}", "serviceName": "app"} for i in range(8)]
    crash.append({"message": "\x1b[31mError: <config> missing\x1b[0m", "level": "error"})
    for uuid, lines in (("dev-00", crash), ("dev-01", [{"message": "healthy chatter"}])):
        shipped = await client.post(
            f"/api/v1/device/{uuid}/logs", json=lines, headers=devices[uuid].headers
        )
        assert shipped.status_code == 200, shipped.text
    await devices["dev-00"].apply_target("exited")
    await devices["dev-01"].apply_target()

    page = (await browser.get(f"/ui/rollouts/{rollout_id}")).text
    failed = row_of(page, "dev-00")
    assert "data-last-lines" in failed and "exit" in failed.lower()
    assert "Error: &lt;config&gt; missing" in failed and "\x1b" not in failed
    assert "line 4" in failed and "line 3" not in failed  # its last 5 lines
    assert "data-last-lines" not in row_of(page, "dev-01")
    assert "Choose <em>logs</em>" in page

    panel = (await browser.get(f"/ui/rollouts/{rollout_id}?logs=dev-01")).text
    assert "Logs of <code>dev-01</code>" in panel and "healthy chatter" in panel
    assert 'data-refresh="/ui/devices/dev-01/logs" data-poll-seconds="5"' in panel
    part = await browser.get("/ui/devices/dev-01/logs")
    assert part.status_code == 200 and "<html" not in part.text
    assert "healthy chatter" in part.text
    assert (await browser.get("/ui/devices/nobody/logs")).status_code == 404
    quiet = (await browser.get(f"/ui/rollouts/{rollout_id}?logs=nobody")).text
    assert "No log lines from this device yet." in quiet


async def test_metric_checks_and_prometheus_analysis_have_their_own_inputs_in_the_policy_form(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    csrf = await logged_in(browser)
    form = {
        "csrf_token": csrf,
        "image_pattern": "acme/*:*",
        "health_check_enabled": "true",
        "health_check_config": '[{"type": "tcp", "host": "localhost", "port": 80}]',
        "metric_checks": '[{"type": "metric", "name": "cpu", "metric": "cpu_usage", "max": 80}]',
        "analysis_checks": (
            '[{"type": "prometheus", "name": "errors", "url": "http://prom:9090",'
            ' "query": "err{rollout=\\"{{rollout_id}}\\"}", "max": 0.05}]'
        ),
    }
    assert (await browser.post("/ui/policies", data=form)).status_code == 303
    [stored] = (await client.get("/api/v1/image-policies")).json()
    assert [c["type"] for c in stored["health_check_config"]] == ["tcp", "metric", "prometheus"]
    page = (await browser.get(f"/ui/policies/{stored['id']}")).text
    assert "Metric bounds (JSON)" in page and "Prometheus analysis (JSON)" in page
    metric = re.search(r'<textarea id="metric_checks"[^>]*>([^<]*)</textarea>', page)
    assert metric is not None and "cpu_usage" in metric.group(1)
    checks = re.search(r'<textarea id="health_check_config"[^>]*>([^<]*)</textarea>', page)
    assert checks is not None and "metric" not in checks.group(1)

    for bad, words in (
        ('[{"type": "metric", "metric": "cpu", "max": 1}]', "metrics.&lt;key&gt;"),
        ('[{"type": "metric", "metric": "cpu_usage", "min": 9, "max": 1}]', "above max"),
        ('[{"type": "metric", "metric": "cpu_usage"}]', "needs a bound"),
    ):
        answer = await browser.post("/ui/policies", data=form | {"metric_checks": bad})
        assert answer.status_code == 422 and words in answer.text, answer.text[-2000:]
    url = form | {"analysis_checks": '[{"type": "prometheus", "url": "ftp://p", "query": "up"}]'}
    answer = await browser.post("/ui/policies", data=url | {"metric_checks": ""})
    assert answer.status_code == 422 and "must be an http:// or https:// URL" in answer.text
    assert len((await client.get("/api/v1/image-policies")).json()) == 1


async def test_a_policys_device_cap_and_continuous_setting_are_kept_by_the_policy_form(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    csrf = await logged_in(browser)
    blank = (await browser.get("/ui/policies/new")).text
    assert re.search(r'id="continuous" name="continuous" value="true" checked', blank)
    form = {
        "csrf_token": csrf,
        "image_pattern": "acme/*:*",
        "max_concurrent_devices": "5",
        "continuous": "true",
    }
    assert (await browser.post("/ui/policies", data=form)).status_code == 303
    [stored] = (await client.get("/api/v1/image-policies")).json()
    assert (stored["max_concurrent_devices"], stored["continuous"]) == (5, True)
    page = (await browser.get(f"/ui/policies/{stored['id']}")).text
    assert re.search(r'id="max_concurrent_devices" [^>]*value="5"', page)
    assert re.search(r'id="continuous" name="continuous" value="true" checked', page)
    refused = await browser.post("/ui/policies", data=form | {"max_concurrent_devices": "0"})
    assert refused.status_code == 422 and 'id="error-max_concurrent_devices"' in refused.text
