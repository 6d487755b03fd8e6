"""Logging set-up, with secrets kept out of the access log and device chatter out of INFO.

Docker Hub and Quay can only authenticate with a secret in the webhook URL, so the request
line uvicorn logs must not carry it. Every device polls every interval and reports on every
change: those requests, when they succeed, are access-logged at DEBUG, so INFO shows what
operators and registries did (and any device request that failed).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_URL_SECRETS = (
    (re.compile(r"(/api/v1/webhooks/[^/\s?]+/)[^/\s?]+"), r"\1<redacted>"),
    (re.compile(r"([?&](?:secret|token|key)=)[^&\s]+", re.IGNORECASE), r"\1<redacted>"),
)


def redact(text: str) -> str:
    for pattern, replacement in _URL_SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(str(record.msg))
        return True


_DEVICE_CHATTER = re.compile(r"^/api/v1/device/(?:[^/?]+/state|state)(?:\?|$)")


def is_device_chatter(method: str, path: str, status: int) -> bool:
    """A device's successful poll or report: one per device per interval."""
    return method in ("GET", "PATCH") and status < 400 and bool(_DEVICE_CHATTER.match(path))


class DeviceChatterAtDebug(logging.Filter):
    """Uvicorn's access line for a successful device poll or report, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            return True  # uvicorn's access record: (client, method, path, version, status)
        _client, method, path, _version, status = args
        if not isinstance(status, int) or not is_device_chatter(str(method), str(path), status):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def uvicorn_log_config() -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    filters = config.setdefault("filters", {})
    filters["redact_secrets"] = {"()": RedactSecrets}
    filters["device_chatter"] = {"()": DeviceChatterAtDebug}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    config["handlers"]["access"]["filters"].insert(0, "device_chatter")
    return config
