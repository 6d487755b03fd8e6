"""The agent's side of the device protocol (DESIGN.md §3), over HTTP.

A poll may ask the server to hold a "not modified" answer (``?wait=N``, a long-poll) when the
server's last answer offered it (``X-Fleetwave-Long-Poll: <max seconds>``).
"""

from __future__ import annotations

import gzip
from typing import Any

import httpx

LONG_POLL_HEADER = "X-Fleetwave-Long-Poll"
TIMEOUT = 30.0  # the iotistic agent's, for every request; a held poll gets its wait on top


class DeviceClient:
    def __init__(self, http: httpx.AsyncClient, uuid: str, api_key: str) -> None:
        self.http, self.uuid = http, uuid
        self.headers = {"X-Device-API-Key": api_key, "Content-Type": "application/json"}
        self.long_poll_max: float | None = None  # offered by the server's last poll answer

    async def poll(
        self, etag: str | None, *, wait: float | None = None
    ) -> tuple[str | None, dict[str, Any] | None]:
        """(ETag, state) — state None when unchanged (304); with ``wait``, the server may hold
        an unchanged answer up to that many seconds."""
        headers = self.headers | ({"if-none-match": etag} if etag else {})
        params = {"wait": f"{wait:g}"} if wait else {}
        response = await self.http.get(
            f"/api/v1/device/{self.uuid}/state",
            headers=headers,
            params=params,
            timeout=TIMEOUT + (wait or 0),
        )
        if response.status_code in (200, 304):
            self.long_poll_max = _offer(response.headers.get(LONG_POLL_HEADER))
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

    async def send_logs(self, ndjson: bytes) -> None:
        """Log lines as the iotistic agent ships them: NDJSON, gzipped."""
        headers = self.headers | {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        }
        response = await self.http.post(
            f"/api/v1/device/{self.uuid}/logs",
            content=gzip.compress(ndjson),
            headers=headers,
            timeout=TIMEOUT,
        )
        response.raise_for_status()


def _offer(header: str | None) -> float | None:
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 < seconds < float("inf") else None
