"""The audit log: who changed policies, users, tokens, registries and keys, and how.

Written in the transaction of the change it records, so that neither exists without the other.
``before`` and ``after`` are the object as the API shows it, minus anything secret.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.store.tables import audit_log

SECRET_FIELDS = frozenset({"password", "password_hash", "token", "token_hash", "key", "key_hash"})


def without_secrets(shown: dict[str, Any] | None) -> dict[str, Any] | None:
    if shown is None:
        return None
    return {k: v for k, v in shown.items() if k not in SECRET_FIELDS}


async def record_change(
    conn: AsyncConnection,
    *,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=_plain(without_secrets(before)),
            after=_plain(without_secrets(after)),
        )
    )


def _plain(shown: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-ready: times as ISO 8601 text, decimals as numbers, enums as their values."""
    if shown is None:
        return None
    plain: dict[str, Any] = json.loads(json.dumps(shown, default=_json_value))
    return plain


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")
