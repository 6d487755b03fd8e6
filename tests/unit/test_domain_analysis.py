"""A batch's Prometheus analysis: the query it runs, the verdict on Prometheus's answer, the
batch's state from its kept results, and what ``decide`` does with it — tables of cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.unit.test_domain_engine import DELAY, FIRST_DONE, NOW, snap

from fleetwave.domain.analysis import judge_answer, render_query, state
from fleetwave.domain.engine import FailBatch, FinishBatch, StartBatch, Wait, decide
from fleetwave.domain.health import CheckSpec, parse_checks


def check(**bounds: float) -> CheckSpec:
    raw = {"type": "prometheus", "url": "http://prom:9090", "query": "q"} | bounds
    return parse_checks([raw])[0]


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_the_query_names_the_rollout_batch_and_image() -> None:
    query = 'errors{rollout="{{rollout_id}}", batch="{{batch}}", image="{{image}}"}'
    assert render_query(query, "r-1", 2, "app:v2") == (
        'errors{rollout="r-1", batch="2", image="app:v2"}'
    )


@pytest.mark.parametrize(
    ("bounds", "answer", "passed", "error"),
    [
        ({"max": 0.05}, vector("0.01"), True, None),
        ({"max": 0.05}, vector("0.01", "0.2"), False, "0.2 is above max 0.05 for {'pod': 'p1'}"),
        ({"min": 1}, vector("0"), False, "0 is below min 1 for {'pod': 'p0'}"),
        ({"min": 1, "max": 3}, vector("2"), True, None),
        ({"max": 1}, vector(), False, "the query returned no data"),
        ({"max": 1}, vector("NaN"), False, "the value is not a number for {'pod': 'p0'}"),
        (
            {"max": 1},
            {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.5"]}},
            True,
            None,
        ),
        (
            {"max": 1},
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            False,
            "the answer holds no scalar or vector",
        ),
    ],
)
def test_the_verdict_on_prometheus_answer(
    bounds: dict[str, float], answer: dict[str, Any], passed: bool, error: str | None
) -> None:
    outcome = judge_answer(check(**bounds), "q", answer)
    assert outcome.passed is passed
    assert outcome.details.get("error") == error


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ({}, "waiting"),
        ({"prometheus-1": (True, False)}, "passed"),
        ({"prometheus-1": (False, False)}, "failed"),
        ({"prometheus-1": (False, True)}, "acted"),
    ],
)
def test_the_batch_state_from_its_kept_results(
    results: dict[str, tuple[bool, bool]], expected: str
) -> None:
    assert state([check(max=1)], results) == expected


def test_no_prometheus_check_is_no_analysis() -> None:
    assert state(parse_checks([{"type": "container_running"}]), {}) is None


FINISHED = NOW - DELAY  # the batch finished one soak ago


@pytest.mark.parametrize(
    ("analysis", "finished_at", "expected"),
    [
        (None, FINISHED, [StartBatch(2)]),
        ("waiting", NOW - timedelta(minutes=1), [Wait("Prometheus analysis")]),
        ("waiting", None, [FinishBatch(1), Wait("Prometheus analysis")]),
        ("waiting", FINISHED, [Wait("Prometheus analysis")]),  # due: asked before the turn
        ("passed", FINISHED, [StartBatch(2)]),
        ("failed", FINISHED, [FailBatch(1)]),
        ("acted", FINISHED, [StartBatch(2)]),  # an operator resumed after the failure
    ],
)
def test_decide_waits_for_the_analysis_and_fails_the_batch_on_a_failure(
    analysis: str | None, finished_at: datetime | None, expected: list[Any]
) -> None:
    snapshot = replace(snap(*FIRST_DONE, current=1, finished_at=finished_at), analysis=analysis)
    actual = decide(snapshot)
    assert [type(a) for a in actual] == [type(e) for e in expected], actual
    for got, want in zip(actual, expected, strict=True):
        if isinstance(want, Wait):
            assert isinstance(got, Wait) and want.reason in got.reason
        else:
            assert got == want


def test_the_last_batch_waits_for_its_analysis_before_the_rollout_completes() -> None:
    last = replace(snap({"completed": 1}, current=1, finished_at=NOW), analysis="waiting")
    assert isinstance(decide(last)[-1], Wait)
    assert type(decide(replace(last, analysis="passed"))[-1]).__name__ == "Complete"
    paused = replace(last, status="paused", analysis="failed")
    assert not any(isinstance(a, FailBatch) for a in decide(paused))
