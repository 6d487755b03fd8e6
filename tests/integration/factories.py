"""Builders of request bodies and devices for the integration tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


def target_apps(image: str = "iotistic/myapp:v2.0.0", *, app_id: int = 1001) -> dict[str, Any]:
    return {
        str(app_id): {
            "appId": app_id,
            "appName": "web",
            "services": [
                {
                    "serviceId": 1,
                    "serviceName": "app",
                    "imageName": image,
                    "appId": app_id,
                    "appName": "web",
                    "config": {
                        "image": image,
                        "ports": ["8080:80"],
                        "environment": {},
                        "volumes": [],
                        "restart": "always",
                    },
                }
            ],
        }
    }


async def register_device(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"device_name": "pi-1", "apps": target_apps()} | fields
    response = await client.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    device: dict[str, Any] = response.json()
    return device


def as_device(device: dict[str, Any]) -> dict[str, str]:
    """Headers a device sends: its own key, as the iotistic agent does, and no admin token."""
    return {"X-Device-API-Key": device["api_key"], "Authorization": ""}


def report_body(uuid: str, image: str = "iotistic/myapp:v2.0.0", **extra: Any) -> dict[str, Any]:
    return {
        uuid: {
            "apps": {
                "1001": {
                    "appId": 1001,
                    "appName": "web",
                    "services": [
                        {
                            "serviceId": 1,
                            "serviceName": "app",
                            "imageName": image,
                            "status": "running",
                            "containerId": "c0ffee",
                        }
                    ],
                }
            },
            "is_online": True,
            "os_version": "Debian 12",
            "supervisor_version": "1.4.0",
            "cpu_usage": 12.5,
            "memory_usage": 512,
            "memory_total": 2048,
            "local_ip": "192.168.1.20",
        }
        | extra
    }


@contextlib.contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` runs inside the block, each on one line (transaction
    control, SQLite pragmas and pool pings left out)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            statements.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
