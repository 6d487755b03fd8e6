"""A real ``fleetwave serve`` on SQLite or PostgreSQL for the hostile-input tests (schemathesis
and the fuzz corpus), seeded with one of everything a request can name: a device and its key,
a fleet provisioning key, an image policy. The credentials each operation needs are here too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from fleetwave.sessions import SESSION_COOKIE
from fleetwave.store.db import sync_url
from fleetwave.store.tables import metadata
from tests.conftest import ADMIN_TOKEN, truncate_all
from tests.e2e.processes import RunningServer, fleetwave_server

WEBHOOK_SECRET = "hostile-webhook-secret-0123456789"
IMAGE = "fuzz/app:v1.0.0"
USER = {"username": "fuzz-user", "password": "fuzz user passphrase", "role": "operator"}


@dataclass(frozen=True)
class Served:
    """The running server, its database, and the names and keys its seed gave."""

    server: RunningServer
    database_url: str
    device_uuid: str
    device_key: str
    provisioning_key: str
    provisioning_key_id: int
    policy_id: int
    rollout_id: str
    dashboard_session: str
    csrf_token: str
    username: str
    token_id: int
    registry_id: int

    @property
    def base(self) -> str:
        return self.server.base

    def headers_for(self, path: str) -> dict[str, str]:
        """The credentials an operation on ``path`` needs: the provisioning key to register,
        the device's key on the device endpoints, a dashboard session and its CSRF token on the
        dashboard, the admin token everywhere else."""
        if path.startswith("/ui"):
            session = f"{SESSION_COOKIE}={self.dashboard_session}"
            return {"Cookie": session, "X-CSRF-Token": self.csrf_token}
        if path.startswith(("/api/v1/device/register", "/api/v1/device/{uuid}/key-exchange")):
            return {"Authorization": f"Bearer {self.provisioning_key}"}
        if path.startswith("/api/v1/device/"):
            return {"X-Device-Api-Key": self.device_key}
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def real_path_values(self) -> dict[str, list[str]]:
        """Path parameters that name something that exists, by parameter name."""
        return {
            "uuid": [self.device_uuid],
            "policy_id": [str(self.policy_id)],
            "key_id": [str(self.provisioning_key_id)],
            "rollout_id": [self.rollout_id],
            "endpoint": ["docker-registry", "dockerhub", "ghcr"],
            "secret": [WEBHOOK_SECRET],
            "username": [self.username],
            "token_id": [str(self.token_id)],
            "registry_id": [str(self.registry_id)],
        }

    def row_counts(self) -> dict[str, int]:
        return row_counts(self.database_url)


def row_counts(url: str) -> dict[str, int]:
    """How many rows every table holds."""
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def served_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database of the backend ``request.param`` names."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fleetwave.db'}"
    url: str = request.getfixturevalue("postgres_database")
    truncate_all(url)
    return url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A seeded server per backend, shared by the module's tests (starting one is slow)."""
    home = tmp_path_factory.mktemp(f"served-{request.param}")
    url = served_database(request, home)
    settings = {
        "FLEETWAVE_DATABASE_URL": url,
        "FLEETWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLEETWAVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FLEETWAVE_REGISTER_RATE_PER_MINUTE": "100000",
        "FLEETWAVE_LONG_POLL_MAX": "0.2",  # a generated ?wait= holds a poll this long at most
        "FLEETWAVE_WEBHOOK_ANSWER_WAIT": "0",
        "FLEETWAVE_LOG_LEVEL": "warning",
    }
    with fleetwave_server(home, **settings) as server:
        yield seed(server, url)
        log = server.stop()
    assert "Traceback" not in log, f"the server logged an unexpected error:\n{log[-6000:]}"


def seed(server: RunningServer, url: str) -> Served:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.base, headers=admin, timeout=10) as http:
        device = created(http.post("/api/v1/devices", json=device_body("fuzz-device")))
        key = created(http.post("/api/v1/provisioning-keys", json={"fleet_id": "fuzz-fleet"}))
        policy = created(http.post("/api/v1/image-policies", json={"image_pattern": "fuzz/app:*"}))
        pushed = http.post("/api/v1/images/trigger-update", json={"image": "fuzz/app:v2.0.0"})
        assert pushed.status_code == 200 and pushed.json()["rollout_id"], pushed.text
        session, csrf = dashboard_login(http)
        user = created(http.post("/api/v1/users", json=USER))
        token = created(http.post(f"/api/v1/users/{user['username']}/tokens", json={"name": "t"}))
        # polled, and failing: nothing listens on port 9 (discard)
        registry = {"name": "fuzz-registry", "url": "http://127.0.0.1:9"}
        polled = created(http.post("/api/v1/registries", json=registry))
    return Served(
        server=server,
        database_url=url,
        device_uuid=device["uuid"],
        device_key=device["api_key"],
        provisioning_key=key["key"],
        provisioning_key_id=key["id"],
        policy_id=policy["id"],
        rollout_id=pushed.json()["rollout_id"],
        dashboard_session=session,
        csrf_token=csrf,
        username=user["username"],
        token_id=token["id"],
        registry_id=polled["id"],
    )


def dashboard_login(http: httpx.Client) -> tuple[str, str]:
    """A dashboard session, and the CSRF token its forms carry."""
    logged_in = http.post("/ui/login", data={"token": ADMIN_TOKEN}, headers={"Authorization": ""})
    assert logged_in.status_code == 303, logged_in.text
    session = logged_in.cookies[SESSION_COOKIE]
    page = http.get("/ui/policies", headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return session, found.group(1)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def device_body(name: str) -> dict[str, Any]:
    return {"device_name": name, "fleet_id": "fuzz-fleet", "apps": target_apps(IMAGE)}


def target_apps(image: str) -> dict[str, Any]:
    service = {"serviceId": 1, "serviceName": "app", "imageName": image, "appId": 1001}
    return {"1001": {"appId": 1001, "appName": "web", "services": [service]}}
