"""What one browser asks of Grafana for a dashboard: the edge's rate limits are sized from it.

The rule, from Grafana's documented frontend behaviour, applied to the provisioned JSON:
- at every auto-refresh, one query request per panel that has queries (panels do not share a request
  unless they use the Dashboard datasource, which these do not; a panel of the Mixed datasource sends one
  per datasource its queries use; a panel in a collapsed row asks nothing until it is opened), one per
  enabled annotation query (Grafana adds its built-in "Annotations & Alerts" query, enabled, to a
  dashboard that lacks one), and one per query variable that refreshes on a time-range change (an
  auto-refresh of a relative range is one);
- on load, the same panel and annotation requests, one per query variable whatever its refresh, and the
  page itself with the calls Grafana's frontend makes to start (the dashboard's JSON, the user, the
  preferences, search, plugin settings). Those start-up calls are an estimate (`STARTUP_REQUESTS`): no
  Grafana runs where this project is developed and tested, so they have not been counted on a live one.
Static files (`/public/`) are left out: the edge does not rate-limit them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variable.refresh in Grafana's JSON model: 1 on dashboard load, 2 on time-range change.
_ON_TIME_RANGE_CHANGE = 2
_DASHBOARD_DATASOURCE = "-- Dashboard --"
_MIXED_DATASOURCE = "-- Mixed --"
# The page, the dashboard's JSON and the frontend's start-up API calls: an estimate, see the docstring.
STARTUP_REQUESTS = 12
_REFRESH = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Traffic:
    uid: str
    refresh_seconds: float | None
    per_refresh: int
    on_load: int

    def per_second(self, people: int) -> float:
        """Sustained requests per second from `people` browsers showing this dashboard."""
        if self.refresh_seconds is None:
            return 0.0
        return people * self.per_refresh / self.refresh_seconds


@dataclass(frozen=True)
class Budget:
    """What one client address must be allowed for `people` behind it to never be refused."""

    rate_per_second: int
    burst: int


def _panels(panels: list[Mapping[str, Any]], collapsed: bool = False) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _panels(panel.get("panels", []), collapsed=bool(panel.get("collapsed")))
        elif not collapsed:
            yield panel


def _uid(datasource: Mapping[str, Any] | str | None) -> str | None:
    # Older dashboards name the datasource by a bare string.
    return datasource if isinstance(datasource, str) or datasource is None else datasource.get("uid")


def _requests(panel: Mapping[str, Any]) -> int:
    targets = panel.get("targets") or []
    datasource = _uid(panel.get("datasource"))
    if not targets or datasource == _DASHBOARD_DATASOURCE:
        return 0
    if datasource == _MIXED_DATASOURCE:
        return len({_uid(target.get("datasource")) for target in targets})
    return 1


def _seconds(refresh: str) -> float | None:
    if not refresh:
        return None
    match = _REFRESH.match(refresh)
    if match is None:
        raise ValueError(f"unreadable refresh interval {refresh!r} (expected e.g. 5s, 1m, 1h)")
    return int(match[1]) * _SECONDS[match[2]]


def traffic(dashboard: Mapping[str, Any]) -> Traffic:
    panels = sum(_requests(panel) for panel in _panels(dashboard.get("panels", [])))
    listed = dashboard.get("annotations", {}).get("list", [])
    annotations = sum(1 for annotation in listed if annotation.get("enable", True))
    if not any(annotation.get("builtIn") for annotation in listed):
        annotations += 1
    variables = [v for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]
    refreshed = sum(1 for v in variables if v.get("refresh") == _ON_TIME_RANGE_CHANGE)
    return Traffic(
        uid=dashboard["uid"],
        refresh_seconds=_seconds(dashboard.get("refresh") or ""),
        per_refresh=panels + annotations + refreshed,
        on_load=STARTUP_REQUESTS + panels + annotations + len(variables),
    )


def of_directory(directory: Path) -> list[Traffic]:
    """Each provisioned dashboard's traffic, from the JSON files of `directory`."""
    return [traffic(json.loads(path.read_text())) for path in sorted(directory.glob("*.json"))]


def budget(dashboards: Iterable[Traffic], people: int, headroom: float = 1.25) -> Budget:
    """The rate and burst for `people` behind one address, at the worst: the rate drains the busiest
    dashboard's refreshes with `headroom` to spare, and the burst holds every browser refreshing the
    most demanding dashboard and, at the same instant, loading the heaviest one (the start-up calls are an
    estimate: this is their margin)."""
    counted = list(dashboards)
    return Budget(
        rate_per_second=math.ceil(max(one.per_second(people) for one in counted) * headroom),
        burst=people * (max(one.on_load for one in counted) + max(one.per_refresh for one in counted)),
    )
