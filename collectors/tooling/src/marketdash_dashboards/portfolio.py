"""Portfolio (R3.6): positions from PostgreSQL valued at the last InfluxDB price, P&L, allocation, history.

PostgreSQL and InfluxDB cannot join in one query, so the valuation panels use Grafana's Mixed datasource:
one target per database, joined on `symbol` and computed by transformations in the browser.
"""

# Query text here is built from the schema's constant names for Grafana to send, never from input.
# ruff: noqa: S608

from __future__ import annotations

from typing import TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import piechart, stat, table, timeseries
from grafana_foundation_sdk.models.common import BigValueColorMode
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
    DynamicConfigValue,
    VariableHide,
    VariableRefresh,
)
from grafana_foundation_sdk.models.piechart import PieChartType

from marketdash.core.schema import CANDLE, TICKER

from .datasources import MIXED, POSTGRES
from .frame import PORTFOLIO, frame
from .palette import Palette
from .panels import at, by_thresholds, fixed, gain_loss, palette_colors
from .queries import influxql, name, source, sql, tiered_source

HELD_SQL = "SELECT DISTINCT asset FROM portfolio_positions WHERE user_id = $user ORDER BY 1"
# Several lots of one asset become one line at their weighted average price.
POSITIONS_SQL = (
    "SELECT asset AS symbol, sum(quantity) AS quantity,"
    " sum(quantity * avg_price) / nullif(sum(quantity), 0) AS avg_price, sum(quantity * avg_price) AS cost"
    " FROM portfolio_positions WHERE user_id = $user GROUP BY asset ORDER BY asset"
)
PRICES_INFLUXQL = (
    f"SELECT last({name(TICKER, 'last')}) AS price FROM {source(TICKER)}"
    f" WHERE {name(TICKER, 'symbol')} =~ /^$held$/ AND $timeFilter GROUP BY {name(TICKER, 'symbol')}"
)


def held() -> dash.QueryVariable:
    """The assets this user holds (hidden): prices are fetched for these, watched or not."""
    return (
        dash.QueryVariable("held")
        .label("Held")
        .datasource(POSTGRES.ref())
        .query(HELD_SQL)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .hide(VariableHide.HIDE_VARIABLE)
    )


def _binary(alias: str, left: str, operator: str, right: str) -> DataTransformerConfig:
    return DataTransformerConfig(
        id_val="calculateField",
        options={
            "mode": "binary",
            "alias": alias,
            "binary": {"left": left, "operator": operator, "right": right},
        },
    )


# Join positions and prices on symbol, then value them: market value, P&L, P&L ratio.
VALUATION = (
    DataTransformerConfig(id_val="joinByField", options={"byField": "symbol", "mode": "inner"}),
    _binary("market_value", "quantity", "*", "price"),
    _binary("pnl", "market_value", "-", "cost"),
    _binary("pnl_ratio", "pnl", "/", "cost"),
    DataTransformerConfig(id_val="organize", options={"excludeByName": {"time": True, "Time": True}}),
)

P = TypeVar("P", table.Panel, stat.Panel, piechart.Panel)


def _valued(panel: P) -> P:
    panel.datasource(MIXED.ref())
    panel.with_target(sql("POSITIONS", POSITIONS_SQL))
    panel.with_target(influxql("PRICES", PRICES_INFLUXQL, table=True))
    for step in VALUATION:
        panel.with_transformation(step)
    # Last price within 3 days: equities and FX keep a value over a weekend.
    return panel.time_from("3d").hide_time_override(True)


def _gain_loss_cells(p: Palette) -> list[DynamicConfigValue]:
    return [
        DynamicConfigValue("thresholds", gain_loss(p).build()),
        DynamicConfigValue("color", {"mode": "thresholds"}),
        DynamicConfigValue("custom.cellOptions", {"type": "color-text"}),
    ]


def positions(p: Palette) -> table.Panel:
    return (
        _valued(table.Panel().title("Positions · P&L"))
        .color_scheme(fixed(p.text))
        .decimals(2)
        .override_by_name("pnl", _gain_loss_cells(p))
        .override_by_name("pnl_ratio", [*_gain_loss_cells(p), DynamicConfigValue("unit", "percentunit")])
    )


def totals(p: Palette) -> stat.Panel:
    """Total market value and total P&L: the valued rows summed."""
    return (
        _valued(stat.Panel().title("Total"))
        .reduce_options(cb.ReduceDataOptions().calcs(["sum"]).values(False).fields("/^(market_value|pnl)$/"))
        .color_scheme(by_thresholds())
        .thresholds(gain_loss(p))
        .color_mode(BigValueColorMode.VALUE)
        .override_by_name(
            "market_value", [DynamicConfigValue("color", {"mode": "fixed", "fixedColor": p.text})]
        )
        .decimals(2)
    )


def allocation(p: Palette) -> piechart.Panel:
    overrides = [DynamicConfigValue("color", {"mode": "palette-classic"})]
    return (
        _valued(piechart.Panel().title("Allocation"))
        .pie_type(PieChartType.DONUT)
        .reduce_options(cb.ReduceDataOptions().values(True).fields("/^market_value$/").calcs([]))
        .override_by_name("market_value", overrides)
        .color_scheme(palette_colors())
    )


def history(p: Palette) -> timeseries.Panel:
    """Each held asset's close over the range; P&L over time would need a stored portfolio-value series."""
    query = (
        f"SELECT last({name(CANDLE, 'close')}) AS close FROM {tiered_source(CANDLE)}"
        f" WHERE {name(CANDLE, 'symbol')} =~ /^$held$/ AND $timeFilter"
        f" GROUP BY time($timeframe), {name(CANDLE, 'symbol')} fill(previous)"
    )
    return (
        timeseries.Panel()
        .title("Held assets · close")
        .with_target(influxql("HISTORY", query, alias="$tag_symbol"))
        .color_scheme(palette_colors())
        .line_width(1)
    )


def drawdown(p: Palette) -> table.Panel:
    """Distance of the last close below the range's high, per held asset (the current drawdown)."""
    query = (
        f"SELECT (max({name(CANDLE, 'high')}) - last({name(CANDLE, 'close')}))"
        f" / max({name(CANDLE, 'high')}) * 100"
        f" AS drawdown_pct FROM {tiered_source(CANDLE)}"
        f" WHERE {name(CANDLE, 'symbol')} =~ /^$held$/ AND $timeFilter"
        f" GROUP BY {name(CANDLE, 'symbol')}"
    )
    return (
        table.Panel()
        .title("Drawdown from range high %")
        .with_target(influxql("DRAWDOWN", query, table=True))
        .color_scheme(fixed(p.loss))
        .unit("percent")
        .decimals(2)
        .with_transformation(
            DataTransformerConfig(id_val="organize", options={"excludeByName": {"Time": True}})
        )
    )


def build(p: Palette) -> dash.Dashboard:
    board = frame(PORTFOLIO, p, time_from="now-7d").with_variable(held())
    placed = [
        (totals(p), at(0, 0, 8, 4)),
        (positions(p), at(0, 4, 8, 8)),
        (allocation(p), at(8, 0, 8, 12)),
        (drawdown(p), at(16, 0, 8, 12)),
        (history(p), at(0, 12, 24, 10)),
    ]
    for panel, pos in placed:
        board.with_panel(panel.grid_pos(pos))
    return board
