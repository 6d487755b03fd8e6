"""A registry of the tests' own, as an httpx transport: tag lists paged with ``Link``,
manifest digests on HEAD, and, when asked, the distribution token flow or misbehaviour."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

from fleetwave.registries.registry_client import MANIFEST_TYPES

REALM = "https://auth.registry.test/token"
USERNAME, PASSWORD = "ci-reader", "registry-password-0123"


@dataclass
class FakeRegistry:
    """``repositories``: repository → tag → digest. ``auth``: None, "bearer" or "basic".
    ``misbehave``: None, "garbage", "redirect-loop" or "busy" (429)."""

    repositories: dict[str, dict[str, str]] = field(default_factory=dict)
    auth: str | None = None
    misbehave: str | None = None
    page_size: int = 2
    realm: str = REALM
    requests: list[str] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def factory(self) -> Callable[[bool], httpx.AsyncClient]:
        def client(insecure: bool) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.MockTransport(self.handle), follow_redirects=True, max_redirects=5
            )

        return client

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        if str(request.url).startswith(self.realm):
            return self._token(request)
        self.requests.append(f"{request.method} {url.path}")
        refused = self._refused(request, url.path)
        if refused is not None:
            return refused
        if self.misbehave == "garbage":
            return httpx.Response(200, content=b"\x00<html>not a registry</html>")
        if self.misbehave == "redirect-loop":
            return httpx.Response(302, headers={"Location": str(request.url)})
        if self.misbehave == "busy":
            return httpx.Response(429, headers={"Retry-After": "900"})
        if url.path.endswith("/tags/list"):
            name = url.path.removeprefix("/v2/").removesuffix("/tags/list")
            return self._tags(name, parse_qs(url.query))
        name, _, tag = url.path.removeprefix("/v2/").partition("/manifests/")
        digest = self.repositories.get(name, {}).get(tag)
        if request.method != "HEAD" or digest is None:
            return httpx.Response(404)
        assert request.headers["accept"] == MANIFEST_TYPES
        return httpx.Response(200, headers={"Docker-Content-Digest": digest})

    def _tags(self, name: str, query: dict[str, list[str]]) -> httpx.Response:
        if name not in self.repositories:
            return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
        tags = sorted(self.repositories[name])
        last = query.get("last", [""])[0]
        page = [t for t in tags if t > last][: self.page_size]
        headers = {}
        if page and page[-1] != tags[-1]:
            headers["Link"] = (
                f'</v2/{name}/tags/list?n={self.page_size}&last={page[-1]}>; rel="next"'
            )
        return httpx.Response(200, json={"name": name, "tags": page}, headers=headers)

    def _refused(self, request: httpx.Request, path: str) -> httpx.Response | None:
        given = request.headers.get("authorization", "")
        repository = path.removeprefix("/v2/").split("/tags/")[0].split("/manifests/")[0]
        if self.auth == "bearer" and given != f"Bearer token-for-{repository}":
            challenge = (
                f'Bearer realm="{self.realm}",service="registry.test",'
                f'scope="repository:{repository}:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if self.auth == "basic" and given != _basic():
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        return None

    def _token(self, request: httpx.Request) -> httpx.Response:
        query = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        self.token_requests.append(query)
        if request.headers.get("authorization") != _basic():
            return httpx.Response(401)
        repository = query["scope"].split(":")[1]
        return httpx.Response(200, content=json.dumps({"token": f"token-for-{repository}"}))


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
