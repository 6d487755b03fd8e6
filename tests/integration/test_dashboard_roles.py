"""The dashboard by role, over HTTP: what a page offers follows the session's role, and the
server refuses a form the role may not send even when it carries the right CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.sessions import SESSION_COOKIE, csrf_token
from tests.conftest import USER_PASSWORD, acting
from tests.integration.engine import fleet_of, push
from tests.integration.pipeline import policy


@pytest.fixture
async def browser(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test") as http:
        yield http


async def logged_in_as(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, username: str, role: str
) -> str:
    """A session of a new user with ``role``; its CSRF token."""
    await acting(client, username, role)
    answer = await browser.post("/ui/login", data={"username": username, "password": USER_PASSWORD})
    assert answer.status_code == 303, answer.text
    return csrf_token(browser.cookies[SESSION_COOKIE])


async def status_of(client: httpx.AsyncClient, rollout_id: str) -> str:
    status: str = (await client.get(f"/api/v1/rollouts/{rollout_id}")).json()["status"]
    return status


async def test_a_viewer_sees_no_controls_and_its_forms_are_refused(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    made = await policy(client)
    await fleet_of(client, 3)
    rollout_id = await push(client)
    csrf = await logged_in_as(client, browser, "vera", "viewer")

    page = await browser.get(f"/ui/rollouts/{rollout_id}")
    assert page.status_code == 200 and "vera · viewer" in page.text
    assert "data-view-only" in page.text and "data-control=" not in page.text
    assert "/rollback" not in page.text
    policies = await browser.get("/ui/policies")
    assert (
        "/ui/policies/new" not in policies.text
        and f"/ui/policies/{made['id']}" not in policies.text
    )

    for path in (
        f"/ui/rollouts/{rollout_id}/pause",
        f"/ui/rollouts/{rollout_id}/devices/dev-00/rollback",
        f"/ui/policies/{made['id']}/enabled",
    ):
        refused = await browser.post(path, data={"csrf_token": csrf})
        assert refused.status_code == 403, (path, refused.text)
        assert "viewer role" in refused.text
    assert (await browser.get("/ui/policies/new")).status_code == 403
    assert await status_of(client, rollout_id) == "in_progress"


async def test_an_operator_steers_a_rollout_named_as_itself_but_edits_no_policy(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    made = await policy(client)
    await fleet_of(client, 3)
    rollout_id = await push(client)
    csrf = await logged_in_as(client, browser, "otto", "operator")

    page = await browser.get(f"/ui/rollouts/{rollout_id}")
    assert 'data-control="pause"' in page.text and "otto · operator" in page.text
    paused = await browser.post(f"/ui/rollouts/{rollout_id}/pause", data={"csrf_token": csrf})
    assert paused.status_code == 303
    assert await status_of(client, rollout_id) == "paused"
    events = (await client.get(f"/api/v1/rollouts/{rollout_id}/events")).json()["items"]
    assert [e["event_data"]["by"] for e in events if e["event_type"] == "rollout_paused"] == [
        "otto"
    ]

    assert (await browser.get("/ui/policies/new")).status_code == 403
    edit = await browser.post(f"/ui/policies/{made['id']}/enabled", data={"csrf_token": csrf})
    assert edit.status_code == 403
