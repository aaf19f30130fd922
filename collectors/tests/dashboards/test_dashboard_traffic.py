"""What a browser asks of Grafana per dashboard, counted from its JSON (the edge's limits are sized on it)."""

from __future__ import annotations

from typing import Any

import pytest

from marketdash_dashboards.traffic import STARTUP_REQUESTS, Traffic, budget, traffic


def panel(**fields: Any) -> dict[str, Any]:
    return {"type": "timeseries", "targets": [{"refId": "A"}, {"refId": "B"}], **fields}


def variable(refresh: int, kind: str = "query") -> dict[str, Any]:
    return {"type": kind, "refresh": refresh}


def dashboard(panels=(), variables=(), annotations=(), refresh: str = "5s") -> dict[str, Any]:
    return {
        "uid": "d",
        "refresh": refresh,
        "panels": list(panels),
        "templating": {"list": list(variables)},
        "annotations": {"list": list(annotations)},
    }


# Grafana adds its built-in annotation query to a dashboard that has none: one request per refresh.
BUILT_IN = 1


def test_each_panel_with_queries_is_one_request_whatever_its_number_of_queries():
    counted = traffic(dashboard([panel(), panel(), {"type": "text"}]))
    assert counted.per_refresh == 2 + BUILT_IN
    assert counted.on_load == STARTUP_REQUESTS + 2 + BUILT_IN


def test_panels_reading_another_panels_results_ask_nothing():
    shared = panel(datasource={"type": "datasource", "uid": "-- Dashboard --"})
    assert traffic(dashboard([panel(), shared])).per_refresh == 1 + BUILT_IN


def test_a_mixed_panel_asks_once_per_datasource_its_queries_use():
    targets = [{"datasource": {"uid": uid}} for uid in ("postgres", "influxdb", "postgres")]
    mixed = panel(datasource={"uid": "-- Mixed --"}, targets=targets)
    assert traffic(dashboard([mixed])).per_refresh == 2 + BUILT_IN


def test_a_datasource_named_by_a_bare_string_is_read_too():
    panels = [panel(datasource="-- Dashboard --"), panel(datasource="influx")]
    assert traffic(dashboard(panels)).per_refresh == 1 + BUILT_IN


def test_a_collapsed_rows_panels_ask_nothing_an_open_rows_do():
    rows = [
        {"type": "row", "collapsed": True, "panels": [panel(), panel()]},
        {"type": "row", "collapsed": False, "panels": [panel()]},
        panel(),
    ]
    assert traffic(dashboard(rows)).per_refresh == 2 + BUILT_IN


def test_variables_on_time_range_change_are_asked_again_at_every_refresh_the_others_only_on_load():
    counted = traffic(dashboard(variables=[variable(1), variable(2), variable(2), variable(0, "custom")]))
    assert counted.per_refresh == 2 + BUILT_IN
    assert counted.on_load == STARTUP_REQUESTS + 3 + BUILT_IN


def test_enabled_annotation_queries_count_disabled_ones_do_not():
    annotations = [{"enable": True}, {"enable": False}, {"builtIn": 1, "enable": True}, {}]
    assert traffic(dashboard(annotations=annotations)).per_refresh == 3


def test_grafana_adds_its_built_in_annotation_query_where_there_is_none():
    assert traffic(dashboard(annotations=[{"enable": True}])).per_refresh == 2
    assert traffic(dashboard(annotations=[{"builtIn": 1, "enable": False}])).per_refresh == 0


@pytest.mark.parametrize(
    ("refresh", "seconds"), [("500ms", 0.5), ("5s", 5), ("1m", 60), ("1h", 3600), ("1d", 86400), ("", None)]
)
def test_the_refresh_interval_is_read_in_seconds(refresh, seconds):
    assert traffic(dashboard([panel()], refresh=refresh)).refresh_seconds == seconds


def test_an_unreadable_refresh_interval_is_refused_with_its_value():
    with pytest.raises(ValueError, match="'5 sec'"):
        traffic(dashboard([panel()], refresh="5 sec"))


def test_a_dashboard_without_auto_refresh_sends_nothing_between_loads():
    assert traffic(dashboard([panel()], refresh="")).per_second(10) == 0.0


def test_the_budget_drains_the_busiest_refresh_and_holds_everyone_refreshing_and_loading_at_once():
    busy = Traffic(uid="busy", refresh_seconds=5, per_refresh=16, on_load=30)
    heavy = Traffic(uid="heavy", refresh_seconds=30, per_refresh=19, on_load=33)
    needed = budget([busy, heavy], people=10)
    # 10 people x 16 requests / 5 s = 32/s, with a quarter to spare.
    assert needed.rate_per_second == 40
    # 10 people x (the heaviest load, 33, + the largest refresh, 19).
    assert needed.burst == 520
