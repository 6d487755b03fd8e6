"""A registry that cannot notify fleetwave is polled, and its pushes roll out.

Real parts: Debian's ``docker-registry`` with notifications off, ``fleetwave serve`` (whose
worker polls), images pushed over the registry's HTTP API. The second registry asks for
tokens (the distribution token flow): a token server of the test's own signs JWTs (RS256)
with a key and certificate made by ``openssl``, which the registry trusts.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.processes import FLEETWAVE, clean_env, fleetwave_server, free_port
from tests.e2e.realparts import Registry, registry, require, wait_until

TOKEN = "e2e-admin-token-0123456789abcdef"
SECRET = "e2e-registry-secret-0123456789"
INTERVAL = 1  # second between polls
USERNAME, PASSWORD = "fleetwave-reader", "e2e-registry-password-42"
SERVICE, ISSUER = "e2e-registry", "e2e-token-issuer"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[httpx.Client]:
    require("docker-registry")
    with (
        fleetwave_server(tmp_path / "fleetwave", FLEETWAVE_ADMIN_TOKEN=TOKEN) as running,
        httpx.Client(
            base_url=running.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as api,
    ):
        yield api


def test_the_registries_commands_add_show_change_and_remove_a_registry(
    server: httpx.Client, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "cli", FLEETWAVE_URL=str(server.base_url), FLEETWAVE_TOKEN=TOKEN)

    def fleetwave(*args: str, stdin: str = "") -> Any:
        done = subprocess.run(
            [*FLEETWAVE, "registries", *args, "--json"],
            env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else None

    added = fleetwave(
        "add", "lab", "http://registry.local:5000", "--interval", "30",
        "--username", USERNAME, "--password-stdin", "--insecure", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert (added["password_set"], added["poll_interval_seconds"]) == (True, 30)
    assert [r["name"] for r in fleetwave("list")] == ["lab"]
    changed = fleetwave("update", "lab", "--disable", "--no-password")
    assert (changed["enabled"], changed["password_set"]) == (False, False)
    assert fleetwave("show", str(added["id"]))["username"] == USERNAME
    everything = json.dumps([added, changed])
    assert PASSWORD not in everything
    done = subprocess.run(
        [*FLEETWAVE, "registries", "remove", "lab"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert fleetwave("list") == []


def test_a_push_to_a_registry_without_notifications_rolls_out_within_two_polls(
    server: httpx.Client, tmp_path: Path
) -> None:
    with registry(tmp_path / "registry", free_port(), None, SECRET) as reg:
        polled_push_rolls_out(server, reg, {})


def test_a_registry_asking_for_tokens_is_polled_with_its_credentials(
    server: httpx.Client, tmp_path: Path
) -> None:
    require("docker-registry", "openssl", install="Debian: docker-registry openssl")
    with token_server(tmp_path / "tokens") as tokens:
        auth = {
            "token": {
                "realm": tokens.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(tokens.certificate),
            }
        }
        push_auth = tokens.auth("acme/app", "pull,push")
        with registry(
            tmp_path / "registry", free_port(), None, SECRET, auth=auth, push_auth=push_auth
        ) as reg:
            assert httpx.get(f"http://{reg.address}/v2/", timeout=5).status_code == 401
            credentials = {"username": USERNAME, "password": PASSWORD, "insecure": True}
            polled_push_rolls_out(server, reg, credentials)
        assert any("pull" in scope for scope in tokens.scopes_granted)


def polled_push_rolls_out(api: httpx.Client, reg: Registry, credentials: dict[str, Any]) -> None:
    """1.0.0 runs, the registry is polled once, 1.1.0 is pushed: a rollout pinned to its
    digest starts within two poll intervals."""
    repository, image = "acme/app", f"{reg.address}/acme/app"
    reg.push(repository, "1.0.0", healthy=True)
    device = {
        "uuid": f"poll-{uuid.uuid4().hex[:8]}",
        "device_name": "polled",
        "apps": {"1001": {"appId": 1001, "appName": "web", "services": [
            {"serviceId": 1, "serviceName": "web", "imageName": f"{image}:1.0.0",
             "config": {"image": f"{image}:1.0.0"}},
        ]}},
    }  # fmt: skip
    assert api.post("/api/v1/devices", json=device).status_code == 201
    made = api.post(
        "/api/v1/image-policies",
        json={"image_pattern": f"{image}:*", "update_strategy": "auto"},
    )
    assert made.status_code == 201, made.text
    body = {"name": "lab", "url": f"http://{reg.address}", "poll_interval_seconds": INTERVAL}
    added = api.post("/api/v1/registries", json=body | credentials)
    assert added.status_code == 201, added.text
    shown = f"/api/v1/registries/{added.json()['id']}"

    def first_poll_done() -> bool:
        state = api.get(shown).json()
        assert state["last_error"] is None, state["last_error"]
        return state["last_polled_at"] is not None

    wait_until(first_poll_done, "the first poll", timeout=10)
    assert api.get("/api/v1/rollouts").json()["items"] == []  # what was there starts nothing
    reg.push(repository, "1.1.0", healthy=True)
    pushed = time.monotonic()
    found: list[dict[str, Any]] = []
    wait_until(
        lambda: found.extend(api.get("/api/v1/rollouts").json()["items"]) or found,
        "the polled push's rollout",
        timeout=2 * INTERVAL + 1.5,  # two intervals, and a loaded machine's slack
    )
    waited = time.monotonic() - pushed
    [rollout] = found
    assert rollout["new_image"] == f"{image}:1.1.0@{reg.manifest_digest(repository, '1.1.0')}"
    assert rollout["triggered_by"] == "poll"
    print(f"polled push to rollout: {waited:.2f} s (interval {INTERVAL} s)")


# --- a token server of the test's own --------------------------------------------------


class TokenServer:
    def __init__(self, workdir: Path, port: int) -> None:
        self.key, self.certificate = workdir / "key.pem", workdir / "cert.pem"
        self.realm = f"http://127.0.0.1:{port}/token"
        self.scopes_granted: list[str] = []
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=e2e-token-issuer", "-keyout", str(self.key),
             "-out", str(self.certificate)],
            check=True, capture_output=True,
        )  # fmt: skip
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.certificate), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.chain = [base64.b64encode(der).decode()]

    def token(self, repository: str, actions: str) -> str:
        """A JWT the registry accepts: RS256, the certificate in ``x5c``."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.chain}
        claims = {
            "iss": ISSUER, "sub": USERNAME, "aud": SERVICE, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
            "access": [{"type": "repository", "name": repository,
                        "actions": actions.split(",")}],
        }  # fmt: skip
        signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signed.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signed}.{_b64(signature)}"

    def auth(self, repository: str, actions: str) -> httpx.Auth:
        return _Bearer(self, repository, actions)


class _Bearer(httpx.Auth):
    """The tests' pushes: a token for the repository, fetched once."""

    def __init__(self, tokens: TokenServer, repository: str, actions: str) -> None:
        self.tokens, self.repository, self.actions = tokens, repository, actions

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = (
            f"Bearer {self.tokens.token(self.repository, self.actions)}"
        )
        yield request


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextmanager
def token_server(workdir: Path) -> Iterator[TokenServer]:
    """Tokens for USERNAME:PASSWORD (basic credentials), for the scope asked, pull only."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tokens = TokenServer(workdir, port)
    expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            scope = query.get("scope", [""])[0]
            if self.headers.get("Authorization") != expected or not scope:
                self.send_response(401)
                self.end_headers()
                return
            _, repository, _ = scope.split(":")
            tokens.scopes_granted.append(scope)
            body = json.dumps({"token": tokens.token(repository, "pull")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield tokens
    finally:
        httpd.shutdown()
        httpd.server_close()
