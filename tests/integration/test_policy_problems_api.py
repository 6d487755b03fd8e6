"""A policy with several problems is refused once, naming every one with its field."""

from __future__ import annotations

import httpx

FOUR_PROBLEMS = {
    "image_pattern": "iotistic/app:*",
    "max_failure_rate": 1.5,
    "maintenance_window_timezone": "Mars/Olympus_Mons",
    "batch_percentages": [50, 20, 100],
    "health_check_config": {"checks": [{"name": "web", "type": "smoke-signals"}]},
}
FIELDS = {
    "max_failure_rate",
    "maintenance_window_timezone",
    "batch_percentages",
    "health_check_config.checks[0].type",
}


async def test_creating_a_policy_with_four_problems_names_all_four(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/api/v1/image-policies", json=FOUR_PROBLEMS)

    assert answer.status_code == 422
    body = answer.json()
    assert {problem["field"] for problem in body["detail"]} == FIELDS
    assert all(field in body["error"] for field in FIELDS)
    assert (await client.get("/api/v1/image-policies")).json() == []


async def test_replacing_a_policy_with_four_problems_names_all_four_and_keeps_it(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/v1/image-policies", json={"image_pattern": "a/b:*"})
    policy_id = created.json()["id"]

    answer = await client.put(f"/api/v1/image-policies/{policy_id}", json=FOUR_PROBLEMS)

    assert answer.status_code == 422
    assert {problem["field"] for problem in answer.json()["detail"]} == FIELDS
    kept = (await client.get(f"/api/v1/image-policies/{policy_id}")).json()
    assert kept["image_pattern"] == "a/b:*"


async def test_each_problem_is_named_once_even_when_two_rules_read_the_same_checks(
    client: httpx.AsyncClient,
) -> None:
    # the checks are read by their own rule and by the metric windows' (with a timeout given)
    body = FOUR_PROBLEMS | {"health_check_timeout_seconds": 300}

    answer = await client.post("/api/v1/image-policies", json=body)

    assert answer.status_code == 422
    assert sorted(problem["field"] for problem in answer.json()["detail"]) == sorted(FIELDS)
