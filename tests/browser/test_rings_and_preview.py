"""Rings and the preview of a push in the dashboard, in a real browser: the rings page counts
each ring's devices; the policy page previews a push ring by ring, starting nothing."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, log_in_with_the_admin_token
from tests.integration.factories import target_apps


def test_the_rings_page_counts_devices_and_the_policy_page_previews_a_ringed_push(
    server: Server, page: Page
) -> None:
    apps = target_apps("acme/app:v1")
    for uuid, tags in (("pump-0", {"ring": "canary"}), ("pump-1", {}), ("pump-2", {})):
        made = server.admin.post(
            "/api/v1/devices", json={"uuid": uuid, "device_name": uuid, "tags": tags, "apps": apps}
        )
        assert made.status_code == 201, made.text
    for ring in ({"name": "canary", "device_tags": {"ring": "canary"}}, {"name": "everyone"}):
        assert server.admin.post("/api/v1/rings", json=ring).status_code == 201
    policy = server.admin.post(
        "/api/v1/image-policies",
        json={"image_pattern": "acme/app:*", "rings": ["canary", "everyone"]},
    ).json()
    log_in_with_the_admin_token(page, server.base)

    page.get_by_role("link", name="Rings").click()
    expect(page.locator('tr[data-ring="canary"] [data-count]')).to_have_text("1")
    expect(page.locator('tr[data-ring="everyone"] [data-count]')).to_have_text("3")

    page.goto(f"{server.base}/ui/policies/{policy['id']}")
    expect(page.locator("[data-coverage]")).to_contain_text("Covers 3 devices")
    page.get_by_label("Preview a push of").fill("acme/app:v2")
    page.get_by_role("button", name="Preview").click()

    expect(page.locator("[data-outcome]")).to_contain_text("out to 3 devices in 2 batches")
    expect(page.locator('tr[data-batch="1"]')).to_contain_text("canary")
    expect(page.locator('tr[data-batch="1"]')).to_contain_text("pump-0")
    expect(page.locator('tr[data-batch="2"]')).to_contain_text("everyone")
    assert server.admin.get("/api/v1/rollouts").json()["total"] == 0
