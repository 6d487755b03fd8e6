"""The agent's side of the device protocol (DESIGN.md §3), over HTTP."""

from __future__ import annotations

from typing import Any

import httpx


class DeviceClient:
    def __init__(self, http: httpx.AsyncClient, uuid: str, api_key: str) -> None:
        self.http, self.uuid = http, uuid
        self.headers = {"X-Device-API-Key": api_key, "Content-Type": "application/json"}

    async def poll(self, etag: str | None) -> tuple[str | None, dict[str, Any] | None]:
        """(ETag, state) — state None when unchanged (304)."""
        headers = self.headers | ({"if-none-match": etag} if etag else {})
        response = await self.http.get(
            f"/api/v1/device/{self.uuid}/state", headers=headers, timeout=30
        )
        if response.status_code == 304:
            return etag, None
        response.raise_for_status()
        state: dict[str, Any] = response.json()[self.uuid]
        return response.headers.get("etag"), state

    async def report(self, state: dict[str, Any]) -> None:
        response = await self.http.patch(
            "/api/v1/device/state", json={self.uuid: state}, headers=self.headers, timeout=30
        )
        response.raise_for_status()

    async def health(
        self, path: str, rollout_id: str | None, results: list[dict[str, Any]]
    ) -> None:
        response = await self.http.post(
            path,
            json={"rollout_id": rollout_id, "results": results},
            headers=self.headers,
            timeout=30,
        )
        response.raise_for_status()
