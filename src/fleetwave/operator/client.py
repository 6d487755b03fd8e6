"""A small synchronous client of fleetwave's admin API.

Every call returns the API's JSON as it came; a refused request raises :class:`ApiError` with
the server's own message (``{"error", "detail"}``), a missing connection raises
:class:`Unreachable` naming the URL.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

Params = dict[str, Any]


class ApiError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


class Unreachable(Exception):
    """No answer from the server at all."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach fleetwave at {url} ({reason})")
        self.url, self.reason = url, reason


def segment(value: object) -> str:
    """One path segment, escaped (uuids and ids come from the command line)."""
    return quote(str(value), safe="")


def error_of(response: httpx.Response) -> ApiError:
    """The server's ``{"error", "detail"}`` answer as an exception, or its text if not JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return ApiError(response.status_code, str(body["error"]), body.get("detail"))
    text = response.text.strip()[:200] or response.reason_phrase
    return ApiError(response.status_code, text)


def reason_of(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__


class AdminClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> Any:
        """The answer's JSON (None for an empty answer); raises ApiError or Unreachable."""
        kept = {k: v for k, v in (params or {}).items() if v is not None and v != []}
        try:
            response = self.http.request(method, path, params=kept, json=body)
        except httpx.TransportError as exc:
            raise Unreachable(self.url, reason_of(exc)) from None
        if response.status_code >= 400:
            raise error_of(response)
        return response.json() if response.content else None

    # image policies
    def policies(self, **filters: Any) -> Any:
        return self.request("GET", "/api/v1/image-policies", params=filters)

    def policy(self, policy_id: int) -> Any:
        return self.request("GET", f"/api/v1/image-policies/{policy_id}")

    def create_policy(self, fields: dict[str, Any]) -> Any:
        return self.request("POST", "/api/v1/image-policies", body=fields)

    def replace_policy(self, policy_id: int, fields: dict[str, Any]) -> Any:
        return self.request("PUT", f"/api/v1/image-policies/{policy_id}", body=fields)

    def delete_policy(self, policy_id: int) -> None:
        self.request("DELETE", f"/api/v1/image-policies/{policy_id}")

    # deployment rings
    def rings(self) -> Any:
        return self.request("GET", "/api/v1/rings")

    def ring(self, name: str) -> Any:
        return self.request("GET", f"/api/v1/rings/{segment(name)}")

    def create_ring(self, fields: dict[str, Any]) -> Any:
        return self.request("POST", "/api/v1/rings", body=fields)

    def replace_ring(self, name: str, fields: dict[str, Any]) -> Any:
        return self.request("PUT", f"/api/v1/rings/{segment(name)}", body=fields)

    def delete_ring(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/rings/{segment(name)}")

    # rollouts
    def trigger(self, request: dict[str, Any]) -> Any:
        return self.request("POST", "/api/v1/images/trigger-update", body=request)

    def preview(self, request: dict[str, Any]) -> Any:
        return self.request("POST", "/api/v1/rollouts/preview", body=request)

    def rollouts(self, **filters: Any) -> Any:
        return self.request("GET", "/api/v1/rollouts", params=filters)

    def rollout(self, rollout_id: str) -> Any:
        return self.request("GET", f"/api/v1/rollouts/{segment(rollout_id)}")

    def rollout_devices(self, rollout_id: str, **filters: Any) -> Any:
        path = f"/api/v1/rollouts/{segment(rollout_id)}/devices"
        return self.request("GET", path, params=filters)

    def rollout_events(self, rollout_id: str, **filters: Any) -> Any:
        path = f"/api/v1/rollouts/{segment(rollout_id)}/events"
        return self.request("GET", path, params=filters)

    def control(self, rollout_id: str, control: str, actor: dict[str, Any]) -> Any:
        path = f"/api/v1/rollouts/{segment(rollout_id)}/{segment(control)}"
        return self.request("POST", path, body=actor)

    def device_control(self, rollout_id: str, uuid: str, action: str, body: dict[str, Any]) -> Any:
        """One device's control in a rollout: ``rollback`` or ``retry``."""
        path = f"/api/v1/rollouts/{segment(rollout_id)}/devices/{segment(uuid)}/{action}"
        return self.request("POST", path, body=body)

    # devices
    def devices(self, **filters: Any) -> Any:
        return self.request("GET", "/api/v1/devices", params=filters)

    def device(self, uuid: str) -> Any:
        return self.request("GET", f"/api/v1/devices/{segment(uuid)}")

    def target_state(self, uuid: str) -> Any:
        return self.request("GET", f"/api/v1/devices/{segment(uuid)}/target-state")

    def current_state(self, uuid: str) -> Any:
        """The device's last report, or None if it has not reported yet."""
        try:
            return self.request("GET", f"/api/v1/devices/{segment(uuid)}/current-state")
        except ApiError as exc:
            if exc.status == 404 and "has not reported" in exc.message:
                return None
            raise

    def device_rollouts(self, uuid: str, **page: Any) -> Any:
        return self.request("GET", f"/api/v1/devices/{segment(uuid)}/rollouts", params=page)

    def events(self, **filters: Any) -> Any:
        return self.request("GET", "/api/v1/events", params=filters)

    def register_device(self, fields: dict[str, Any]) -> Any:
        return self.request("POST", "/api/v1/devices", body=fields)

    def device_logs(self, uuid: str, **filters: Any) -> Any:
        return self.request("GET", f"/api/v1/devices/{segment(uuid)}/logs", params=filters)

    # users and their personal API tokens
    def users(self) -> Any:
        return self.request("GET", "/api/v1/users")

    def create_user(self, username: str, password: str, role: str) -> Any:
        body = {"username": username, "password": password, "role": role}
        return self.request("POST", "/api/v1/users", body=body)

    def update_user(self, username: str, changes: dict[str, Any]) -> Any:
        return self.request("PATCH", f"/api/v1/users/{segment(username)}", body=changes)

    def delete_user(self, username: str) -> None:
        self.request("DELETE", f"/api/v1/users/{segment(username)}")

    def tokens(self, username: str) -> Any:
        return self.request("GET", f"/api/v1/users/{segment(username)}/tokens")

    def create_token(self, username: str, fields: dict[str, Any]) -> Any:
        return self.request("POST", f"/api/v1/users/{segment(username)}/tokens", body=fields)

    def revoke_token(self, username: str, token_id: int) -> None:
        self.request("DELETE", f"/api/v1/users/{segment(username)}/tokens/{token_id}")
