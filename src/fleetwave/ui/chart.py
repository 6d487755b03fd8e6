"""The rollout page's failure-rate chart, drawn on the server as inline SVG.

Pure functions: the times at which devices finished (and whether they failed) become a series
of points, and the series becomes SVG markup. No JavaScript, no chart library, nothing fetched
from elsewhere; the page's stylesheet colours it (the Content-Security-Policy forbids inline
styles, so colours are presentation attributes and classes).

Top panel: the failure rate after each finished device, against the rollout's bound (a dashed
line). Bottom panel: devices finished over time, and how many of them failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from fleetwave.domain.rollout_figures import percent_label

WIDTH, HEIGHT = 640, 250
LEFT, RIGHT = 48, 12  # room for the y labels, and a margin
RATE_TOP, RATE_BOTTOM = 14, 118  # the failure-rate panel
COUNT_TOP, COUNT_BOTTOM = 146, 218  # the devices-finished panel
AXIS_Y = 236  # the time labels


@dataclass(frozen=True)
class Point:
    at: datetime
    finished: int  # devices finished by then
    failed: int  # of which failed

    @property
    def rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


def series(finishes: Sequence[tuple[datetime, bool]]) -> list[Point]:
    """Running totals after each finish (finishes oldest first); one point per instant."""
    points: list[Point] = []
    failed = 0
    for finished, (at, did_fail) in enumerate(finishes, start=1):
        failed += did_fail
        if points and points[-1].at == at:
            points[-1] = Point(at, finished, failed)
        else:
            points.append(Point(at, finished, failed))
    return points


def rate_ceiling(points: Sequence[Point], bound: float | None) -> float:
    """The top of the rate panel: the highest rate or the bound with room above, in tenths."""
    highest = max([p.rate for p in points] + [bound or 0.0, 0.1])
    return min(1.0, (int(highest * 1.25 * 10 - 1e-9) + 1) / 10)


def failure_chart(
    points: Sequence[Point],
    bound: float | None,
    total: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Markup:
    """The chart as an ``<svg>`` element; without any finished device, a sentence instead."""
    if not points:
        return Markup('<p class="subtle" data-chart-empty>No device has finished yet.</p>')
    first = min(start or points[0].at, points[0].at)
    last = max(end or points[-1].at, points[-1].at)
    span = (last - first).total_seconds() or 1.0
    ceiling = rate_ceiling(points, bound)

    def x(at: datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (at - first).total_seconds() / span

    def y_rate(rate: float) -> float:
        return RATE_BOTTOM - (RATE_BOTTOM - RATE_TOP) * min(rate, ceiling) / ceiling

    def y_count(n: int) -> float:
        return COUNT_BOTTOM - (COUNT_BOTTOM - COUNT_TOP) * n / max(total, 1)

    parts = [
        f'<svg class="chart" data-chart="failure-rate" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(_summary(points, bound, total))}</title>',
        *_frame(ceiling, total),
        _step_path("rate", [(x(p.at), y_rate(p.rate)) for p in points], x(last)),
        _step_path("finished", [(x(p.at), y_count(p.finished)) for p in points], x(last)),
        _step_path("failed", [(x(p.at), y_count(p.failed)) for p in points], x(last)),
    ]
    if bound is not None:
        y = _n(y_rate(bound))
        parts += [
            f'<line class="bound" data-bound="{bound:g}" x1="{LEFT}" y1="{y}" '
            f'x2="{WIDTH - RIGHT}" y2="{y}" stroke="#d2463c" stroke-dasharray="6 4"/>',
            f'<text class="bound-label" x="{WIDTH - RIGHT}" y="{_n(y_rate(bound) - 4)}" '
            f'text-anchor="end">bound {percent_label(bound, 1)}</text>',
        ]
    parts += [
        f'<text class="axis" x="{LEFT}" y="{AXIS_Y}">{first:%H:%M:%S}</text>',
        f'<text class="axis" x="{WIDTH - RIGHT}" y="{AXIS_Y}" text-anchor="end">'
        f"{last:%H:%M:%S} (+{_duration(span)})</text>",
        "</svg>",
    ]
    # numbers and times we formatted, and the title, escaped above: nothing else is text
    return Markup("\n".join(parts))  # noqa: S704


def _frame(ceiling: float, total: int) -> list[str]:
    """Both panels' axes and their labels."""
    right = WIDTH - RIGHT
    return [
        f'<text class="panel-label" x="{LEFT}" y="{RATE_TOP - 4}">failure rate</text>',
        f'<text class="panel-label" x="{LEFT}" y="{COUNT_TOP - 4}">'
        "devices finished (failed below)</text>",
        f'<line class="axis-line" x1="{LEFT}" y1="{RATE_BOTTOM}" x2="{right}" y2="{RATE_BOTTOM}" '
        'stroke="#dde2ea"/>',
        f'<line class="axis-line" x1="{LEFT}" y1="{COUNT_BOTTOM}" x2="{right}" '
        f'y2="{COUNT_BOTTOM}" stroke="#dde2ea"/>',
        f'<text class="axis" x="{LEFT - 6}" y="{RATE_TOP + 4}" text-anchor="end">'
        f"{percent_label(ceiling, 1)}</text>",
        f'<text class="axis" x="{LEFT - 6}" y="{RATE_BOTTOM}" text-anchor="end">0%</text>',
        f'<text class="axis" x="{LEFT - 6}" y="{COUNT_TOP + 4}" text-anchor="end">{total}</text>',
        f'<text class="axis" x="{LEFT - 6}" y="{COUNT_BOTTOM}" text-anchor="end">0</text>',
    ]


def _step_path(name: str, points: list[tuple[float, float]], right: float) -> str:
    """A step line: each value holds until the next point, the last one to the right edge."""
    x0, y0 = points[0]
    steps = [f"M{_n(x0)},{_n(y0)}"]
    for x, y in points[1:]:
        steps.append(f"H{_n(x)}V{_n(y)}")
    steps.append(f"H{_n(right)}")
    colour = {"rate": "#2f5bd3", "finished": "#2e9d5b", "failed": "#d2463c"}[name]
    return (
        f'<path class="{name}" data-series="{name}" d="{"".join(steps)}" fill="none" '
        f'stroke="{colour}" stroke-width="2"/>'
    )


def _summary(points: Sequence[Point], bound: float | None, total: int) -> str:
    last = points[-1]
    against = f" against a bound of {percent_label(bound, 1)}" if bound is not None else ""
    return (
        f"Failure rate {percent_label(last.rate, 1)}{against}: {last.failed} of "
        f"{last.finished} finished devices failed; {last.finished} of {total} devices finished"
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
