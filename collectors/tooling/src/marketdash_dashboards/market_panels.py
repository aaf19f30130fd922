"""Market panels used by several dashboards: ticker band, market grid, candlestick with SMA and volume."""

# Query text here is built from the schema's constant names for Grafana to send, never from input.
# ruff: noqa: S608

from __future__ import annotations

from grafana_foundation_sdk.builders import candlestick, stat
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models.candlestick import CandleStyle, ColorStrategy, VizDisplayMode
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    PercentChangeColorMode,
)

from marketdash.core.schema import CANDLE, TICKER

from .palette import Palette
from .panels import color_override, fixed
from .plugins import BUSINESS_TEXT
from .queries import Target, influxql, name, source, tiered_source


def candle_where() -> str:
    """The focused asset's candles over the range. No `interval` condition: each tier holds candles of one
    width (the feeder's 1 m, then 5 m and 1 h), aggregated to $timeframe at query time."""
    return f"{name(CANDLE, 'symbol')} = '$asset' AND {name(CANDLE, 'source')} = '$exchange' AND $timeFilter"


def ohlcv_targets(timeframe: str, *, tiered: bool = True) -> list[Target]:
    """OHLCV at `timeframe` from the stored candles (of the range's tier, or the raw 1 m ones), plus SMA 20
    and SMA 50 of the close at the same width."""
    where = candle_where()
    candles = tiered_source(CANDLE) if tiered else source(CANDLE)
    ohlcv = (
        f"SELECT first({name(CANDLE, 'open')}) AS open, max({name(CANDLE, 'high')}) AS high,"
        f" min({name(CANDLE, 'low')}) AS low, last({name(CANDLE, 'close')}) AS close,"
        f" sum({name(CANDLE, 'volume')}) AS volume"
        f" FROM {candles} WHERE {where} GROUP BY time({timeframe}) fill(none)"
    )
    # Table format: one frame whose columns are named exactly open/high/low/close/volume, the names the
    # candlestick maps by; time-series format would name them `candle.open`….
    targets = [influxql("OHLCV", ohlcv, table=True)]
    for period in (20, 50):
        sma = (
            f"SELECT moving_average(last({name(CANDLE, 'close')}), {period}) AS sma{period}"
            f" FROM {candles} WHERE {where} GROUP BY time({timeframe}) fill(none)"
        )
        targets.append(influxql(f"SMA{period}", sma, table=True))
    return targets


def price_chart(
    p: Palette, title: str, timeframe: str = "$timeframe", *, tiered: bool = True
) -> candlestick.Panel:
    """Grafana's native candlestick (no plugin): candles + volume; SMA columns drawn via includeAllFields."""
    panel = (
        candlestick.Panel()
        .title(title)
        .mode(VizDisplayMode.CANDLES_VOLUME)
        .candle_style(CandleStyle.CANDLES)
        .color_strategy(ColorStrategy.OPEN_CLOSE)
        .colors(candlestick.CandlestickColors().up(p.gain).down(p.loss).flat(p.flat))
        .fields(
            candlestick.CandlestickFieldMap()
            .open("open")
            .high("high")
            .low("low")
            .close("close")
            .volume("volume")
        )
        .include_all_fields(True)
        .color_scheme(fixed(p.text))
        .line_width(1)
        .override_by_name("sma20", color_override(p.sma_fast))
        .override_by_name("sma50", color_override(p.sma_slow))
        .override_by_name("volume", color_override(p.volume))
        .interval(timeframe)
    )
    for target in ohlcv_targets(timeframe, tiered=tiered):
        panel.with_target(target)
    return panel


LAST_PRICES = (
    f"SELECT last({name(TICKER, 'last')}) AS price, last({name(TICKER, 'change_pct_24h')}) AS change"
    f" FROM {source(TICKER)} WHERE {name(TICKER, 'symbol')} =~ /^$assets$/ AND $timeFilter"
    f" GROUP BY {name(TICKER, 'symbol')}"
)

