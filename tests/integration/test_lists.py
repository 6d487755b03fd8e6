"""Lists that scale and short ids, over HTTP on SQLite and PostgreSQL: a rollout named by a
unique prefix of its id (404, 409 listing the matches, 422 when too short), searching and
paging a rollout's devices and the device registry, reading the event log backwards, and the
dashboard pages built on them (the 404 page, the events, deliveries and key pages)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.store.tables import image_rollouts
from tests.integration.engine import OLD, fleet_of, push, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import policy
from tests.integration.test_dashboard import browser, logged_in

__all__ = ["browser"]  # the dashboard tests' fixture: a cookie-keeping client

TWINS = ("abcdef12-0000-4000-8000-000000000001", "abcdef12-0000-4000-8000-000000000002")


async def seed_rollouts(container: Container, *rollout_ids: str) -> None:
    """Rollouts with the given ids and no devices (their ids are what these tests are about)."""
    async with container.db.transaction() as conn:
        await conn.execute(
            insert(image_rollouts),
            [
                {
                    "rollout_id": rid,
                    "image_name": "iotistic/myapp",
                    "new_tag": "v9",
                    "old_tag": "v8",
                    "strategy": "staged",
                    "total_devices": 0,
                    "batch_sizes": [],
                    "status": "completed",
                }
                for rid in rollout_ids
            ],
        )


# --- short ids ------------------------------------------------------------------------------


async def test_a_unique_prefix_of_eight_characters_names_the_rollout_everywhere(
    client: httpx.AsyncClient,
) -> None:
    await policy(client)
    await fleet_of(client, 3)
    rid = await push(client)
    short = rid[:8]
    detail = await client.get(f"/api/v1/rollouts/{short}")
    assert detail.status_code == 200 and detail.json()["rollout_id"] == rid
    devices = await client.get(f"/api/v1/rollouts/{rid[:13]}/devices")
    assert devices.status_code == 200 and devices.json()["total"] == 3
    events = await client.get(f"/api/v1/rollouts/{short}/events")
    assert events.status_code == 200 and events.json()["items"][0]["rollout_id"] == rid
    log = await client.get("/api/v1/events", params={"rollout_id": short})
    assert log.status_code == 200 and {e["rollout_id"] for e in log.json()["items"]} == {rid}
    paused = await client.post(f"/api/v1/rollouts/{short}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"


async def test_an_ambiguous_prefix_is_a_409_listing_the_rollouts_it_begins(
    client: httpx.AsyncClient, container: Container
) -> None:
    await seed_rollouts(container, *TWINS, "abcdef13-0000-4000-8000-000000000003")
    answer = await client.get("/api/v1/rollouts/abcdef12")
    assert answer.status_code == 409
    assert answer.json()["detail"] == {"matches": list(TWINS)}
    assert "ambiguous" in answer.json()["error"] and TWINS[0] in answer.json()["error"]
    control = await client.post("/api/v1/rollouts/abcdef12-0000/pause")
    assert control.status_code == 409
    one = await client.get("/api/v1/rollouts/abcdef12-0000-4000-8000-000000000002")
    assert one.status_code == 200 and one.json()["rollout_id"] == TWINS[1]
    longer = await client.get("/api/v1/rollouts/abcdef13-0")
    assert longer.status_code == 200


@pytest.mark.parametrize(
    ("given", "status", "words"),
    [
        ("abcdef1", 422, "at least 8 characters"),
        ("ffffffff", 404, "not found"),
        ("abcdef12_000", 404, "not found"),  # _ and % are characters, not wildcards
        ("abcdef12%", 404, "not found"),
    ],
)
async def test_a_prefix_too_short_or_naming_nothing_gets_a_clear_4xx(
    client: httpx.AsyncClient, container: Container, given: str, status: int, words: str
) -> None:
    await seed_rollouts(container, *TWINS)
    answer = await client.get(f"/api/v1/rollouts/{given}")
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


async def test_a_full_id_shorter_than_eight_characters_still_names_its_rollout(
    client: httpx.AsyncClient, container: Container
) -> None:
    await seed_rollouts(container, "r1", "r10")
    answer = await client.get("/api/v1/rollouts/r1")
    assert answer.status_code == 200 and answer.json()["rollout_id"] == "r1"


async def test_a_device_is_named_by_a_unique_prefix_of_its_uuid_in_the_admin_api(
    client: httpx.AsyncClient,
) -> None:
    for uuid in ("boiler-north-1", "boiler-north-2", "boiler-south-1"):
        await register_device(client, uuid=uuid, apps=target_apps(OLD))
    one = await client.get("/api/v1/devices/boiler-s")
    assert one.status_code == 200 and one.json()["uuid"] == "boiler-south-1"
    target = await client.get("/api/v1/devices/boiler-south/target-state")
    assert target.status_code == 200
    ambiguous = await client.get("/api/v1/devices/boiler-north")
    assert ambiguous.status_code == 409
    assert ambiguous.json()["detail"] == {"matches": ["boiler-north-1", "boiler-north-2"]}
    assert (await client.get("/api/v1/devices/boiler")).status_code == 422
    assert (await client.get("/api/v1/devices/nothing-here")).status_code == 404
    renamed = await client.patch("/api/v1/devices/boiler-north-2", json={"device_name": "b2"})
    assert renamed.status_code == 200 and renamed.json()["uuid"] == "boiler-north-2"


# --- a rollout's devices: search and pages ------------------------------------------------


async def named_fleet(client: httpx.AsyncClient, names: dict[str, str]) -> None:
    for uuid, name in names.items():
        await register_device(client, uuid=uuid, device_name=name, apps=target_apps(OLD))


async def test_a_rollouts_devices_are_searched_by_uuid_or_name_and_paged_in_uuid_order(
    client: httpx.AsyncClient,
) -> None:
    await policy(client)
    await named_fleet(
        client,
        {f"dev-{i:02}": f"{'Pump' if i % 3 == 0 else 'valve'} {i}" for i in range(12)},
    )
    answer = await client.post("/api/v1/images/trigger-update", json={"image": OLD[:-1] + "1"})
    rid = answer.json()["rollout_id"]
    by_name = (await client.get(f"/api/v1/rollouts/{rid}/devices", params={"q": "pump"})).json()
    assert [d["device_uuid"] for d in by_name["items"]] == ["dev-00", "dev-03", "dev-06", "dev-09"]
    assert by_name["total"] == 4
    by_uuid = (await client.get(f"/api/v1/rollouts/{rid}/devices", params={"q": "V-1"})).json()
    assert [d["device_uuid"] for d in by_uuid["items"]] == ["dev-10", "dev-11"]
    wildcard = (await client.get(f"/api/v1/rollouts/{rid}/devices", params={"q": "%"})).json()
    assert wildcard["total"] == 0
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"/api/v1/rollouts/{rid}/devices", params=params)).json()
        seen += [d["device_uuid"] for d in page["items"]]
        assert page["total"] == 12
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"dev-{i:02}" for i in range(12)]


# --- the device registry: filters and pages -------------------------------------------------


async def test_devices_are_filtered_by_text_image_tag_and_fleet_and_paged(
    client: httpx.AsyncClient,
) -> None:
    for i in range(6):
        image = "iotistic/myapp:v2.0.0" if i < 4 else "ghcr.io/acme/sensor:1.2"
        await register_device(
            client,
            uuid=f"unit-{i}",
            device_name=f"Boiler {i}" if i % 2 else f"fan {i}",
            fleet_id="north" if i < 3 else "south",
            tags={"site": "lyon" if i < 2 else "nice"},
            apps=target_apps(image),
        )

    async def uuids(**params: Any) -> list[str]:
        answer = await client.get("/api/v1/devices", params=params)
        assert answer.status_code == 200, answer.text
        return [d["uuid"] for d in answer.json()["items"]]

    assert await uuids(q="boiler") == ["unit-1", "unit-3", "unit-5"]
    assert await uuids(q="NIT-4") == ["unit-4"]
    assert await uuids(image="iotistic/myapp") == ["unit-0", "unit-1", "unit-2", "unit-3"]
    assert await uuids(image="docker.io/iotistic/myapp:v2.0.0", fleet_id="south") == ["unit-3"]
    assert await uuids(image="iotistic/myapp:v9") == []
    assert await uuids(image="ghcr.io/acme/sensor", tag="site:nice") == ["unit-4", "unit-5"]
    first = (await client.get("/api/v1/devices", params={"limit": 4, "q": "unit"})).json()
    assert first["total"] == 6 and first["next_cursor"] == "unit-3"
    rest = await uuids(limit=4, q="unit", cursor=first["next_cursor"])
    assert rest == ["unit-4", "unit-5"]
    bad = await client.get("/api/v1/devices", params={"image": "not an image"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "image"


# --- the event log, read backwards ----------------------------------------------------------


async def test_the_event_log_is_read_backwards_from_the_newest_a_page_at_a_time(
    client: httpx.AsyncClient,
) -> None:
    await policy(client)
    await fleet_of(client, 3)
    rid = await push(client)
    everything = (await client.get("/api/v1/events", params={"limit": 1000})).json()["items"]
    ids = [e["id"] for e in everything]
    assert len(ids) >= 3
    newest = (await client.get("/api/v1/events", params={"before": ids[-1] + 1, "limit": 2})).json()
    assert [e["id"] for e in newest["items"]] == ids[-2:]
    assert newest["older_cursor"] == ids[-2]
    back, cursor = list(ids[-2:]), newest["older_cursor"]
    while cursor is not None:
        page = (await client.get("/api/v1/events", params={"before": cursor, "limit": 2})).json()
        back = [e["id"] for e in page["items"]] + back
        cursor = page["older_cursor"]
    assert back == ids
    by_type = await client.get(
        "/api/v1/events", params={"rollout_id": rid[:8], "event_type": "rollout_created"}
    )
    assert [e["event_type"] for e in by_type.json()["items"]] == ["rollout_created"]


# --- the dashboard --------------------------------------------------------------------------


async def test_a_missing_or_ambiguous_rollout_or_device_is_an_html_page_under_ui(
    client: httpx.AsyncClient, container: Container, browser: httpx.AsyncClient
) -> None:
    await seed_rollouts(container, *TWINS)
    await logged_in(browser)
    for path in ("/ui/rollouts/ffffffff-nothing", "/ui/rollouts/abc", "/ui/no-such-page"):
        missing = await browser.get(path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"].startswith("text/html")
        assert "data-missing" in missing.text and 'href="/ui/rollouts"' in missing.text
    ambiguous = await browser.get("/ui/rollouts/abcdef12")
    assert ambiguous.status_code == 409 and f'href="/ui/rollouts/{TWINS[1]}"' in ambiguous.text
    full = await browser.get(f"/ui/rollouts/{TWINS[0]}")
    assert full.status_code == 200 and TWINS[0] in full.text
    api = await client.get("/api/v1/rollouts/ffffffff-nothing")
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"


async def test_the_rollout_page_searches_its_devices_and_pages_them_keeping_the_live_url(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client)
    await named_fleet(client, {f"dev-{i:02}": f"pump {i}" for i in range(5)})
    answer = await client.post("/api/v1/images/trigger-update", json={"image": OLD[:-1] + "1"})
    rid = answer.json()["rollout_id"]
    await logged_in(browser)
    page = (await browser.get(f"/ui/rollouts/{rid[:8]}?q=pump+3")).text
    assert page.count("data-device=") == 1 and 'data-device="dev-03"' in page
    assert f'data-refresh="/ui/rollouts/{rid}/live?q=pump+3"' in page
    live = (await browser.get(f"/ui/rollouts/{rid}/live?q=DEV-0&cursor=dev-02")).text
    assert re.findall(r'data-device="([^"]+)"', live) == ["dev-03", "dev-04"]
    assert 'data-page="first"' in live


async def test_retry_failed_is_disabled_with_the_reason_when_no_device_has_retries_left(
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    browser: httpx.AsyncClient,
) -> None:
    await policy(client, staged_batches=1, max_retries=0, health_check_enabled=False)
    devices = await fleet_of(client, 2)
    rid = await push(client)
    bad, good = sorted(devices)
    await devices[bad].apply_target("exited")
    await devices[bad].report(OLD)
    await devices[good].apply_target()
    await tick(container)
    await logged_in(browser)
    page = (await browser.get(f"/ui/rollouts/{rid}")).text
    button = re.search(r'data-control="retry-failed"[^>]*>', page)
    assert button and "disabled" in button.group(0)
    assert 'title="no failed device of this rollout has retries left"' in button.group(0)


async def test_the_devices_page_filters_by_text_fleet_tag_and_image_and_pages(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    for i in range(3):
        await register_device(
            client, uuid=f"unit-{i}", device_name=f"boiler {i}", fleet_id="north",
            tags={"site": "lyon" if i else "nice"}, apps=target_apps(OLD),
        )  # fmt: skip
    await logged_in(browser)
    page = (await browser.get("/ui/devices?q=BOILER&tag=site:lyon&image=iotistic/myapp")).text
    assert re.findall(r'data-device="([^"]+)"', page) == ["unit-1", "unit-2"]
    assert 'value="site:lyon"' in page
    bad = await browser.get("/ui/devices?tag=nokey")
    assert bad.status_code == 422 and "must be written key:value" in bad.text


async def test_the_events_page_reads_the_log_newest_first_and_filters_by_rollout(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client)
    await fleet_of(client, 2)
    rid = await push(client)
    await logged_in(browser)
    page = (await browser.get(f"/ui/events?rollout_id={rid[:8]}")).text
    ids = [int(i) for i in re.findall(r'data-event-id="(\d+)"', page)]
    assert ids and ids == sorted(ids, reverse=True)
    assert f'value="{rid}"' in page
    too_short = await browser.get(f"/ui/events?rollout_id={rid[:5]}")
    assert too_short.status_code == 422 and "at least 8 characters" in too_short.text
    unknown = await browser.get("/ui/events?rollout_id=nothing")
    assert unknown.status_code == 404 and "rollout nothing not found" in unknown.text


async def test_provisioning_keys_are_created_shown_once_and_revoked_from_the_dashboard(
    browser: httpx.AsyncClient,
) -> None:
    csrf = await logged_in(browser)
    refused = await browser.post("/ui/provisioning-keys", data={"fleet_id": "north"})
    assert refused.status_code == 403  # no CSRF token
    invalid = await browser.post(
        "/ui/provisioning-keys", data={"csrf_token": csrf, "fleet_id": "north", "max_uses": "0"}
    )
    assert invalid.status_code == 422 and "max_uses" in invalid.text
    created = await browser.post(
        "/ui/provisioning-keys",
        data={"csrf_token": csrf, "fleet_id": "north", "description": "line 3"},
    )
    assert created.status_code == 303 and created.headers["location"] == "/ui/provisioning-keys"
    assert "HttpOnly" in created.headers["set-cookie"]
    shown = (await browser.get("/ui/provisioning-keys")).text
    secret = re.search(r"data-secret>(fwp_[^<]+)<", shown)
    assert secret
    listing = (await browser.get("/ui/provisioning-keys")).text  # the cookie is gone
    assert secret.group(1) not in listing and "line 3" in listing
    assert "data-secret" not in listing
    key_id = re.search(r'data-key="(\d+)"', listing)
    assert key_id
    revoked = await browser.post(
        f"/ui/provisioning-keys/{key_id.group(1)}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    after = (await browser.get("/ui/provisioning-keys")).text
    assert ">revoked<" in after
    missing = await browser.post("/ui/provisioning-keys/999/revoke", data={"csrf_token": csrf})
    assert missing.status_code == 404 and "data-missing" in missing.text


async def test_the_webhook_deliveries_page_lists_pushes_and_what_they_made(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await policy(client)
    await fleet_of(client, 2)
    rid = await push(client)
    await logged_in(browser)
    page = (await browser.get("/ui/webhook-deliveries")).text
    assert "rollout created" in page and f'href="/ui/rollouts/{rid}"' in page
    none = (await browser.get("/ui/webhook-deliveries?outcome=rejected")).text
    assert "No deliveries match" in none
