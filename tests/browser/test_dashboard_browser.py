"""The dashboard in a real browser against a real server: an operator logs in, watches a staged
rollout move live while devices update, pauses and resumes it, rolls one device back, and is
told what is wrong with a policy."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, log_in, log_in_with_the_admin_token, user
from tests.browser.fleet import staged_rollout

SCREENSHOT = Path(__file__).parents[2] / "docs" / "images" / "rollout-page.png"


def counts(page: Page, batch: int, kind: str) -> object:
    return expect(page.locator(f'#rollout-live [data-batch="{batch}"] [data-count="{kind}"]'))


def device_status(page: Page, uuid: str) -> object:
    return expect(page.locator(f'#rollout-live tr[data-device="{uuid}"] [data-status]'))


def mark_page(page: Page) -> None:
    """A flag a reload would lose: its survival shows the page changed without reloading."""
    page.evaluate("window.stillTheSamePage = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.stillTheSamePage === true")


def test_an_operator_watches_a_staged_rollout_live_pauses_resumes_and_rolls_back_a_device(
    server: Server, page: Page
) -> None:
    rollout_id, fleet = staged_rollout(server, devices=10)
    log_in(page, server.base, user(server, "olga", "operator"))
    expect(page.locator("header .who")).to_have_text("olga · operator")
    row = page.locator(f'tr[data-rollout="{rollout_id}"]')
    expect(row).to_contain_text("v2.0.0")
    expect(row).to_contain_text("v2.0.1")
    expect(row.locator("[data-status]")).to_have_text("in progress")

    # The list moves by itself: batch 1's device updates, batch 2 starts.
    mark_page(page)
    expect(page.locator("[data-live-status]")).to_have_text("live")
    fleet["pump-0"].update()
    expect(row.locator('[data-batch="1"] [data-count="completed"]')).to_have_text("1 completed")
    expect(row.locator('[data-batch="2"] [data-count="updating"]')).to_have_text("4 updating")
    assert_not_reloaded(page)

    row.get_by_role("link").click()
    expect(page).to_have_url(f"{server.base}/ui/rollouts/{rollout_id}")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    expect(page.locator(".plan")).to_contain_text("1 → 4 → 5 devices (3 batches)")
    expect(page.locator("#event-feed")).to_contain_text("batch started")

    # Pause, then resume: each confirmed, each enabled only where it applies.
    pause = page.locator('button[data-control="pause"]')
    resume = page.locator('button[data-control="resume"]')
    expect(resume).to_be_disabled()
    pause.click()
    expect(page.locator("[data-rollout-status]")).to_have_text("paused")
    expect(pause).to_be_disabled()
    expect(page.locator("#event-feed")).to_contain_text("paused by olga")
    resume.click()
    expect(page.locator("[data-rollout-status]")).to_have_text("in progress")
    expect(resume).to_be_disabled()

    # Batch 2 moves while the operator watches: two devices update, one is still pulling,
    # one crashes and is rolled back to its old image by the engine.
    mark_page(page)
    fleet["pump-1"].update()
    fleet["pump-2"].update()
    fleet["pump-3"].start_pulling()
    fleet["pump-4"].ship_logs("Error: /data/config.yml: permission denied", level="error")
    fleet["pump-4"].update(fail=True)
    fleet["pump-4"].go_back()
    counts(page, 2, "completed").to_have_text("2 completed")
    counts(page, 2, "updating").to_have_text("1 updating")
    counts(page, 2, "rolled-back").to_have_text("1 rolled back")
    device_status(page, "pump-4").to_have_text("rolled back")
    # Beside its error, the crashed device's last log lines say why.
    expect(page.locator('tr[data-device="pump-4"] [data-last-lines]')).to_contain_text(
        "/data/config.yml: permission denied"
    )
    expect(page.locator("#event-feed")).to_contain_text("pump-4")
    assert_not_reloaded(page)
    if os.environ.get("FLEETWAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Roll one healthy device back by hand; it reports its old image and the row follows.
    page.locator('tr[data-device="pump-1"]').get_by_role("button", name="Roll back").click()
    expect(page.locator("#event-feed")).to_contain_text("rolled back by olga")
    mark_page(page)
    fleet["pump-1"].go_back()
    device_status(page, "pump-1").to_have_text("rolled back")
    counts(page, 2, "rolled-back").to_have_text("2 rolled back")
    expect(page.locator('tr[data-device="pump-1"]').get_by_role("button")).to_be_disabled()
    assert_not_reloaded(page)


def test_a_policy_with_an_invalid_value_shows_the_message_next_to_the_field(
    server: Server, page: Page
) -> None:
    log_in_with_the_admin_token(page, server.base)
    page.get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="New policy").click()
    page.get_by_label("Image pattern").fill("iotistic/myapp:*")
    page.get_by_label("Max failure rate").fill("1.5")
    page.get_by_role("button", name="Create policy").click()

    expect(page.get_by_role("alert")).to_contain_text("The policy was not saved")
    field = page.get_by_label("Max failure rate")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("1.5")
    expect(page.locator("#error-max_failure_rate")).to_have_text(
        "Input should be less than or equal to 1"
    )

    field.fill("0.2")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("status")).to_have_text("Policy saved.")
    expect(page.locator("table.policies")).to_contain_text("iotistic/myapp:*")
    assert server.admin.get("/api/v1/image-policies").json()[0]["max_failure_rate"] == 0.2
