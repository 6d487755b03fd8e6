"""A policy form with several problems shows every one beside its field after one submit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.conftest import ADMIN_TOKEN, CHROMIUM_ARGS, Server


@pytest.fixture
def page(chromium_path: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        opened = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        opened.set_default_timeout(10_000)
        yield opened
        browser.close()


def test_four_problems_are_shown_beside_their_four_fields_at_once(
    server: Server, page: Page
) -> None:
    page.goto(f"{server.base}/ui/policies/new")
    page.get_by_text("Use the admin token instead").click()
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in with the token").click()
    page.get_by_label("Image pattern").fill("iotistic/myapp:*")
    page.get_by_label("Max failure rate").fill("1.5")
    page.get_by_label("Window time zone").fill("Mars/Olympus_Mons")
    page.get_by_label("Batch percentages").fill("50, 20, 100")
    page.get_by_label("Checks (JSON)").fill('{"checks": [{"name": "web", "type": "smoke"}]}')
    page.get_by_role("button", name="Create policy").click()

    expect(page.get_by_role("alert")).to_contain_text("The policy was not saved")
    shown = {
        "max_failure_rate": "less than or equal to 1",
        "maintenance_window_timezone": "not a known time zone",
        "batch_percentages": "must increase",
        "health_check_config": "must be one of",
    }
    for field, message in shown.items():
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        expect(page.locator(f"#error-{field}")).to_contain_text(message)
    expect(page.get_by_role("alert").locator("li")).to_have_count(4)
    expect(page.get_by_label("Window time zone")).to_have_value("Mars/Olympus_Mons")
    assert server.admin.get("/api/v1/image-policies").json() == []
