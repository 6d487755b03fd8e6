"""Reports give way to woken polls: ``PATCH /api/v1/device/state`` waits, before routing,
while held polls that a change woke are being answered (at most :data:`LONGEST_WAIT`).

A batch that starts wakes thousands of held polls, and every device that hears of its new
target reports at once. One process answers both on one event loop, and a report through the
framework costs several times a woken poll's answer: taken in arrival order, the reports of a
batch's first devices held up the answers to its last ones (5,000 answers took 2 s to send,
interleaved with the reports). A report's answer only acknowledges it, so it is the one that
waits; the new target is what the rollout waits for.
"""

from __future__ import annotations

from fleetwave.devices.fast_poll import ASGIApp, Receive, Scope, Send
from fleetwave.devices.target_watch import TargetWatch

REPORT_PATH = "/api/v1/device/state"
LONGEST_WAIT = 2.0  # seconds a report waits for woken polls at most


class ReportsGiveWay:
    def __init__(self, app: ASGIApp, watch: TargetWatch) -> None:
        self.app, self.watch = app, watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PATCH" and scope["path"] == REPORT_PATH:
            await self.watch.woken_answered(LONGEST_WAIT)
        await self.app(scope, receive, send)