# Business Text 5+/6 hands `context.handlebars` to the helpers code; names are prefixed to stay clear of
# the plugin's own helpers.
_TICKER_HELPERS = """\
const num = (v) => Number(v);
context.handlebars.registerHelper('md_dir', (v) => (num(v) >= 0 ? 'up' : 'down'));
context.handlebars.registerHelper('md_arrow', (v) => (num(v) >= 0 ? '▲+' : '▼'));
context.handlebars.registerHelper('md_pct', (v) => num(v).toFixed(2) + '%');
context.handlebars.registerHelper('md_price', (v) =>
  num(v).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: num(v) < 10 ? 4 : 2 }));
"""

_TICKER_ITEMS = (
    '{{#each data}}<span class="md-item md-{{md_dir change}}">'
    "<b>{{symbol}}</b> {{md_price price}} {{md_arrow change}}{{md_pct change}}</span>"
    '<span class="md-sep">|</span>'
    "{{/each}}"
)


def _ticker_css(p: Palette) -> str:
    # The items are rendered twice and the track moves by half its width: the loop has no visible seam.
    return f"""\
.md-ticker {{ overflow: hidden; white-space: nowrap; background: {p.background};
  border-top: 1px solid {p.border}; border-bottom: 1px solid {p.border};
  font-family: {p.font}; font-size: 1.1rem; }}
.md-track {{ display: inline-block; padding: 0.3em 0; animation: md-scroll 60s linear infinite; }}
.md-ticker:hover .md-track {{ animation-play-state: paused; }}
.md-item {{ padding: 0 0.8em; color: {p.text}; }}
.md-item b {{ color: {p.text}; }}
.md-up {{ color: {p.gain}; }}
.md-down {{ color: {p.loss}; }}
.md-sep {{ color: {p.border}; }}
@keyframes md-scroll {{ from {{ transform: translateX(0); }} to {{ transform: translateX(-50%); }} }}
@media (prefers-reduced-motion: reduce) {{ .md-track {{ animation: none; }} }}
"""


def ticker_band(p: Palette) -> dash.Panel:
    """R3.4's scrolling band: no native panel scrolls, so Business Text renders rows with a CSS animation."""
    options = {
        "renderMode": "allRows",
        "content": f'<div class="md-ticker"><div class="md-track">{_TICKER_ITEMS}{_TICKER_ITEMS}</div></div>',
        "defaultContent": '<div class="md-ticker"><span class="md-item">No prices yet</span></div>',
        "helpers": _TICKER_HELPERS,
        "styles": _ticker_css(p),
        "editor": {"format": "none", "language": "html"},
        "wrap": False,
        "contentPartials": [],
        "externalStyles": [],
        "externalScripts": [],
        "afterRender": "",
    }
    return (
        dash.Panel()
        .type(BUSINESS_TEXT)
        .title("")
        .transparent(True)
        .time_from("3d")
        .hide_time_override(True)
        .options(options)
        .with_target(influxql("PRICES", LAST_PRICES, table=True))
    )


def market_grid(p: Palette) -> stat.Panel:
    """One tile per watched asset: last price, 24 h sparkline and its coloured 24 h change."""
    query = (
        f"SELECT last({name(TICKER, 'last')}) AS price FROM {source(TICKER)}"
        f" WHERE {name(TICKER, 'symbol')} =~ /^$assets$/ AND $timeFilter"
        f" GROUP BY time($__interval), {name(TICKER, 'symbol')} fill(none)"
    )
    return (
        stat.Panel()
        .title("Markets · 24 h")
        .time_from("24h")
        .max_data_points(96)
        .with_target(influxql("GRID", query, alias="$tag_symbol"))
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .text_mode(BigValueTextMode.VALUE_AND_NAME)
        .show_percent_change(True)
        .percent_change_color_mode(PercentChangeColorMode.STANDARD)
        .color_scheme(fixed(p.text))
        .decimals(2)
    )
