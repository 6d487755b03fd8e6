"""The failure-rate chart: a series of finishes in, inline SVG out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from fleetwave.ui.chart import Point, failure_chart, rate_ceiling, series

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_series_keeps_running_totals_one_point_per_instant() -> None:
    finishes = [(at(0), False), (at(10), True), (at(10), False), (at(30), True)]
    assert series(finishes) == [
        Point(at(0), 1, 0),
        Point(at(10), 3, 1),
        Point(at(30), 4, 2),
    ]
    assert series([]) == []
    assert Point(at(0), 4, 1).rate == 0.25 and Point(at(0), 0, 0).rate == 0.0


@pytest.mark.parametrize(
    ("rates", "bound", "ceiling"),
    [
        pytest.param([0.0, 0.05], 0.2, 0.3, id="the bound with room above"),
        pytest.param([0.5], 0.2, 0.7, id="a rate above the bound"),
        pytest.param([1.0], 0.2, 1.0, id="never above 100%"),
        pytest.param([0.0], None, 0.2, id="no bound, no failure: 20%"),
    ],
)
def test_the_rate_panel_is_as_tall_as_what_it_shows(
    rates: list[float], bound: float | None, ceiling: float
) -> None:
    points = [Point(at(i), 100, round(rate * 100)) for i, rate in enumerate(rates)]
    assert rate_ceiling(points, bound) == pytest.approx(ceiling)


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 (our own markup)


def test_the_chart_is_an_svg_with_the_rate_the_bound_and_devices_finished() -> None:
    points = series([(at(0), False), (at(60), True), (at(120), False), (at(180), False)])
    svg = parsed(str(failure_chart(points, 0.2, 10, start=at(0), end=at(240))))
    assert svg.tag == f"{SVG}svg" and svg.get("data-chart") == "failure-rate"
    paths = {p.get("data-series"): p.get("d") for p in svg.iter(f"{SVG}path")}
    assert set(paths) == {"rate", "finished", "failed"}
    [bound] = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "bound"]
    assert bound.get("data-bound") == "0.2"
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "bound 20%" in texts and "03:00:00" in texts and "03:04:00 (+4 min 0 s)" in texts
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == (
        "Failure rate 25% against a bound of 20%: 1 of 4 finished devices failed; "
        "4 of 10 devices finished"
    )


def test_the_rate_line_steps_at_each_finish_and_runs_to_the_end() -> None:
    points = series([(at(0), True), (at(100), False)])
    svg = parsed(str(failure_chart(points, 0.5, 2, start=at(0), end=at(100))))
    rate = next(p for p in svg.iter(f"{SVG}path") if p.get("data-series") == "rate")
    # 100% at the start (the top of a 100% panel), 50% from the second finish on
    assert rate.get("d") == "M48,14H628V66H628"


def test_the_bound_line_sits_at_the_bound_on_the_rate_scale() -> None:
    points = series([(at(0), False), (at(10), False)])
    svg = parsed(str(failure_chart(points, 0.2, 2)))
    [bound] = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "bound"]
    # the panel runs from 118 (0%) up to 14 (its ceiling, 30%): 20% is two thirds of the way
    assert float(bound.get("y1") or 0) == pytest.approx(118 - 104 * 0.2 / 0.3, abs=0.1)


def test_without_a_bound_there_is_no_bound_line() -> None:
    svg = parsed(str(failure_chart(series([(at(0), False)]), None, 1)))
    assert not [line for line in svg.iter(f"{SVG}line") if line.get("class") == "bound"]


def test_no_finished_device_is_said_instead_of_an_empty_chart() -> None:
    assert "No device has finished yet." in str(failure_chart([], 0.2, 10))
