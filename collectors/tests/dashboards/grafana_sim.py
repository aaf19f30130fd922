"""What Grafana does to a query before its datasource sees it: variable interpolation and macro expansion.

Grafana itself cannot run here (ENVIRONMENT.md), so the query-syntax tests hand real parsers (PostgreSQL,
InfluxDB 1.6's InfluxQL, promtool) the text Grafana would send. The rules below follow Grafana's
datasources: SQL quotes each value of a multi-value variable and joins them with commas; InfluxQL escapes
multi-value variables as a regex group `(a|b)`; single values go in raw. Anything this module does not know
(a new macro, a new variable) raises, so a dashboard change cannot slip past the parsers unexpanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# Example values for the dashboards' own variables, shaped like what Grafana would hold.
SAMPLE_VALUES: dict[str, list[str]] = {
    "user": ["1"],
    "watchlist": ["1", "2", "3"],
    "asset": ["BTC/USDT"],
    "assets": ["BTC/USDT", "ETH/USDT"],
    "held": ["BTC/USDT", "AAPL"],
    "exchange": ["binance"],
    "timeframe": ["5m"],
    "tier": ["markets"],
}
MULTI = {"watchlist", "assets", "held"}

# Grafana's global variables and the InfluxQL alias patterns: defined by Grafana, not by a dashboard.
GLOBALS = {
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__from",
    "__to",
    "__all",
    "__user",
    "__org",
    "__dashboard",
    "__value",
    "__data",
    "__field",
    "__series",
    "timeFilter",
    "__timeFilter",
}

# $name, ${name}, ${name:format}, ${name.path}, [[name]]
VARIABLE = re.compile(r"\$(\w+)|\$\{([\w.]+)(?::(\w+))?\}|\[\[(\w+)\]\]")
# Fixed range: 2026-11-26 00:00 to 06:00 UTC.
FROM_MS, TO_MS = 1_764_115_200_000, 1_764_136_800_000
FROM_ISO, TO_ISO = "2026-11-26T00:00:00Z", "2026-11-26T06:00:00Z"
BUILTIN_VALUES = {
    "__interval": "1m",
    "__rate_interval": "1m",
    "__range": "6h",
    "__user.login": "alice",
    "__from": str(FROM_MS),
    "__to": str(TO_MS),
}


def used_variables(text: str) -> set[str]:
    """Variable names a string refers to (`__user.login` counts as `__user`)."""
    names = set()
    for match in VARIABLE.finditer(text):
        name = next(group for group in match.groups() if group)
        names.add(name.split(".")[0])
    return names


def is_global(name: str) -> bool:
    return name in GLOBALS or name.startswith("tag_")


def _escape_regex(value: str) -> str:
    # Grafana's escapeRegex (@grafana/data), `/` included because InfluxQL delimits regexes with it.
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def _value(name: str, kind: str) -> str:
    if name in BUILTIN_VALUES:
        return BUILTIN_VALUES[name]
    if name not in SAMPLE_VALUES:
        raise KeyError(f"no sample value for ${name}: add one to grafana_sim.SAMPLE_VALUES")
    values = SAMPLE_VALUES[name]
    if name not in MULTI:
        return values[0]
    if kind == "sql":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if kind == "influxql":
        return "(" + "|".join(_escape_regex(v) for v in values) + ")"
    raise ValueError(f"multi-value ${name} in a {kind} query")


_SQL_MACROS = {
    re.compile(r"\$__timeFilter\((\w+)\)"): lambda m: f"{m.group(1)} BETWEEN '{FROM_ISO}' AND '{TO_ISO}'",
}
_INFLUXQL_MACROS = {re.compile(r"\$timeFilter\b"): lambda m: f"time >= {FROM_MS}ms and time <= {TO_MS}ms"}


def interpolate(query: str, kind: str) -> str:
    """The query as Grafana sends it for `kind` in {"sql", "influxql", "promql"}."""
    macros = {"sql": _SQL_MACROS, "influxql": _INFLUXQL_MACROS, "promql": {}}[kind]
    for pattern, expand in macros.items():
        query = pattern.sub(expand, query)
    leftover = re.search(r"\$__\w+\(", query)
    if leftover:
        raise KeyError(f"macro {leftover.group(0)} is not simulated: teach grafana_sim.py")

    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return _value(name, kind)

    return VARIABLE.sub(substitute, query)


# --- Walking a dashboard model ---------------------------------------------------------------------------

QUERY_KEYS = {"influxql": "query", "sql": "rawSql", "promql": "expr"}
KIND_BY_TYPE = {"influxdb": "influxql", "grafana-postgresql-datasource": "sql", "prometheus": "promql"}


def walk(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def queries(model: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, kind, query text) for every panel target, variable and annotation of a dashboard."""
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            kind = KIND_BY_TYPE[variable["datasource"]["type"]]
            yield f"variable {variable['name']}", kind, variable["query"]
    for annotation in model.get("annotations", {}).get("list", []):
        if "target" in annotation:
            kind = KIND_BY_TYPE[annotation["datasource"]["type"]]
            yield f"annotation {annotation['name']}", kind, annotation["target"][QUERY_KEYS[kind]]
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            kind = KIND_BY_TYPE[target["datasource"]["type"]]
            yield (
                f"panel {panel['id']} {panel.get('title')!r} {target['refId']}",
                kind,
                target[QUERY_KEYS[kind]],
            )
