"""Reading the Grafana dashboard's PromQL: which metrics each query names, and which of those
the server does not export (shared by the unit test and the integration test of /metrics)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "fleetwave-dashboard.json"

# PromQL's functions and aggregations (a name before "(" must be one of them) and keywords.
FUNCTIONS = {
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log2",
    "log10",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "predict_linear",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev",
    "stdvar",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*\w+\s*\)")


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels(panel)  # rows may nest their panels


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every target's ``expr``, and the templating variables' queries."""
    found = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if "expr" in t]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        found.append(query["query"] if isinstance(query, dict) else str(query or ""))
    return [q for q in found if q]


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, functions) a PromQL expression uses; Grafana's ``label_values(m, l)``
    names metric ``m``."""
    metrics = set(_LABEL_VALUES.findall(expr))
    expr = _LABEL_VALUES.sub(" ", expr)
    for pattern in (_STRINGS, _MATCHERS, _RANGES, _GROUPING):
        expr = pattern.sub(" ", expr)
    functions = set()
    for name, call in _NAMES.findall(expr):
        if call:
            functions.add(name)
        elif name.lower() not in KEYWORDS:
            metrics.add(name)
    return metrics, functions


def exported_names(exposition: str) -> tuple[set[str], set[str]]:
    """(names a query may use, histogram names) from a Prometheus text exposition: a counter
    ``x`` as ``x_total``, a histogram ``h`` as ``h`` (and its suffixes), a gauge as itself."""
    names, histograms = set(), set()
    for family in text_string_to_metric_families(exposition):
        if family.type == "counter":
            names.add(f"{family.name}_total")
        else:
            names.add(family.name)
        if family.type == "histogram":
            histograms.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names, histograms


def unknown_names(exprs: Iterable[str], exposition: str) -> set[str]:
    """Metrics the queries name that the exposition lacks, and functions PromQL lacks."""
    exported, histograms = exported_names(exposition)
    unknown = set()
    for expr in exprs:
        metrics, functions = names_in(expr)
        unknown |= {f"{f}()" for f in functions - FUNCTIONS}
        for metric in metrics:
            base = next(
                (metric.removesuffix(s) for s in HISTOGRAM_SUFFIXES if metric.endswith(s)), metric
            )
            if metric not in exported and base not in histograms:
                unknown.add(metric)
    return unknown
