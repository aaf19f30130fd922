"""Deep Dive (R3.5): one asset at several timeframes, its quote, funding and news, and how it moves."""

# Query text here is built from the schema's constant names for Grafana to send, never from input.
# ruff: noqa: S608

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import histogram, timeseries
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue, FieldColorModeId

from marketdash.core.schema import CANDLE, CHANGE, FUNDING, MARKET_CAP, TICKER, Measurement

from . import market_panels, news_panels
from .frame import DEEP_DIVE, frame
from .palette import Palette
from .panels import at, big_number, color_override, fixed
from .queries import influxql, name, source, tiered_source

# Fixed widths beside the $timeframe chart: the same asset from hours to a week at a glance. Each has a
# range of its own, within the raw bucket's week: they read it whatever tier the dashboard's range picks.
FIXED_TIMEFRAMES = (("15m", "2d"), ("1h", "7d"), ("4h", "7d"))


def _where(measurement: Measurement) -> str:
    return f"{name(measurement, 'symbol')} = '$asset' AND $timeFilter"


def quote(p: Palette) -> timeseries.Panel:
    """Best bid and ask: the top of the book, which is the depth the feeders collect."""
    query = (
        f"SELECT last({name(TICKER, 'bid')}) AS bid, last({name(TICKER, 'ask')}) AS ask"
        f" FROM {tiered_source(TICKER)}"
        f" WHERE {_where(TICKER)} AND {name(TICKER, 'source')} = '$exchange'"
        " GROUP BY time($__interval) fill(previous)"
    )
    return (
        timeseries.Panel()
        .title("Top of book · bid / ask")
        .with_target(influxql("QUOTE", query))
        .color_scheme(fixed(p.text))
        .override_by_name("bid", color_override(p.gain))
        .override_by_name("ask", color_override(p.loss))
        .line_width(1)
    )


def funding(p: Palette) -> timeseries.Panel:
    query = (
        f"SELECT last({name(FUNDING, 'rate')}) * 100 AS funding FROM {tiered_source(FUNDING)}"
        f" WHERE {_where(FUNDING)} GROUP BY time($__interval), {name(FUNDING, 'source')} fill(none)"
    )
    return (
        timeseries.Panel()
        .title("Funding rate % (perpetuals)")
        .with_target(influxql("FUNDING", query, alias="$tag_source"))
        .color_scheme(fixed(p.sma_slow))
        .unit("percent")
        .decimals(4)
    )


def market_cap(p: Palette) -> dash.Panel:
    query = (
        f"SELECT last({name(MARKET_CAP, 'market_cap_usd')}) AS cap"
        f" FROM {source(MARKET_CAP)} WHERE {_where(MARKET_CAP)}"
    )
    return big_number(p, "Market cap").with_target(influxql("CAP", query)).unit("currencyUSD").time_from("2d")


def co_movement(p: Palette) -> timeseries.Panel:
    """24 h change of every watched asset on one axis, $asset emphasised: who moves with it, who against.

    A correlation coefficient is not computed (InfluxQL has no correlation function); the lines show it.
    """
    query = (
        f"SELECT last({name(CHANGE, 'change_pct_24h')}) AS change FROM {tiered_source(CHANGE)}"
        f" WHERE {name(CHANGE, 'symbol')} =~ /^$assets$/ AND $timeFilter"
        f" GROUP BY time($__interval), {name(CHANGE, 'symbol')} fill(none)"
    )
    return (
        timeseries.Panel()
        .title("Co-movement · 24 h change % of the watchlist")
        .with_target(influxql("MOVES", query, alias="$tag_symbol"))
        .color_scheme(dash.FieldColor().mode(FieldColorModeId.SHADES).fixed_color(p.flat))
        .override_by_name("$asset", [*color_override(p.text), DynamicConfigValue("custom.lineWidth", 3)])
        .unit("percent")
        .line_width(1)
    )


def price_distribution(p: Palette) -> histogram.Panel:
    """Time spent at each price (closes of the range's tier): a volume-weighted profile needs a feeder-side
    aggregate."""
    query = (
        f"SELECT {name(CANDLE, 'close')} AS close"
        f" FROM {tiered_source(CANDLE)} WHERE {market_panels.candle_where()}"
    )
    return (
        histogram.Panel()
        .title("Price distribution (time at price)")
        .with_target(influxql("DIST", query))
        .color_scheme(fixed(p.text))
        .bucket_count(40)
        .fill_opacity(60)
    )


def build(p: Palette) -> dash.Dashboard:
    board = frame(DEEP_DIVE, p, time_from="now-24h")
    placed = [
        (market_panels.price_chart(p, "$asset · $exchange · $timeframe"), at(0, 0, 16, 12)),
        (price_distribution(p), at(16, 0, 8, 12)),
    ]
    placed += [
        (
            market_panels.price_chart(p, f"$asset · {width}", timeframe=width, tiered=False).time_from(span),
            at(8 * i, 12, 8, 9),
        )
        for i, (width, span) in enumerate(FIXED_TIMEFRAMES)
    ]
    placed += [
        (quote(p), at(0, 21, 12, 8)),
        (funding(p), at(12, 21, 8, 8)),
        (market_cap(p), at(20, 21, 4, 8)),
        (co_movement(p), at(0, 29, 16, 9)),
        (news_panels.sentiment_trend(p), at(16, 29, 8, 9)),
    ]
    for panel, pos in placed:
        board.with_panel(panel.grid_pos(pos))
    return board
