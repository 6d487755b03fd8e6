"""What a device's agent can do, as it declares it in its state reports.

fleetwave's own agent sends ``"capabilities": [...]`` beside ``apps`` in every report: which
kinds of health check it runs on the device, whether it reports ``pulling`` and ``updating``,
whether it ships logs. The iotistic agent sends none, and a device that declares nothing is
taken to be such an agent: it runs no check on the device and reports container states only.
Words a newer agent declares that this server does not know are kept and shown, not refused.
"""

from __future__ import annotations

from typing import Any

from fleetwave.domain.errors import Problem
from fleetwave.domain.text_rules import label_problem

#: The device runs checks of this type itself (those under ``"fleetwave"`` in its target).
CHECK_CAPABILITIES = {"http": "checks.http", "tcp": "checks.tcp", "custom": "checks.custom"}
#: The device reports ``pulling`` and ``updating`` while it applies a target.
PROGRESS = "progress"
#: The device ships its containers' logs.
LOGS = "logs"
KNOWN = (*CHECK_CAPABILITIES.values(), PROGRESS, LOGS)

MAX_CAPABILITIES = 32
MAX_LENGTH = 64


def runs_on_device(check_type: str, capabilities: frozenset[str]) -> bool:
    """Whether an agent declaring ``capabilities`` runs ``check_type`` checks itself."""
    needed = CHECK_CAPABILITIES.get(check_type)
    return needed is not None and needed in capabilities


def parse_capabilities(value: Any, path: str, problems: list[Problem]) -> tuple[str, ...]:
    """A report's ``capabilities``: a list of short words, kept sorted and without repeats
    (so the same set is stored the same way); absent means none."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_CAPABILITIES:
        problems.append(Problem(path, f"must be a list of at most {MAX_CAPABILITIES} words"))
        return ()
    for i, word in enumerate(value):
        if not isinstance(word, str) or not 0 < len(word) <= MAX_LENGTH:
            problems.append(Problem(f"{path}[{i}]", f"must be a word of 1-{MAX_LENGTH} characters"))
        elif (problem := label_problem(word)) is not None:
            problems.append(Problem(f"{path}[{i}]", problem))
    return tuple(sorted({w for w in value if isinstance(w, str)}))
