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
from datetime import UTC, datetime
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
# Fixed range: 2025-11-26 00:00 to 06:00 UTC.
FROM_MS, TO_MS = 1_764_115_200_000, 1_764_136_800_000
# Grafana's own values that the range and the login do not set (interpolate's arguments do).
BUILTIN_VALUES = {"__interval": "1m", "__rate_interval": "1m", "__range": "6h"}


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


def _value(name: str, kind: str, values: Mapping[str, list[str]], builtins: Mapping[str, str]) -> str:
    if name in builtins:
        return builtins[name]
    if name not in values:
        raise KeyError(f"no sample value for ${name}: add one to grafana_sim.SAMPLE_VALUES")
    chosen = values[name]
    if name not in MULTI:
        return chosen[0]
    if kind == "sql":
        return ",".join("'" + v.replace("'", "''") + "'" for v in chosen)
    if kind == "influxql":
        return "(" + "|".join(_escape_regex(v) for v in chosen) + ")"
    raise ValueError(f"multi-value ${name} in a {kind} query")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def interpolate(
    query: str,
    kind: str,
    *,
    values: Mapping[str, list[str]] = SAMPLE_VALUES,
    range_ms: tuple[int, int] = (FROM_MS, TO_MS),
    login: str = "alice",
) -> str:
    """The query as Grafana sends it for `kind` in {"sql", "influxql", "promql"}: the variables holding
    `values`, the dashboard showing `range_ms`, `login` logged in."""
    start, end = range_ms
    macros = {
        "sql": {re.compile(r"\$__timeFilter\((\w+)\)"): rf"\1 BETWEEN '{_iso(start)}' AND '{_iso(end)}'"},
        "influxql": {re.compile(r"\$timeFilter\b"): f"time >= {start}ms and time <= {end}ms"},
        "promql": {},
    }[kind]
    for pattern, expansion in macros.items():
        query = pattern.sub(expansion, query)
    leftover = re.search(r"\$__\w+\(", query)
    if leftover:
        raise KeyError(f"macro {leftover.group(0)} is not simulated: teach grafana_sim.py")
    builtins = {**BUILTIN_VALUES, "__from": str(start), "__to": str(end), "__user.login": login}

    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return _value(name, kind, values, builtins)

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
