"""Schemathesis over the OpenAPI document the server serves, against a running server on SQLite
and on PostgreSQL: every operation gets valid and invalid requests (half of them naming things
that exist: the seeded device, policy, key, rollout), sent with the credentials the operation
needs. The bar: no 5xx, and every documented answer matches its schema.

Every failure of every operation is collected before the test fails, so one run lists them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e.served import Served, served

__all__ = ["served"]

EXAMPLES_PER_MODE = 50  # per operation: 50 valid and 50 invalid requests
"""How many requests per operation and generation mode (valid, invalid); the run's time grows
with it: about a minute per backend at 50."""

NOT_CALLED = {
    # an endless text/event-stream; the fuzz corpus test sends it its hostile queries
    ("GET", "/api/v1/events/stream"),
}


@dataclass
class Findings:
    """What the run saw: the cases sent, their statuses, and the failures (one kept per
    operation and kind of failure, with the request that shows it)."""

    cases: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def fail(self, operation: str, kind: str, shown_by: str) -> None:
        self.failures.setdefault((operation, kind), shown_by)

    def report(self) -> str:
        lines = [f"{len(self.failures)} failures in {self.cases} cases:"]
        lines += [
            f"- {op}: {kind}\n  {shown}" for (op, kind), shown in sorted(self.failures.items())
        ]
        return "\n".join(lines)


def test_no_operation_answers_5xx_or_breaks_its_response_schema(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.base}/openapi.json")
    findings = Findings()
    http = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, "the OpenAPI document lost its operations"
    for operation in operations:
        if (operation.method.upper(), operation.path) not in NOT_CALLED:
            exercise(operation, served, http, findings)

    called = {op for op, _ in findings.statuses}
    expected = {label(op) for op in operations} - {f"{m} {p}" for m, p in NOT_CALLED}
    assert called == expected, f"operations never called: {expected - called}"
    print(f"schemathesis: {findings.cases} cases over {len(called)} operations")
    assert not findings.failures, findings.report()


def exercise(
    operation: APIOperation, served: Served, http: requests.Session, found: Findings
) -> None:
    """Send ``EXAMPLES_PER_MODE`` valid and as many invalid requests to ``operation``."""
    headers = served.headers_for(operation.path)
    real = served.real_path_values()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        # None: the generated path values; a number: which real thing to name instead
        cases = st.tuples(
            operation.as_strategy(generation_mode=mode), st.none() | st.integers(0, 2)
        )

        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(drawn=cases)
        def send(drawn: tuple[Case, int | None]) -> None:
            case, pick = drawn
            if pick is not None:
                use_real_path_values(case, real, pick)
            call_and_check(case, headers, http, found)

        try:
            send()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing of it can be invalid (/healthz)


def use_real_path_values(case: Case, real: dict[str, list[str]], pick: int) -> None:
    parameters = case.path_parameters or {}
    for name in parameters:
        if name in real:
            parameters[name] = real[name][pick % len(real[name])]


def call_and_check(
    case: Case, headers: dict[str, str], http: requests.Session, found: Findings
) -> None:
    op, curl = label(case.operation), case.as_curl_command(headers=headers)
    found.cases += 1
    try:
        response = case.call(session=http, headers=headers, timeout=15)
    except requests.RequestException as exc:
        found.fail(op, f"no answer ({type(exc).__name__})", curl)
        return
    found.statuses[(op, response.status_code)] += 1
    if response.status_code >= 500:
        found.fail(
            op,
            f"{response.status_code}",
            f"{case.as_curl_command(headers=headers)}\n  -> {response.text[:300]}",
        )
    try:
        case.validate_response(response, checks=[response_schema_conformance], headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            found.fail(
                op, describe(failure, response.status_code), case.as_curl_command(headers=headers)
            )
    except Failure as failure:
        found.fail(
            op, describe(failure, response.status_code), case.as_curl_command(headers=headers)
        )


def describe(failure: Any, status: int) -> str:
    return f"{status} breaks its response schema: {failure.title}"


def label(operation: APIOperation) -> str:
    return f"{operation.method.upper()} {operation.path}"
