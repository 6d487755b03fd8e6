"""Lists that scale, in a real browser against a real server: a rollout of 230 devices searched
and paged past 200 while it updates live, the devices page's filters and pages, the full event
log, the 404 page, and provisioning keys created (the secret shown once) and revoked.

The 230 devices are registered through the admin API (their target runs the old image), not
played as agents: the lists are what is under test, not the device protocol."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.conftest import log_in_with_the_admin_token as log_in
from tests.browser.fleet import NEW, OLD, apps
from tests.browser.test_dashboard_browser import assert_not_reloaded, mark_page

FLEET = 230


def register_fleet(admin: httpx.Client, count: int) -> None:
    """``pump-000`` … named ``pump 0`` …; even ones at site lyon in fleet north, odd ones at
    nice in fleet south."""
    for i in range(count):
        answer = admin.post(
            "/api/v1/devices",
            json={
                "uuid": f"pump-{i:03}",
                "device_name": f"pump {i}",
                "fleet_id": "north" if i % 2 == 0 else "south",
                "tags": {"site": "lyon" if i % 2 == 0 else "nice"},
                "apps": apps(OLD),
            },
        )
        assert answer.status_code == 201, answer.text


def rows(page: Page) -> object:
    return expect(page.locator("#rollout-live tbody tr[data-device]"))


def test_a_rollout_of_230_devices_is_searched_and_paged_past_200_while_it_updates_live(
    server: Server, page: Page
) -> None:
    policy = server.admin.post(
        "/api/v1/image-policies",
        json={"image_pattern": "iotistic/myapp:*", "update_strategy": "manual"},
    )
    assert policy.status_code == 201, policy.text
    register_fleet(server.admin, FLEET)
    answer = server.admin.post("/api/v1/images/trigger-update", json={"image": NEW})
    rollout_id = answer.json()["rollout_id"]
    log_in(page, server.base)

    # The short id the list shows opens the page; the table shows 200, then the other 30.
    page.goto(f"{server.base}/ui/rollouts/{rollout_id[:8]}")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    rows(page).to_have_count(200)
    expect(page.locator("#devices-title")).to_contain_text(f"({FLEET})")
    page.locator('#rollout-live [data-page="next"]').click()
    rows(page).to_have_count(FLEET - 200)
    expect(page.locator('#rollout-live tr[data-device="pump-229"]')).to_be_visible()
    expect(page.locator('#rollout-live [data-page="next"]')).to_have_count(0)
    page.locator('#rollout-live [data-page="first"]').click()
    rows(page).to_have_count(200)

    # Search by name, then by a piece of the uuid; the table keeps following events.
    page.get_by_label("Search").fill("pump 17")
    page.get_by_role("button", name="Filter").click()
    rows(page).to_have_count(11)  # pump 17 and pump 170 … 179
    page.get_by_label("Search").fill("MP-21")
    page.get_by_role("button", name="Filter").click()
    rows(page).to_have_count(10)
    expect(page.locator("[data-rollout-status]")).to_have_text("awaiting approval")
    mark_page(page)
    approved = server.admin.post(f"/api/v1/rollouts/{rollout_id[:8]}/approve")
    assert approved.status_code == 200, approved.text
    expect(page.locator("[data-rollout-status]")).not_to_have_text("awaiting approval")
    rows(page).to_have_count(10)  # the live refresh kept the search
    assert_not_reloaded(page)
    expect(page.get_by_label("Search")).to_have_value("MP-21")

    # Uuids stay on one line, the full one in a title.
    cell = page.locator('#rollout-live tr[data-device="pump-210"] code.uuid')
    expect(cell).to_have_attribute("title", "pump-210")
    box = cell.bounding_box()
    assert box is not None and box["height"] < 30

    # The event feed's full log: the rollout's events, newest first, filtered by type.
    page.get_by_role("link", name="full log").click()
    expect(page).to_have_url(f"{server.base}/ui/events?rollout_id={rollout_id}")
    expect(page.locator("table.events tbody")).to_contain_text("approved")
    ids = [int(i) for i in page.locator("tr[data-event-id]").evaluate_all(
        "rows => rows.map(row => row.dataset.eventId)")]  # fmt: skip
    assert ids == sorted(ids, reverse=True)
    page.get_by_label("Type").select_option("rollout_created")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-event-id]")).to_have_count(1)


def test_the_devices_page_filters_by_search_tag_fleet_and_image_and_pages_past_200(
    server: Server, page: Page
) -> None:
    register_fleet(server.admin, FLEET)
    other = server.admin.post(
        "/api/v1/devices",
        json={"uuid": "gauge-1", "device_name": "gauge", "apps": apps("acme/gauge:3")},
    )
    assert other.status_code == 201, other.text
    log_in(page, server.base)
    page.get_by_role("link", name="Devices").click()
    expect(page.locator("[data-device-total]")).to_have_text(f"({FLEET + 1})")
    expect(page.locator("tbody tr[data-device]")).to_have_count(200)
    page.locator('[data-page="next"]').click()
    expect(page.locator("tbody tr[data-device]")).to_have_count(FLEET + 1 - 200)

    page.get_by_label("Image").fill("acme/gauge")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr[data-device]")).to_have_count(1)
    expect(page.locator('tr[data-device="gauge-1"]')).to_be_visible()

    page.get_by_label("Image").fill("iotistic/myapp:v2.0.0")
    page.get_by_label("Tag").fill("site:nice")
    page.get_by_label("Search").fill("pump 1")
    page.get_by_role("button", name="Filter").click()
    # odd pumps whose name holds "pump 1": 1, 11, 13 … 19, 101 … 199
    expect(page.locator("[data-device-total]")).to_have_text("(56)")
    page.get_by_label("Fleet").fill("north")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody")).to_contain_text("No devices match.")

    page.get_by_label("Tag").fill("site")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("alert")).to_contain_text("must be written key:value")


def test_a_missing_rollout_is_a_page_and_keys_are_created_once_shown_and_revoked(
    server: Server, page: Page
) -> None:
    log_in(page, server.base)
    page.goto(f"{server.base}/ui/rollouts/ffffffff")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("rollout ffffffff not found")
    page.get_by_role("link", name="All rollouts").click()
    expect(page.get_by_role("heading", name="Rollouts")).to_be_visible()

    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("heading", name="Provisioning keys")).to_be_visible()
    page.get_by_label("Fleet").fill("north")
    page.get_by_label("Description").fill("line 3 gateways")
    page.get_by_label("Max uses").fill("5")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("[data-secret]").inner_text()
    assert secret.startswith("fwp_")
    row = page.locator("tr[data-key]").filter(has_text="line 3 gateways")
    expect(row.locator("[data-state]")).to_have_text("active")
    expect(row).to_contain_text("0 / 5")

    # The secret is never shown again; the device registers with it until it is revoked.
    page.reload()
    expect(page.locator("[data-secret]")).to_have_count(0)
    assert secret not in page.content()
    row.get_by_role("button", name="Revoke").click()  # confirmed by the dialog handler
    expect(row.locator("[data-state]")).to_have_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_be_disabled()
    refused = server.admin.post(
        "/api/v1/device/register",
        headers={"Authorization": f"Bearer {secret}"},
        json={"uuid": "late-1", "deviceName": "late", "deviceType": "pi"},
    )
    assert refused.status_code in (401, 403), refused.text
