"""Dashboard sessions held in the database: a session opened on one replica works on another,
and logging out or disabling the user ends it on both at once (run on PostgreSQL with two apps
and their own pools, and on SQLite). Failed logins are limited per username and per source
address (429 with a message and Retry-After) until the window has passed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.sessions import SESSION_COOKIE, csrf_token
from fleetwave.settings import Settings
from tests.conftest import USER_PASSWORD, acting
from tests.integration.replicas import Replica

PER_USER, PER_ADDRESS, WINDOW = 3, 5, 60
Browser = Callable[..., httpx.AsyncClient]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "login_failures_per_user": PER_USER,
            "login_failures_per_address": PER_ADDRESS,
            "login_failure_window": WINDOW,
        }
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A browser of a replica's dashboard, from a source address: no token, only cookies."""
    made: list[httpx.AsyncClient] = []

    def open_on(container: Container, address: str = "192.0.2.10") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_app(container), client=(address, 50000))
        made.append(httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test"))
        return made[-1]

    yield open_on
    for client in made:
        await client.aclose()


async def log_in(
    browser: httpx.AsyncClient, username: str, password: str = USER_PASSWORD
) -> httpx.Response:
    return await browser.post("/ui/login", data={"username": username, "password": password})


async def session_of(browser: httpx.AsyncClient, username: str) -> str:
    answer = await log_in(browser, username)
    assert answer.status_code == 303, answer.text
    cookie: str = answer.cookies[SESSION_COOKIE]
    return cookie


async def works(browser: httpx.AsyncClient, cookie: str) -> bool:
    """Whether ``cookie`` opens the dashboard and reads the API on this replica."""
    browser.cookies.set(SESSION_COOKIE, cookie)
    page = await browser.get("/ui/rollouts")
    me = await browser.get("/api/v1/me")
    assert (page.status_code == 200) == (me.status_code == 200), (page, me)
    return me.status_code == 200


# --- across replicas ------------------------------------------------------------------------


async def test_a_session_opened_on_one_replica_works_on_another_until_logged_out(
    here: Replica, replica: Replica, browser: Browser
) -> None:
    await acting(here.client, "alice", "operator")
    on_a, on_b = browser(here.container), browser(replica.container)
    cookie = await session_of(on_a, "alice")
    assert await works(on_b, cookie)
    assert (await on_b.get("/api/v1/me")).json() == {
        "name": "alice",
        "role": "operator",
        "user": True,
    }

    out = await on_a.post("/ui/logout", data={"csrf_token": csrf_token(cookie)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert not await works(on_b, cookie)
    assert not await works(on_a, cookie)


async def test_disabling_a_user_on_one_replica_ends_its_sessions_on_another(
    here: Replica, replica: Replica, browser: Browser
) -> None:
    await acting(here.client, "alice", "viewer")
    cookie = await session_of(browser(replica.container), "alice")
    on_b = browser(replica.container)
    assert await works(on_b, cookie)

    disabled = await here.client.patch("/api/v1/users/alice", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    assert not await works(on_b, cookie)
    assert (await log_in(on_b, "alice")).status_code == 401


async def test_a_role_changed_on_one_replica_holds_for_sessions_on_another(
    here: Replica, replica: Replica, browser: Browser
) -> None:
    await acting(here.client, "alice", "operator")
    on_b = browser(replica.container)
    await session_of(on_b, "alice")
    await here.client.patch("/api/v1/users/alice", json={"role": "viewer"})
    assert (await on_b.get("/api/v1/me")).json()["role"] == "viewer"
    page = await on_b.get("/ui/rollouts")
    assert page.status_code == 200 and "viewer" in page.text


# --- failed logins --------------------------------------------------------------------------


async def test_after_too_many_wrong_passwords_a_user_waits_out_the_window(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, browser: Browser
) -> None:
    await acting(client, "alice", "operator")
    on_a = browser(container)
    for _ in range(PER_USER):
        wrong = await log_in(on_a, "alice", "not the password at all")
        assert wrong.status_code == 401 and "wrong username or password" in wrong.text

    limited = await log_in(on_a, "alice")  # even the right password, until the window passes
    assert limited.status_code == 429, limited.text
    assert "too many failed logins" in limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= WINDOW + 1
    elsewhere = await log_in(browser(container, "198.51.100.20"), "alice")
    assert elsewhere.status_code == 429  # the username is limited from every address

    clock.advance(timedelta(seconds=WINDOW + 1))
    assert (await log_in(on_a, "alice")).status_code == 303


async def test_after_too_many_failures_from_one_address_it_waits_whoever_it_names(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, browser: Browser
) -> None:
    await acting(client, "alice", "operator")
    attacker = browser(container, "203.0.113.9")
    for i in range(PER_ADDRESS):
        assert (await log_in(attacker, f"guess-{i}", "wrong wrong wrong")).status_code == 401

    limited = await log_in(attacker, "alice")
    assert limited.status_code == 429 and "retry-after" in limited.headers
    assert (await log_in(browser(container, "192.0.2.55"), "alice")).status_code == 303

    clock.advance(timedelta(seconds=WINDOW + 1))
    assert (await log_in(attacker, "alice")).status_code == 303
