"""The dashboard's device page over HTTP (in-process): what it shows of a device in a real
rollout, its retry and rollback forms (CSRF, redirect, the 409 page saying why), and the links
that lead to it from the devices list and the rollout page."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.ui import device_routes
from tests.integration.engine import OLD, device_rows, push
from tests.integration.test_dashboard import browser, logged_in
from tests.integration.test_device_history import failed_alone

__all__ = ["browser"]


async def test_the_device_page_shows_services_presence_metrics_history_events_and_logs(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    rid, silent, _ = await failed_alone(client, container, clock, size=3)
    await logged_in(browser)

    page = await browser.get(f"/ui/devices/{silent}")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert 'data-service="1001/app" data-verdict="as targeted"' in text  # back on v2.0.0
    assert f"<code>{OLD}</code>" in text
    assert "online</span>" in text and "last seen 0 s ago" in text  # it just reported
    assert f'data-rollout="{rid}"' in text and 'data-status="rolled_back"' in text
    assert "did not run the new image within" in text  # its error
    assert 'data-action="retry"' in text and 'data-action="rollback"' in text
    assert "already sent back to its old images" in text  # why Roll back is disabled
    assert "device failed" in text and "rollback triggered" in text  # its events
    assert 'data-refresh="/ui/devices/' in text and 'data-poll-seconds="5"' in text
    listed = await browser.get("/ui/devices")
    assert (
        f'<a href="/ui/devices/{silent}"><code class="uuid" title="{silent}">{silent}</code></a>'
        in listed.text
    )


async def test_the_device_page_retries_a_device_then_says_why_it_cannot_again(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    rid, silent, _ = await failed_alone(client, container, clock, size=3)
    csrf = await logged_in(browser)
    form = f"/ui/devices/{silent}/rollouts/{rid}/retry"

    forged = await browser.post(form, data={"csrf_token": "nope"})
    assert forged.status_code == 403
    retried = await browser.post(form, data={"csrf_token": csrf})
    assert retried.status_code == 303 and retried.headers["location"] == f"/ui/devices/{silent}"
    assert (await device_rows(client, rid))[silent]["status"] == "scheduled"
    events = (await client.get("/api/v1/events", params={"device_uuid": silent})).json()
    [requested] = [e for e in events["items"] if e["event_type"] == "retry_requested"]
    assert requested["event_data"]["by"] == "admin-token"  # who logged in

    again = await browser.post(form, data={"csrf_token": csrf})
    assert again.status_code == 409
    assert 'role="alert"' in again.text
    assert "only a failed or rolled-back device can be retried" in html.unescape(again.text)
    unknown = await browser.post(
        f"/ui/devices/{silent}/rollouts/{rid}/explode", data={"csrf_token": csrf}
    )
    assert unknown.status_code == 404


async def test_the_device_page_rolls_a_device_back_and_pages_its_history(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid, silent, healthy = await failed_alone(client, container, clock, size=3)
    csrf = await logged_in(browser)
    chosen = healthy[0]
    answer = await browser.post(
        f"/ui/devices/{chosen}/rollouts/{rid}/rollback", data={"csrf_token": csrf}
    )
    assert answer.status_code == 303
    state = (await client.get(f"/api/v1/devices/{chosen}/target-state")).json()
    assert state["apps"]["1001"]["services"][0]["imageName"] == OLD

    assert (await device_rows(client, rid))[chosen]["status"] == "completed"  # until it reports

    # a second rollout: newest first, one per page here, the older one behind a link
    second = await push(client, "v2.0.2")
    monkeypatch.setattr(device_routes, "HISTORY_PAGE", 1)
    newest = await browser.get(f"/ui/devices/{chosen}")
    assert f'data-rollout="{second}"' in newest.text and f'data-rollout="{rid}"' not in newest.text
    older = re.search(r'href="(/ui/devices/[^"]+\?cursor=\d+)#history-title"', newest.text)
    assert older, "no link to the older rollouts"
    page = await browser.get(older.group(1))
    assert f'data-rollout="{rid}"' in page.text and f'data-rollout="{second}"' not in page.text
    assert "Newest rollouts" in page.text

    rollout_page = await browser.get(f"/ui/rollouts/{rid}")
    assert (
        f'<a href="/ui/devices/{silent}"><code class="uuid" title="{silent}">{silent}</code></a>'
        in rollout_page.text
    )
    missing = await browser.get("/ui/devices/nobody")
    assert missing.status_code == 404
