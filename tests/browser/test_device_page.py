"""The device page in a real browser against a real server, for devices of a real staged
rollout: an operator follows a device from the devices list and from the rollout page, reads
its services (target against running), presence, metrics, rollout history, events and logs,
sees why an action is refused, and rolls a healthy device back from its page."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.conftest import log_in_with_the_admin_token as log_in
from tests.browser.fleet import OLD, Device, staged_rollout

SCREENSHOT = Path(__file__).parents[2] / "docs" / "images" / "device-page.png"


def report_metrics(device: Device, image: str) -> None:
    """A report as the iotistic agent sends it, metrics included."""
    body = {
        device.uuid: {
            "apps": {
                "1001": {
                    "appId": 1001,
                    "services": [{"serviceName": "app", "imageName": image, "status": "running"}],
                }
            },
            "is_online": True,
            "os_version": "Debian GNU/Linux 12 (bookworm)",
            "supervisor_version": "1.4.0",
            "cpu_usage": 23.5,
            "memory_usage": 612,
            "memory_total": 3792,
            "storage_usage": 5210,
            "storage_total": 29803,
            "temperature": 51.2,
            "uptime": 273_840,
            "local_ip": "10.12.0.14",
        }
    }
    answer = device.http.patch("/api/v1/device/state", json=body)
    assert answer.status_code == 200, answer.text


def history_row(page: Page, rollout_id: str) -> object:
    return page.locator(f'table.device-rollouts tr[data-rollout="{rollout_id}"]')


def test_an_operator_reads_a_crashed_devices_page_and_rolls_a_healthy_one_back(
    server: Server, page: Page
) -> None:
    rollout_id, fleet = staged_rollout(server, devices=10)
    fleet["pump-0"].update()
    fleet["pump-1"].update()
    fleet["pump-4"].ship_logs("Error: /data/config.yml: permission denied", level="error")
    fleet["pump-4"].update(fail=True)
    fleet["pump-4"].go_back()
    report_metrics(fleet["pump-4"], OLD)
    log_in(page, server.base)

    # From the devices list to the crashed device's page.
    page.get_by_role("link", name="Devices").click()
    page.locator('tr[data-device="pump-4"]').get_by_role("link", name="pump-4").click()
    expect(page).to_have_url(f"{server.base}/ui/devices/pump-4")
    expect(page.get_by_role("heading", name="pump pump-4")).to_be_visible()
    expect(page.locator("[data-presence]")).to_contain_text("online")
    expect(page.locator("[data-presence]")).to_contain_text("last seen")
    service = page.locator('tr[data-service="1001/app"]')
    expect(service).to_have_attribute("data-verdict", "as targeted")
    expect(service).to_contain_text(OLD)
    expect(page.locator("[data-tags]")).to_have_text("site:lyon")
    expect(page.locator("[data-metrics]")).to_contain_text("612 MB of 3.7 GB (16%)")
    expect(page.locator("[data-metrics]")).to_contain_text("3 d 4 h")

    row = history_row(page, rollout_id)
    expect(row.locator("[data-status]")).to_have_text("rolled back")
    expect(row).to_contain_text("v2.0.0 → v2.0.1")
    expect(row).to_contain_text("1001/app is exited")
    retry = row.locator('button[data-action="retry"]')
    expect(retry).to_be_disabled()
    expect(retry).to_have_attribute("title", "its rollout allows no retries (max_retries 0)")
    expect(row.locator('button[data-action="rollback"]')).to_be_disabled()
    expect(page.locator("#device-events")).to_contain_text("device failed")
    expect(page.locator("#device-events")).to_contain_text("rollback triggered")
    expect(page.locator("#device-logs")).to_contain_text("/data/config.yml: permission denied")
    if os.environ.get("FLEETWAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # From the rollout page to a healthy device, rolled back from its own page.
    row.get_by_role("link", name=rollout_id[:8]).click()
    expect(page).to_have_url(f"{server.base}/ui/rollouts/{rollout_id}")
    page.locator('#rollout-live tr[data-device="pump-1"]').get_by_role(
        "link", name="pump-1", exact=True
    ).click()
    expect(page).to_have_url(f"{server.base}/ui/devices/pump-1")
    row = history_row(page, rollout_id)
    expect(row.locator("[data-status]")).to_have_text("completed")
    row.locator('button[data-action="rollback"]').click()  # confirmed by the page fixture
    expect(page).to_have_url(f"{server.base}/ui/devices/pump-1")
    expect(page.locator("#device-events")).to_contain_text("rolled back by admin-token")
    expect(page.locator('tr[data-service="1001/app"]')).to_have_attribute(
        "data-verdict", "different image"
    )  # told to go back, still running the new image
    fleet["pump-1"].go_back()
    page.reload()
    expect(history_row(page, rollout_id).locator("[data-status]")).to_have_text("rolled back")
    expect(page.locator('tr[data-service="1001/app"]')).to_have_attribute(
        "data-verdict", "as targeted"
    )
    expect(history_row(page, rollout_id).locator('button[data-action="rollback"]')).to_be_disabled()
