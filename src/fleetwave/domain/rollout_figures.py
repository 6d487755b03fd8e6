"""The figures an operator reads about a rollout, in words that do not mislead.

A rolled-back device is a failed device that was put back: it counts as a failure everywhere
(the failure rate already did; the figures and the outcome now do too). A rollout that ended
under its bound but with failures says so. A mixed fleet shows every old image, not one. A
percentage is rounded the same way on every screen. Pure functions over plain data, shared by
the API, the dashboard and the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fleetwave.domain.vocabulary import devices

FINISHED_ROLLOUT_STATUSES = ("completed", "failed", "cancelled", "rolled_back")
# how many devices must have finished before a failure rate is judged, when the policy leaves
# it to fleetwave (failure_rate_min_devices unset): one failure in one device is 100 %
JUDGED_AFTER = 5


def percent_label(value: float | None, of: float = 100.0) -> str:
    """A share as a whole percentage, the same on every screen: ``value`` out of ``of``.

    Rounded to the nearest whole percent, except that only nothing is 0 % and only all is
    100 %: 199 of 200 reads 99 %, 1 of 500 reads 1 %.
    """
    if value is None:
        return "-"
    share = 100.0 * value / of if of else 0.0
    whole = math.floor(share + 0.5)
    if share > 0 and whole == 0:
        whole = 1
    elif share < 100 and whole == 100:
        whole = 99
    return f"{whole}%"


def failures(counts: Mapping[str, int]) -> int:
    """Devices the new image failed on, whether or not they were put back."""
    return sum(counts.get(s, 0) for s in ("failed", "rolled_back", "rollback_failed"))


def failure_clause(counts: Mapping[str, int], rolling_back: int = 0) -> str:
    """``"5 failures, all rolled back"``; ``"no failures"``; what was and was not put back
    (``rolling_back``: failed devices sent back that have not yet said they run the old image)."""
    total = failures(counts)
    if total == 0:
        return "no failures"
    back = counts.get("rolled_back", 0)
    stuck = counts.get("rollback_failed", 0)
    going = min(rolling_back, counts.get("failed", 0))
    left = counts.get("failed", 0) - going
    noun = "failure" if total == 1 else "failures"
    if back == total:
        return f"{total} {noun}, {'rolled back' if total == 1 else 'all rolled back'}"
    if left == total:
        return f"{total} {noun}, {'not rolled back' if total == 1 else 'none rolled back'}"
    parts = [f"{back} rolled back"] if back else []
    if going:
        parts.append(f"{going} being rolled back")
    if stuck:
        parts.append(f"{stuck} whose rollback failed")
    if left:
        parts.append(f"{left} not rolled back")
    return f"{total} {noun}: " + ", ".join(parts)


def outcome(status: str, counts: Mapping[str, int], rolling_back: int = 0) -> str | None:
    """How a finished rollout ended, failures included (``None`` while it runs).

    ``"completed with 5 failures, all rolled back"``: the status stays ``completed`` (it ended
    under its bound) but the sentence does not hide what failed.
    """
    if status not in FINISHED_ROLLOUT_STATUSES:
        return None
    if failures(counts) == 0:
        return status.replace("_", " ")
    return f"{status.replace('_', ' ')} with {failure_clause(counts, rolling_back)}"


def old_image_spread(by_tag: Mapping[str | None, int]) -> list[dict[str, Any]]:
    """The old images a rollout's devices came from, most devices first (one entry: one tag)."""
    ordered = sorted(by_tag.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    return [{"tag": tag, "devices": n} for tag, n in ordered if n]


def old_images_label(spread: list[dict[str, Any]]) -> str | None:
    """``"v1.1.0 (25), v1.0.0 (5)"`` when the devices came from more than one image."""
    if len(spread) < 2:
        return None
    return ", ".join(f"{entry['tag'] or 'none'} ({entry['devices']})" for entry in spread)


def trigger_label(triggered_by: str | None) -> str:
    """Who or what started a rollout, as a phrase: ``manual trigger by alice``, ``dockerhub
    webhook`` (``manual:<actor>`` since issue 15; ``manual`` alone before it)."""
    if not triggered_by:
        return "unknown trigger"
    kind, _, provider = triggered_by.partition(":")
    if kind == "manual":
        return f"manual trigger by {provider}" if provider else "manual trigger"
    if kind == "webhook" and provider:
        return f"{provider} webhook"
    return f"triggered by {triggered_by}"


def health_label(passed: bool | None, attempts: int) -> str:
    """``"passed"``, ``"failed after 3 attempts"``, ``"passed on attempt 2"``."""
    if passed is None:
        return "not checked"
    verdict = "passed" if passed else "failed"
    if attempts <= 1:
        return verdict
    return f"passed on attempt {attempts}" if passed else f"failed after {attempts} attempts"


def pause_reason(data: Mapping[str, Any] | None, message: str | None) -> str:
    """Who paused a rollout and why, from its ``rollout_paused`` event."""
    data = data or {}
    if data.get("auto"):
        rate, bound = data.get("failure_rate"), data.get("max_failure_rate")
        failed, finished = data.get("failed"), data.get("finished")
        if None in (rate, bound, failed, finished):
            return "paused by the failure gate"
        return (
            f"paused by the failure gate: failure rate {percent_label(rate, 1)} "
            f"({failed} of {finished} finished) is above the {percent_label(bound, 1)} bound"
        )
    if data.get("by"):
        note = f": {data['note']}" if data.get("note") else ""
        return f"paused by {data['by']}{note}"
    return message or "paused"


def offline_note(offline: int, of: int) -> str | None:
    """``"2 of them offline"`` beside the devices a batch waits on."""
    if not offline:
        return None
    if offline == of:
        return "all offline" if of > 1 else "offline"
    return f"{offline} of them offline"


def judged_after(explicit: int | None, first_batch: int) -> int:
    """Finished devices before the failure gate judges a rate: the policy's number, or
    min(5, the first batch's size) — a rate of 1 in 1 is noise, and a canary of 3 must still be
    judged before batch 2 starts."""
    if explicit is not None:
        return explicit
    return max(1, min(JUDGED_AFTER, first_batch))


def waiting_devices(n: int, offline: int) -> str:
    """``"3 devices not finished, 2 of them offline"``."""
    note = offline_note(offline, n)
    return devices(n) + " not finished" + (f", {note}" if note else "")
