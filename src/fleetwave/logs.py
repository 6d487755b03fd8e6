"""Logging set-up, with secrets kept out of the access log.

Docker Hub and Quay can only authenticate with a secret in the webhook URL, so the request
line uvicorn logs must not carry it.
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


def uvicorn_log_config() -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
