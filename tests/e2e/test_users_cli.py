"""``fleetwave users …`` as real processes: the first admin made offline before the server
starts, then that admin logging in and making a token for CI, and the CI token managing users
over the API; passwords only from a hidden prompt or stdin, never a flag.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import FLEETWAVE, RunningServer, clean_env, fleetwave_server

PASSWORD = "first admin's passphrase"


@dataclass
class Setup:
    home: Path
    server: RunningServer
    admin_token: str
    ci_token: str = ""

    def run(
        self, *args: str, stdin: str = "", token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = clean_env(self.server.data_dir, FLEETWAVE_URL=self.server.base)
        if token is not None:
            env["FLEETWAVE_TOKEN"] = token
        return subprocess.run(
            [*FLEETWAVE, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=self.home,
        )

    def ok(self, *args: str, stdin: str = "", token: str | None = None) -> Any:
        result = self.run(*args, "--json", stdin=stdin, token=token)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def offline(home: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLEETWAVE, "users", "create", *args, "--offline"],
        env=clean_env(home / "var"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=home,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The first admin made offline (before any server ran), then the server started."""
    home = tmp_path_factory.mktemp("users")
    made = offline(home, "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "alice" in made.stdout and "admin" in made.stdout
    with fleetwave_server(home) as server:
        token = (server.data_dir / "admin-token").read_text().strip()
        yield Setup(home, server, token)


def test_the_offline_admin_logs_in_to_the_dashboard(setup: Setup) -> None:
    with httpx.Client(base_url=setup.server.base) as browser:
        login = browser.post("/ui/login", data={"username": "alice", "password": PASSWORD})
        assert login.status_code == 303, login.text
        assert browser.get("/api/v1/me").json() == {"name": "alice", "role": "admin", "user": True}


def test_an_offline_duplicate_and_a_weak_password_are_refused_clearly(setup: Setup) -> None:
    again = offline(setup.home, "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    weak = offline(setup.home, "bob", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "password" in weak.stderr and "12" in weak.stderr


def test_a_password_is_never_a_flag(setup: Setup) -> None:
    flagged = setup.run("users", "create", "bob", "--password", PASSWORD, token=setup.admin_token)
    assert flagged.returncode == 2 and "--password" in flagged.stderr


def test_the_admin_makes_a_token_for_ci_shown_once_and_listed_by_its_prefix(
    setup: Setup,
) -> None:
    created = setup.ok("users", "tokens", "create", "alice", "--name", "ci", "--expires", "90d",
                       token=setup.admin_token)  # fmt: skip
    assert created["token"].startswith("fwt_") and created["role"] == "admin"
    assert created["expires_at"] is not None
    setup.ci_token = created["token"]
    listed = setup.ok("users", "tokens", "list", "alice", token=setup.ci_token)
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    table = setup.run("users", "tokens", "list", "alice", token=setup.ci_token)
    assert created["token_prefix"] in table.stdout and created["token"] not in table.stdout


def test_ci_creates_changes_disables_and_deletes_a_user(setup: Setup) -> None:
    ci = setup.ci_token
    bob = setup.ok("users", "create", "bob", "--role", "viewer", "--password-stdin",
                   stdin="bob's own passphrase\n", token=ci)  # fmt: skip
    assert (bob["username"], bob["role"]) == ("bob", "viewer")
    assert setup.ok("users", "set-role", "bob", "operator", token=ci)["role"] == "operator"
    assert setup.ok("users", "disable", "bob", token=ci)["disabled"] is True
    assert setup.ok("users", "enable", "bob", token=ci)["disabled"] is False
    listed = setup.run("users", "list", token=ci)
    assert listed.returncode == 0 and "bob" in listed.stdout and "operator" in listed.stdout
    deleted = setup.run("users", "delete", "bob", token=ci)
    assert deleted.returncode == 0 and "deleted user bob" in deleted.stdout

    with httpx.Client(base_url=setup.server.base, headers={"Authorization": f"Bearer {ci}"}) as api:
        actors = {(e["actor"], e["action"]) for e in api.get("/api/v1/audit").json()["items"]}
    assert {("alice", "created"), ("alice", "updated"), ("alice", "deleted")} <= actors
    assert ("offline-cli", "created") in actors


def test_a_typed_password_is_asked_twice(setup: Setup) -> None:
    typed = "carol's typed passphrase"
    made = setup.run("users", "create", "carol", stdin=f"{typed}\n{typed}\n", token=setup.ci_token)
    assert made.returncode == 0, made.stderr
    assert "carol" in made.stdout and typed not in made.stdout


def test_the_last_admin_stays_and_a_revoked_token_is_refused(setup: Setup) -> None:
    last = setup.run("users", "delete", "alice", token=setup.ci_token)
    assert last.returncode == 1 and "last enabled admin" in last.stderr
    listed = setup.ok("users", "tokens", "list", "alice", token=setup.admin_token)
    [ci] = [t for t in listed if t["name"] == "ci"]
    revoked = setup.run(
        "users", "tokens", "revoke", "alice", str(ci["id"]), token=setup.admin_token
    )
    assert revoked.returncode == 0, revoked.stderr
    refused = setup.run("users", "list", token=setup.ci_token)
    assert refused.returncode == 4 and "refused the token" in refused.stderr
