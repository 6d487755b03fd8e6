"""Reading a registry over the distribution API: tag lists and manifest digests.

Authentication follows the distribution token flow: a request answered 401 with
``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` is sent again with a token fetched
from the realm (with basic credentials if the registry has some); ``Basic`` challenges get
basic credentials; a registry that asks for nothing is read anonymously. Whatever goes wrong
becomes a :class:`PollFailed` whose reason names no secret.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

import httpx

from fleetwave.domain.registry_polling import (
    Challenge,
    next_link,
    parse_challenge,
    retry_after_seconds,
)

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
MAX_PAGES = 100
MAX_BODY = 4 * 1024 * 1024


class PollFailed(Exception):
    """A poll that could not finish: why (no secrets), and a 429's ``Retry-After``."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None


class RegistryClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        credentials: Credentials,
        now: datetime,
        *,
        insecure: bool = False,
    ) -> None:
        self.http, self.url, self.credentials, self.now = http, url.rstrip("/"), credentials, now
        self.insecure = insecure  # credentials may go over plain http
        self._tokens: dict[str, str] = {}  # scope → bearer token, for this poll

    async def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, following ``Link`` pages."""
        url: str | None = f"{self.url}/v2/{quote(repository)}/tags/list"
        found: list[str] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            if urlsplit(url).netloc != urlsplit(self.url).netloc:
                raise PollFailed(f"the tag list of {repository} links to another host")
            answer = await self._send("GET", url, repository)
            found += _tag_page(answer, repository)
            url = next_link(answer.headers.get("link"), url)
        raise PollFailed(f"the tag list of {repository} has more than {MAX_PAGES} pages")

    async def digest(self, repository: str, tag: str) -> str | None:
        """The digest ``tag`` names now, or None if the tag is gone."""
        url = f"{self.url}/v2/{quote(repository)}/manifests/{quote(tag)}"
        answer = await self._send("HEAD", url, repository, accept=MANIFEST_TYPES, missing_ok=True)
        if answer.status_code == 404:
            return None
        digest = answer.headers.get("docker-content-digest")
        if not digest or ":" not in digest:
            raise PollFailed(f"HEAD of {repository}:{tag} gave no Docker-Content-Digest")
        return str(digest)

    async def _send(
        self,
        method: str,
        url: str,
        repository: str,
        *,
        accept: str | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        scope = f"repository:{repository}:pull"
        headers = {"Accept": accept} if accept else {}
        answer = await self._request(method, url, headers | self._authorization(scope))
        if answer.status_code == 401:
            challenge = parse_challenge(answer.headers.get("www-authenticate"))
            await self._answer(challenge, scope)
            answer = await self._request(method, url, headers | self._authorization(scope))
        path = urlsplit(url).path
        if answer.status_code == 429:
            wait = retry_after_seconds(answer.headers.get("retry-after"), self.now)
            raise PollFailed(f"429 Too Many Requests from {method} {path}", wait)
        if answer.status_code == 404 and missing_ok:
            return answer
        if answer.status_code == 401:
            raise PollFailed(f"401 from {method} {path}: the registry refused the credentials")
        if answer.status_code >= 300:
            raise PollFailed(f"{answer.status_code} from {method} {path}")
        return answer

    async def _request(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            async with self.http.stream(method, url, headers=headers) as answer:
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise PollFailed(f"{method} {urlsplit(url).path}: answer over 4 MiB")
                return httpx.Response(
                    answer.status_code, headers=answer.headers, content=body, request=answer.request
                )
        except httpx.TooManyRedirects:
            raise PollFailed(f"{method} {urlsplit(url).path}: redirects without end") from None
        except httpx.HTTPError as exc:
            raise PollFailed(f"{method} {urlsplit(url).path}: {type(exc).__name__}") from None

    def _authorization(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if "basic" in self._tokens:
            return {"Authorization": self._tokens["basic"]}
        return {}

    async def _answer(self, challenge: Challenge | None, scope: str) -> None:
        """Get what a 401's challenge asks for: a bearer token, or basic credentials."""
        if challenge is None:
            raise PollFailed("401 without a WWW-Authenticate challenge")
        if challenge.scheme == "basic":
            if self.credentials.username is None:
                raise PollFailed("the registry asks for basic credentials and has none")
            self._tokens["basic"] = _basic(self.credentials)
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise PollFailed(f"401 with a challenge fleetwave cannot answer ({challenge.scheme})")
        self._tokens[scope] = await self._token(challenge, scope)

    async def _token(self, challenge: Challenge, scope: str) -> str:
        realm = challenge.params["realm"]
        scheme = urlsplit(realm).scheme
        if scheme not in ("http", "https"):
            raise PollFailed("the token realm is not an http(s) URL")
        if scheme == "http" and self.credentials.username is not None and not self.insecure:
            raise PollFailed("the token realm is plain http: credentials go there only if insecure")
        params = {"scope": challenge.params.get("scope", scope)}
        if "service" in challenge.params:
            params["service"] = challenge.params["service"]
        headers = {}
        if self.credentials.username is not None:
            params["account"] = self.credentials.username
            headers["Authorization"] = _basic(self.credentials)
        try:
            answer = await self.http.get(realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise PollFailed(f"token request: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise PollFailed(f"token request answered {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise PollFailed("token request answered something other than JSON") from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PollFailed("token request answered no token")
        return token


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username or ''}:{credentials.password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _tag_page(answer: httpx.Response, repository: str) -> list[str]:
    try:
        body = json.loads(answer.content)
    except ValueError:
        raise PollFailed(f"the tag list of {repository} is not JSON") from None
    tags = body.get("tags") if isinstance(body, dict) else None
    if tags is None and isinstance(body, dict) and "name" in body:
        return []  # a repository without tags
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PollFailed(f"the tag list of {repository} is not a list of tags")
    return tags
