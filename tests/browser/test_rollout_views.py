"""The rollout views that tell the truth, in a real browser against a real server: a rollout
that completed with rolled-back devices says so on its page and in the list, shows every old
image its devices came from and its failure-rate chart (inline SVG with the bound); the
rollouts list filters by status, image and date and pages while keeping its filters.

With ``FLEETWAVE_SCREENSHOT=1`` the first test writes docs/images/rollout-page-chart.png and
docs/images/rollouts-list.png.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import ADMIN_TOKEN, Server
from tests.browser.fleet import NEW, OLD, Device, apps

IMAGES = Path(__file__).parents[2] / "docs" / "images"
OLDER = "iotistic/myapp:v1.9.0"


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/rollouts")
    page.get_by_text("Use the admin token instead").click()
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in with the token").click()
    expect(page.get_by_role("heading", name="Rollouts")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("FLEETWAVE_SCREENSHOT") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / name), full_page=True)


def two_batch_policy(server: Server) -> None:
    """Batches of 20 % and the rest, no delay, no health checks, no retry, a 50 % bound."""
    answer = server.admin.post(
        "/api/v1/image-policies",
        json={
            "image_pattern": "iotistic/myapp:*",
            "update_strategy": "staged",
            "staged_batches": 2,
            "batch_percentages": [20, 100],
            "batch_delay_minutes": 0,
            "health_check_enabled": False,
            "max_retries": 0,
            "max_failure_rate": 0.5,
        },
    )
    assert answer.status_code == 201, answer.text


def trigger(server: Server, image: str) -> str:
    answer = server.admin.post("/api/v1/images/trigger-update", json={"image": image})
    assert answer.status_code == 200, answer.text
    rollout_id: str = answer.json()["rollout_id"]
    return rollout_id


def batch_of(server: Server, rollout_id: str, batch: int) -> list[str]:
    answer = server.admin.get(
        f"/api/v1/rollouts/{rollout_id}/devices", params={"batch": batch, "limit": 1000}
    )
    assert answer.status_code == 200, answer.text
    return [row["device_uuid"] for row in answer.json()["items"]]


def test_a_rollout_completed_with_failures_says_so_with_its_old_images_and_its_chart(
    server: Server, page: Page
) -> None:
    two_batch_policy(server)
    # seven devices on v2.0.0, three still on v1.9.0
    fleet = {
        f"pump-{i}": Device(server.base, server.admin, f"pump-{i}", old=OLDER if i >= 7 else OLD)
        for i in range(10)
    }
    rollout_id = trigger(server, NEW)
    log_in(page, server.base)
    page.goto(f"{server.base}/ui/rollouts/{rollout_id}")
    status = page.locator("[data-rollout-status]")
    expect(status).to_have_text("in progress")

    for uuid in batch_of(server, rollout_id, 1):  # the canaries take it
        fleet[uuid].update()
    expect(page.locator('#rollout-live [data-batch="2"] [data-count="updating"]')).to_be_visible()
    second = batch_of(server, rollout_id, 2)
    crashing = {second[0], second[-1]}  # two of the eight crash on it and are sent back
    for uuid in second:
        fleet[uuid].update(fail=uuid in crashing)
    for uuid in sorted(crashing):
        fleet[uuid].go_back()
    expect(status).to_have_text("completed")

    page.reload()  # the chart is drawn when the page is
    live = page.locator("#rollout-live")
    expect(live.locator("[data-outcome]")).to_have_text(
        "completed with 2 failures, all rolled back"
    )
    expect(live.locator('[data-figure="failed"]')).to_have_text("2")
    expect(live.locator('[data-figure="rolled-back"]')).to_have_text("2")
    expect(live.locator('[data-figure="failure-rate"]')).to_contain_text("20%")
    expect(live.locator('[data-figure="failure-rate"]')).to_contain_text("max 50%")
    old_images = page.locator(".page-head [data-old-images]")
    expect(old_images).to_contain_text("v2.0.0 (7)")
    expect(old_images).to_contain_text("v1.9.0 (3)")
    expect(page.locator("main")).to_contain_text("manual trigger")
    expect(live.locator('tr[data-device="pump-0"] [data-online]')).to_contain_text("online")

    chart = page.locator('#failure-chart svg[data-chart="failure-rate"]')
    expect(chart).to_be_visible()
    expect(chart.locator("line.bound")).to_have_attribute("data-bound", "0.5")
    expect(chart.locator("text.bound-label")).to_have_text("bound 50%")
    expect(chart.locator('path[data-series="rate"]')).to_have_count(1)
    expect(chart.locator('path[data-series="finished"]')).to_have_count(1)
    expect(chart.locator("title")).to_contain_text("2 of 10 finished devices failed")
    screenshot(page, "rollout-page-chart.png")

    # A newer tag starts another rollout: the list shows both, each with its figures.
    newer = trigger(server, "iotistic/myapp:v2.0.2")
    page.goto(f"{server.base}/ui/rollouts")
    done = page.locator(f'tr[data-rollout="{rollout_id}"]')
    expect(done.locator("[data-outcome]")).to_have_text(
        "completed with 2 failures, all rolled back"
    )
    expect(done.locator("[data-old-images]")).to_contain_text("v1.9.0 (3)")
    expect(done.locator("[data-progress]")).to_have_text("100%")
    expect(done.locator("[data-failure-rate]")).to_contain_text("20% / max 50%")
    running = page.locator(f'tr[data-rollout="{newer}"]')
    expect(running.locator("[data-waiting]")).to_contain_text("batch 1 has 2 devices not finished")
    expect(running.locator("[data-progress]")).to_have_text("0%")
    screenshot(page, "rollouts-list.png")


def test_the_rollouts_list_filters_by_status_image_and_date_and_pages_keeping_them(
    server: Server, page: Page
) -> None:
    Device(server.base, server.admin, "pump-0")
    other = "iotistic/other:v1.0.0"
    created = server.admin.post(
        "/api/v1/devices",
        json={"uuid": "sensor-0", "device_name": "sensor", "apps": apps(other)},
    )
    assert created.status_code == 201, created.text
    for n in range(1, 29):  # 28 rollouts of myapp, each superseding the one before
        trigger(server, f"iotistic/myapp:v2.0.{n}")
    other_rollout = trigger(server, "iotistic/other:v1.1.0")
    log_in(page, server.base)
    rows = page.locator("#rollout-rows tr[data-rollout]")
    expect(page.locator("[data-total]")).to_have_text("(29)")
    expect(rows).to_have_count(25)
    expect(page.locator(".pager")).to_contain_text("page 1 of 2")

    page.locator('[data-page-link="next"]').click()
    expect(page).to_have_url(f"{server.base}/ui/rollouts?page=2")
    expect(rows).to_have_count(4)

    # Cancelled (superseded) ones only: 27 of them, on two pages; page 2 keeps the filter.
    page.get_by_label("Status").select_option("cancelled")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/ui/rollouts\?status=cancelled&"))  # the form's query
    expect(page.locator("[data-total]")).to_have_text("(27 matching)")
    page.locator('[data-page-link="2"]').click()
    expect(page).to_have_url(f"{server.base}/ui/rollouts?status=cancelled&page=2")
    expect(rows).to_have_count(2)
    expect(page.get_by_label("Status")).to_have_value("cancelled")

    page.goto(f"{server.base}/ui/rollouts")
    page.get_by_label("Image").fill("iotistic/other")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(page.locator(f'tr[data-rollout="{other_rollout}"]')).to_be_visible()
    expect(page.locator(".pager")).to_have_count(0)

    today = datetime.now(UTC).date()
    page.goto(f"{server.base}/ui/rollouts")
    page.get_by_label("until").fill((today - timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(0)
    expect(page.locator("#rollout-rows")).to_contain_text("No rollout matches the filters.")
    page.get_by_label("until").fill("")
    page.get_by_label("Created from").fill(today.isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("[data-total]")).to_have_text("(29 matching)")
