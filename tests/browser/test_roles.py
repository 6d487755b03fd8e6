"""The dashboard by role, in a real browser: a viewer logs in with a username and password and
watches (no rollout actions, no per-device Roll back, no New or Edit policy); an operator
pauses a running rollout; an admin edits policies. The header names the user and its role."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, log_in, user
from tests.browser.fleet import staged_rollout


def open_rollout(page: Page, server: Server, rollout_id: str) -> None:
    page.locator(f'tr[data-rollout="{rollout_id}"]').get_by_role("link").click()
    expect(page).to_have_url(f"{server.base}/ui/rollouts/{rollout_id}")
    expect(page.locator("[data-rollout-status]")).to_have_text("in progress")


def test_a_viewer_watches_but_finds_no_action_roll_back_new_or_edit(
    server: Server, page: Page
) -> None:
    rollout_id, _ = staged_rollout(server, devices=3)
    log_in(page, server.base, user(server, "vera", "viewer"))
    expect(page.locator("header .who")).to_have_text("vera · viewer")

    open_rollout(page, server, rollout_id)
    expect(page.locator('tr[data-device="pump-0"]')).to_be_visible()
    expect(page.locator("[data-view-only]")).to_contain_text("You have the viewer role")
    expect(page.locator("button[data-control]")).to_have_count(0)
    expect(page.get_by_role("button", name="Roll back")).to_have_count(0)

    page.get_by_role("link", name="Policies").click()
    expect(page.locator("table.policies")).to_contain_text("iotistic/myapp:*")
    expect(page.get_by_role("link", name="New policy")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    assert page.goto(f"{server.base}/ui/policies/new").status == 403  # type: ignore[union-attr]


def test_an_operator_pauses_a_running_rollout_but_does_not_edit_policies(
    server: Server, page: Page
) -> None:
    rollout_id, _ = staged_rollout(server, devices=3)
    log_in(page, server.base, user(server, "otto", "operator"))
    expect(page.locator("header .who")).to_have_text("otto · operator")

    open_rollout(page, server, rollout_id)
    row = page.locator('tr[data-device="pump-0"]')
    expect(row.get_by_role("button", name="Roll back")).to_be_visible()
    page.locator('button[data-control="pause"]').click()
    expect(page.locator("[data-rollout-status]")).to_have_text("paused")
    expect(page.locator("#event-feed")).to_contain_text("paused by otto")
    assert server.admin.get(f"/api/v1/rollouts/{rollout_id}").json()["status"] == "paused"

    page.get_by_role("link", name="Policies").click()
    expect(page.locator("table.policies")).to_contain_text("iotistic/myapp:*")
    expect(page.get_by_role("link", name="New policy")).to_have_count(0)


def test_an_admin_sees_new_and_edit_policy(server: Server, page: Page) -> None:
    staged_rollout(server, devices=1)
    log_in(page, server.base, user(server, "ada", "admin"))
    expect(page.locator("header .who")).to_have_text("ada · admin")
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("link", name="New policy")).to_be_visible()
    expect(page.get_by_role("link", name="Edit policy")).to_have_count(1)
