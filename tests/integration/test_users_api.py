"""Users, their roles and personal API tokens over HTTP, on SQLite and PostgreSQL: creating and
changing users (never answering a password or a hash), the last enabled admin kept, tokens
shown once and refused at once when revoked, expired or their user disabled, a token's role
never above its user's, users managing their own tokens, and the audit log of who changed what.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from fleetwave.clock import ManualClock
from fleetwave.sessions import SESSION_COOKIE
from tests.conftest import USER_PASSWORD, acting
from tests.integration.engine import fleet_of, rollout
from tests.integration.pipeline import policy

PASSWORD = "a long and varied passphrase"
SECRETS = ("password", "password_hash", "token", "token_hash", "key", "key_hash")


async def new_user(
    client: httpx.AsyncClient, username: str, role: str = "viewer", password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/v1/users", json={"username": username, "password": password, "role": role}
    )


async def made_user(client: httpx.AsyncClient, username: str, role: str = "viewer") -> Any:
    answer = await new_user(client, username, role)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def new_token(
    client: httpx.AsyncClient, username: str, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    body = {"name": "ci"} | fields
    return await client.post(f"/api/v1/users/{username}/tokens", json=body, headers=headers)


async def made_token(client: httpx.AsyncClient, username: str, **fields: Any) -> Any:
    answer = await new_token(client, username, **fields)
    assert answer.status_code == 201, answer.text
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers=bearer(token))


def no_secrets(answer: Any, *secret_values: str) -> None:
    """No secret field, and none of ``secret_values``, anywhere in ``answer``."""
    text = json.dumps(answer)
    for name in SECRETS:
        assert f'"{name}"' not in text, (name, text)
    for value in secret_values:
        assert value not in text
    assert "$argon2" not in text


# --- users ----------------------------------------------------------------------------------


async def test_a_user_is_created_listed_and_read_without_its_password_or_hash(
    client: httpx.AsyncClient,
) -> None:
    created = await new_user(client, "alice", "operator")
    assert created.status_code == 201, created.text
    user = created.json()
    assert (user["username"], user["role"], user["disabled"]) == ("alice", "operator", False)
    listed = (await client.get("/api/v1/users")).json()
    read = (await client.get("/api/v1/users/alice")).json()
    assert [u["username"] for u in listed] == ["alice"] and read == user
    for answer in (user, listed, read):
        no_secrets(answer, PASSWORD)


async def test_a_duplicate_username_is_refused_with_409(client: httpx.AsyncClient) -> None:
    await made_user(client, "alice")
    again = await new_user(client, "alice", "admin")
    assert again.status_code == 409 and "alice" in again.json()["error"]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-pw", "at least 12"),
        ("aaaaaaaaaaaaaaaaaaaa", "repetitive"),
        ("abababababababababab", "repetitive"),
        ("x" + "long passphrase " * 16, "at most 256"),
    ],
)
async def test_weak_and_over_long_passwords_are_refused_naming_the_password(
    client: httpx.AsyncClient, password: str, problem: str
) -> None:
    answer = await new_user(client, "alice", password=password)
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["detail"]] == ["password"]
    assert problem in answer.json()["error"] and password not in answer.text
    assert (await client.get("/api/v1/users")).json() == []


async def test_a_password_of_exactly_256_characters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    answer = await new_user(client, "alice", password=("passphrase " * 24)[:256])
    assert answer.status_code == 201, answer.text


async def test_an_unknown_role_and_a_bad_username_are_refused_with_422(
    client: httpx.AsyncClient,
) -> None:
    answer = await new_user(client, "alice", "superuser")
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "role"
    answer = await new_user(client, "bad name/with slash")
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "username"


async def test_a_users_role_password_and_disabled_flag_are_changed_and_it_is_deleted(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice")
    promoted = await client.patch("/api/v1/users/alice", json={"role": "operator"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "operator"
    disabled = await client.patch("/api/v1/users/alice", json={"disabled": True})
    assert disabled.json()["disabled"] is True
    new_password = "another varied passphrase"
    changed = await client.patch("/api/v1/users/alice", json={"password": new_password})
    assert changed.status_code == 200, changed.text
    no_secrets(changed.json(), new_password)
    weak = await client.patch("/api/v1/users/alice", json={"password": "weak"})
    assert weak.status_code == 422 and weak.json()["detail"][0]["field"] == "password"

    assert (await client.delete("/api/v1/users/alice")).status_code == 204
    assert (await client.get("/api/v1/users/alice")).status_code == 404
    assert (await client.delete("/api/v1/users/alice")).status_code == 404


async def test_the_last_enabled_admin_is_never_deleted_demoted_or_disabled(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "root", "admin")
    for change in (
        client.delete("/api/v1/users/root"),
        client.patch("/api/v1/users/root", json={"role": "operator"}),
        client.patch("/api/v1/users/root", json={"disabled": True}),
    ):
        answer = await change
        assert answer.status_code == 409, answer.text
        assert "last enabled admin" in answer.json()["error"]
    assert (await client.get("/api/v1/users/root")).json()["role"] == "admin"


async def test_an_admin_may_go_when_another_enabled_admin_remains(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "root", "admin")
    await made_user(client, "spare", "admin")
    demoted = await client.patch("/api/v1/users/root", json={"role": "viewer"})
    assert demoted.status_code == 200, demoted.text
    assert (await client.patch("/api/v1/users/spare", json={"disabled": True})).status_code == 409
    assert (await client.patch("/api/v1/users/root", json={"role": "admin"})).status_code == 200
    assert (await client.patch("/api/v1/users/spare", json={"disabled": True})).status_code == 200
    assert (await client.delete("/api/v1/users/root")).status_code == 409
    assert (await client.patch("/api/v1/users/spare", json={"disabled": False})).status_code == 200
    assert (await client.delete("/api/v1/users/root")).status_code == 204


# --- personal API tokens --------------------------------------------------------------------


async def test_a_token_is_shown_once_and_listed_only_by_its_prefix(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice", "operator")
    created = await made_token(client, "alice")
    token = created["token"]
    assert token.startswith("fwt_") and created["role"] == "operator"
    assert token.startswith(created["token_prefix"]) and len(created["token_prefix"]) < len(token)
    listed = (await client.get("/api/v1/users/alice/tokens")).json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert listed[0]["last_used_at"] is None
    no_secrets(listed, token)

    answer = await me(client, token)
    assert answer.json() == {"name": "alice", "role": "operator", "user": True}
    used = (await client.get("/api/v1/users/alice/tokens")).json()[0]
    assert used["last_used_at"] is not None


async def test_two_tokens_of_one_user_cannot_share_a_name(client: httpx.AsyncClient) -> None:
    await made_user(client, "alice")
    await made_token(client, "alice")
    assert (await new_token(client, "alice")).status_code == 409


async def test_a_revoked_token_is_refused_at_once(client: httpx.AsyncClient) -> None:
    await made_user(client, "alice")
    created = await made_token(client, "alice")
    assert (await me(client, created["token"])).status_code == 200
    revoked = await client.delete(f"/api/v1/users/alice/tokens/{created['id']}")
    assert revoked.status_code == 204
    assert (await me(client, created["token"])).status_code == 401
    assert (await client.get("/api/v1/users/alice/tokens")).json() == []


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, clock: ManualClock) -> None:
    await made_user(client, "alice")
    expires = clock.now() + timedelta(hours=1)
    created = await made_token(client, "alice", expires_at=expires.isoformat())
    assert (await me(client, created["token"])).status_code == 200
    clock.advance(timedelta(hours=1))
    answer = await me(client, created["token"])
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    past = await new_token(client, "alice", name="late", expires_at=expires.isoformat())
    assert past.status_code == 422 and past.json()["detail"][0]["field"] == "expires_at"


@pytest.mark.parametrize(
    "token", ["fwt_not-a-real-token", "", "x" * 600, "fwt_" + "é" * 20, "Bearer Bearer"]
)
async def test_malformed_tokens_are_refused_with_401(client: httpx.AsyncClient, token: str) -> None:
    header = f"Bearer {token}".encode("latin-1")  # as sent: bytes, not always ASCII
    answer = await client.get("/api/v1/me", headers={"Authorization": header})
    assert answer.status_code == 401, answer.text


async def test_a_disabled_users_tokens_and_dashboard_sessions_stop_at_once(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice", "operator")
    token = (await made_token(client, "alice"))["token"]
    login = await client.post(
        "/ui/login", data={"username": "alice", "password": PASSWORD}, headers={"Authorization": ""}
    )
    assert login.status_code == 303, login.text
    cookie = {"Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}", "Authorization": ""}
    client.cookies.clear()
    assert (await client.get("/api/v1/me", headers=cookie)).status_code == 200

    await client.patch("/api/v1/users/alice", json={"disabled": True})
    assert (await me(client, token)).status_code == 401
    assert (await client.get("/api/v1/me", headers=cookie)).status_code == 401
    page = await client.get("/ui/rollouts", headers=cookie)
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")

    await client.patch("/api/v1/users/alice", json={"disabled": False})
    assert (await me(client, token)).status_code == 200  # the token was kept; the session ended
    assert (await client.get("/api/v1/me", headers=cookie)).status_code == 401


async def test_a_token_asked_with_a_lower_role_acts_with_that_role(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice", "admin")
    token = (await made_token(client, "alice", role="viewer"))["token"]
    assert (await me(client, token)).json()["role"] == "viewer"
    assert (await client.get("/api/v1/image-policies", headers=bearer(token))).status_code == 200
    refused = await client.post("/api/v1/image-policies", json={}, headers=bearer(token))
    assert refused.status_code == 403 and "viewer" in refused.json()["error"]
    control = await client.post("/api/v1/rollouts/any/pause", headers=bearer(token))
    assert control.status_code == 403


async def test_a_token_cannot_have_a_higher_role_than_its_user(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice", "viewer")
    answer = await new_token(client, "alice", role="operator")
    assert answer.status_code == 403 and "viewer" in answer.json()["error"]
    assert (await client.get("/api/v1/users/alice/tokens")).json() == []


async def test_a_limited_token_cannot_make_its_user_a_stronger_token(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice", "admin")
    limited = bearer((await made_token(client, "alice", role="viewer"))["token"])
    stronger = await new_token(client, "alice", headers=limited, name="escape", role="admin")
    assert stronger.status_code == 403 and "acts as viewer" in stronger.json()["error"]
    default = await new_token(client, "alice", headers=limited, name="another")
    assert default.status_code == 201 and default.json()["role"] == "viewer"


async def test_a_user_demoted_after_making_a_token_acts_with_the_lower_role(
    client: httpx.AsyncClient,
) -> None:
    await made_user(client, "alice", "operator")
    token = (await made_token(client, "alice"))["token"]
    await client.patch("/api/v1/users/alice", json={"role": "viewer"})
    assert (await me(client, token)).json()["role"] == "viewer"
    control = await client.post("/api/v1/rollouts/any/pause", headers=bearer(token))
    assert control.status_code == 403


async def test_a_viewer_manages_its_own_tokens_and_no_one_elses(
    client: httpx.AsyncClient,
) -> None:
    viewer = await acting(client, "vera", "viewer")
    await made_user(client, "otto", "operator")
    others = await made_token(client, "otto")

    mine = await new_token(client, "vera", headers=viewer, name="laptop")
    assert mine.status_code == 201, mine.text
    listed = await client.get("/api/v1/users/vera/tokens", headers=viewer)
    assert "laptop" in [t["name"] for t in listed.json()]
    revoked = await client.delete(f"/api/v1/users/vera/tokens/{mine.json()['id']}", headers=viewer)
    assert revoked.status_code == 204
    assert (await me(client, mine.json()["token"])).status_code == 401

    for refused in (
        await client.get("/api/v1/users/otto/tokens", headers=viewer),
        await new_token(client, "otto", headers=viewer, name="stolen"),
        await client.delete(f"/api/v1/users/otto/tokens/{others['id']}", headers=viewer),
        await client.get("/api/v1/users", headers=viewer),
        await client.patch("/api/v1/users/vera", json={"role": "admin"}, headers=viewer),
    ):
        assert refused.status_code == 403, refused.text
    assert (await me(client, others["token"])).status_code == 200


async def test_another_users_token_id_under_ones_own_name_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    viewer = await acting(client, "vera", "viewer")
    await made_user(client, "otto", "operator")
    others = await made_token(client, "otto")
    answer = await client.delete(f"/api/v1/users/vera/tokens/{others['id']}", headers=viewer)
    assert answer.status_code == 404
    assert (await me(client, others["token"])).status_code == 200


# --- the audit log and actors ---------------------------------------------------------------


async def audit(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_the_audit_log_names_who_changed_what_with_before_and_after_and_no_secret(
    client: httpx.AsyncClient,
) -> None:
    admin = await acting(client, "ada", "admin")
    created = await client.post(
        "/api/v1/image-policies", json={"image_pattern": "acme/app:*"}, headers=admin
    )
    policy_id = created.json()["id"]
    await client.put(
        f"/api/v1/image-policies/{policy_id}",
        json={"image_pattern": "acme/app:*", "staged_batches": 4},
        headers=admin,
    )
    await client.delete(f"/api/v1/image-policies/{policy_id}", headers=admin)
    key = await client.post("/api/v1/provisioning-keys", json={"fleet_id": "lyon"}, headers=admin)
    await client.delete(f"/api/v1/provisioning-keys/{key.json()['id']}", headers=admin)
    await made_user(client, "bob")
    await client.patch("/api/v1/users/bob", json={"password": "a new varied passphrase"})
    token = await made_token(client, "bob")
    await client.delete(f"/api/v1/users/bob/tokens/{token['id']}")
    await client.delete("/api/v1/users/bob")

    entries = list(reversed(await audit(client, limit=500)))
    seen = [(e["actor"], e["action"], e["object_type"]) for e in entries]
    assert seen == [
        ("admin-token", "created", "user"),  # ada, by acting()
        ("admin-token", "created", "api_token"),
        ("ada", "created", "policy"),
        ("ada", "updated", "policy"),
        ("ada", "deleted", "policy"),
        ("ada", "created", "provisioning_key"),
        ("ada", "revoked", "provisioning_key"),
        ("admin-token", "created", "user"),
        ("admin-token", "updated", "user"),
        ("admin-token", "created", "api_token"),
        ("admin-token", "revoked", "api_token"),
        ("admin-token", "deleted", "user"),
    ]
    updated = next(e for e in entries if (e["action"], e["object_type"]) == ("updated", "policy"))
    assert updated["before"]["staged_batches"] != 4 and updated["after"]["staged_batches"] == 4
    assert updated["object_id"] == str(policy_id)
    changed = next(e for e in entries if (e["action"], e["object_type"]) == ("updated", "user"))
    assert changed["after"]["password_changed"] is True
    deleted = entries[-1]
    assert deleted["before"]["username"] == "bob" and deleted["after"] is None
    no_secrets(entries, PASSWORD, USER_PASSWORD, token["token"], key.json()["key"])


async def test_the_audit_log_is_paged_and_filtered_and_only_for_admins(
    client: httpx.AsyncClient,
) -> None:
    for name in ("u1", "u2", "u3"):
        await made_user(client, name)
    first = (await client.get("/api/v1/audit", params={"limit": 2})).json()
    assert [e["after"]["username"] for e in first["items"]] == ["u3", "u2"]
    rest = await client.get("/api/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [e["after"]["username"] for e in rest.json()["items"]] == ["u1"]
    assert rest.json()["next_cursor"] is None
    assert await audit(client, object_type="policy") == []
    assert len(await audit(client, actor="admin-token")) == 3
    operator = await acting(client, "otto", "operator")
    assert (await client.get("/api/v1/audit", headers=operator)).status_code == 403


async def test_a_request_cannot_name_its_actor(client: httpx.AsyncClient) -> None:
    await policy(client, update_strategy="manual")
    await fleet_of(client, 1)
    triggered = await client.post(
        "/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2.0.1"}
    )
    rid = triggered.json()["rollout_id"]
    for path in (
        f"/api/v1/rollouts/{rid}/pause",
        f"/api/v1/rollouts/{rid}/devices/dev-00/rollback",
    ):
        answer = await client.post(path, json={"by": "someone else"})
        assert answer.status_code == 422, answer.text
        assert "the actor is who the request authenticated as" in answer.json()["error"]


async def test_controls_and_triggers_record_the_tokens_user_as_who_acted(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="manual")
    await fleet_of(client, 3)
    operator = await acting(client, "otto", "operator")
    triggered = await client.post(
        "/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2.0.1"}, headers=operator
    )
    assert triggered.status_code == 200, triggered.text
    rollout_id = triggered.json()["rollout_id"]
    approved = await client.post(f"/api/v1/rollouts/{rollout_id}/approve", headers=operator)
    assert approved.status_code == 200, approved.text
    paused = await client.post(
        f"/api/v1/rollouts/{rollout_id}/pause", json={"note": "a look"}, headers=operator
    )
    assert paused.status_code == 200, paused.text
    assert (await rollout(client, rollout_id))["status"] == "paused"

    events = (await client.get(f"/api/v1/rollouts/{rollout_id}/events")).json()["items"]
    by_kind = {e["event_type"]: e["event_data"] for e in events}
    assert by_kind["rollout_created"]["by"] == "otto"
    assert by_kind["rollout_created"]["triggered_by"] == "manual:otto"
    assert by_kind["rollout_approved"]["by"] == "otto"
    assert by_kind["rollout_paused"]["by"] == "otto"


async def test_the_admin_tokens_actions_are_recorded_as_admin_token_at_the_clocks_time(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await made_user(client, "alice")
    [entry] = await audit(client)
    assert entry["actor"] == "admin-token"
    assert datetime.fromisoformat(entry["at"]) == clock.now()  # the clock's time, not the wall's


async def test_a_password_is_kept_as_typed_with_its_spaces(client: httpx.AsyncClient) -> None:
    password = "  spaces around it  "
    assert (await new_user(client, "alice", password=password)).status_code == 201
    login = await client.post(
        "/ui/login", data={"username": "alice", "password": password}, headers={"Authorization": ""}
    )
    assert login.status_code == 303, login.text
