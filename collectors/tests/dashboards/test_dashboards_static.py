"""Every committed dashboard passes the static checks, and each check catches the break it is there for."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from dashboard_checks import (
    datasource_problems,
    influxql_schema_problems,
    layout_problems,
    link_problems,
    palette_problems,
    panel_type_problems,
    schema_problems,
    variable_problems,
)
from dashboard_fixtures import committed_models

import marketdash_dashboards
from marketdash_dashboards.palette import PALETTES

MODELS = committed_models()
CHECKS = (
    datasource_problems,
    variable_problems,
    panel_type_problems,
    schema_problems,
    palette_problems,
    layout_problems,
)


@pytest.mark.parametrize("filename", sorted(MODELS))
@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_committed_dashboard_passes(filename: str, check):
    assert check(MODELS[filename]) == []


def test_links_reach_dashboards_and_uids_and_titles_are_unique():
    assert len(MODELS) == 12
    assert link_problems(MODELS) == []


def _main() -> dict[str, Any]:
    return copy.deepcopy(MODELS["main-classic.json"])


def _panel(model: dict[str, Any], panel_type: str) -> dict[str, Any]:
    return next(panel for panel in model["panels"] if panel["type"] == panel_type)


def test_an_unprovisioned_datasource_is_caught():
    model = _main()
    _panel(model, "candlestick")["targets"][0]["datasource"] = {"type": "influxdb", "uid": "influx-old"}
    assert any("influx-old" in problem for problem in datasource_problems(model))
    model = _main()
    # Right UID, wrong plugin type: Grafana would not find it either.
    _panel(model, "table")["datasource"] = {"type": "postgres-typo", "uid": "postgres"}
    assert datasource_problems(model)


def test_an_undefined_variable_is_caught():
    model = _main()
    target = _panel(model, "candlestick")["targets"][0]
    target["query"] = target["query"].replace("$asset", "$symbol")
    assert any("$symbol" in problem for problem in variable_problems(model))
    model = _main()
    model["templating"]["list"] = [v for v in model["templating"]["list"] if v["name"] != "exchange"]
    assert any("$exchange" in problem for problem in variable_problems(model))


def test_a_panel_type_neither_native_nor_pinned_is_caught():
    model = _main()
    _panel(model, "candlestick")["type"] = "grafana-candlestick-panel"
    assert panel_type_problems(model)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            'SELECT last("last") FROM "markets"."autogen"."tickers" WHERE $timeFilter',
            "'tickers' is not in the schema",
        ),
        (
            'SELECT last("price") FROM "markets"."autogen"."ticker" WHERE $timeFilter',
            "'price' is not a tag or field",
        ),
        (
            'SELECT last("last") FROM "markets"."autogen"."ticker" GROUP BY "exchange"',
            "'exchange' is not a tag",
        ),
        ('SELECT last("last") FROM "news"."autogen"."ticker" WHERE $timeFilter', "lives in markets.autogen"),
        ('SELECT mean(close) FROM "markets"."autogen"."candle"', "unquoted identifier 'close'"),
        (
            'SELECT "last" FROM "markets"."autogen"."ticker" WHERE symbol = \'X\'',
            "unquoted identifier 'symbol'",
        ),
        ('SELECT title FROM "news"."autogen"."news"', "unquoted identifier 'title'"),
        ("SELECT 1", "names no measurement"),
        ('SHOW TAG VALUES ON "markets" FROM "candle" WITH KEY = "exchange"', "'exchange' is not a tag"),
    ],
)
def test_a_name_the_schema_does_not_define_is_caught(query: str, expected: str):
    assert any(expected in problem for problem in influxql_schema_problems(query))


def test_schema_check_reads_the_dashboard_queries():
    model = _main()
    target = _panel(model, "candlestick")["targets"][0]
    target["query"] = target["query"].replace('"volume"', '"vol"')
    assert any("'vol'" in problem for problem in schema_problems(model))


def test_a_colour_outside_the_palette_is_caught():
    model = _main()
    _panel(model, "candlestick")["options"]["colors"]["up"] = "#00ff00"
    assert any("#00ff00" in problem for problem in palette_problems(model))
    model["tags"] = ["marketdash"]
    assert palette_problems(model)


def test_overlapping_or_overflowing_panels_are_caught():
    model = _main()
    model["panels"][1]["gridPos"] = dict(model["panels"][0]["gridPos"])
    assert any("overlaps" in problem for problem in layout_problems(model))
    model = _main()
    model["panels"][0]["gridPos"]["w"] = 25
    assert any("24-column" in problem for problem in layout_problems(model))


def test_a_link_to_nowhere_and_a_duplicate_uid_are_caught():
    models = {name: copy.deepcopy(model) for name, model in MODELS.items()}
    models["main-classic.json"]["links"][1]["url"] = "/d/md-main-sepia?theme=light"
    models["infra-light.json"]["uid"] = models["infra-classic.json"]["uid"]
    problems = link_problems(models)
    assert any("md-main-sepia" in problem for problem in problems)
    assert any("used twice" in problem for problem in problems)


def test_refresh_rates_and_variables_of_r3():
    for filename, model in MODELS.items():
        expected = "5s" if filename.startswith("main-") else "30s"
        assert model["refresh"] == expected, filename
        names = [variable["name"] for variable in model["templating"]["list"]]
        assert {"asset", "timeframe", "exchange", "user", "watchlist"} <= set(names), filename
        timeframe = next(v for v in model["templating"]["list"] if v["name"] == "timeframe")
        assert timeframe["query"] == "1m,5m,15m,1h,4h,1d"
    assert json.dumps(MODELS["main-classic.json"]).count('"type": "candlestick"') == 1


def test_generator_imports_only_the_schema_and_itself():
    """DESIGN.md: the dashboard generator depends on the schema module and its own palette, nothing else."""
    package = Path(marketdash_dashboards.__file__).parent
    imported = set()
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.split(".")[0] == "marketdash"}
    assert ours == {"marketdash.core.schema"}


def test_classic_look_is_r32_and_each_look_sets_its_grafana_theme():
    classic = next(p for p in PALETTES if p.name == "Bloomberg Classic")
    assert (classic.background, classic.text, classic.gain, classic.loss, classic.border) == (
        "#0a0a0a",
        "#ff8c00",
        "#00d4aa",
        "#ff3b3b",
        "#1a1a2e",
    )
    assert "IBM Plex Mono" in classic.font
    assert {p.key: p.grafana_theme for p in PALETTES} == {
        "classic": "gloom",
        "light": "light",
        "trading": "matrix",
    }
    for p in PALETTES:
        ticker = MODELS[f"main-{p.key}.json"]["panels"][0]
        assert ticker["type"] == "marcusolsson-dynamictext-panel"
        css = ticker["options"]["styles"]
        assert f".md-up {{ color: {p.gain}; }}" in css
        assert f".md-down {{ color: {p.loss}; }}" in css
        assert "@keyframes md-scroll" in css
        switch = [link["url"] for link in MODELS[f"main-{p.key}.json"]["links"] if link["type"] == "link"]
        assert sorted(switch) == sorted(
            [f"/d/md-main-{o.key}?theme={o.grafana_theme}" for o in PALETTES if o != p]
            + [f"/d/md-main-{p.key}?kiosk&theme={p.grafana_theme}"]
        )
