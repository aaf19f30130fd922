"""Main (R3.4): ticker band, market grid, $asset candlestick, news feed, alerts table, infra status."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from . import infra_panels, market_panels, news_panels
from .frame import MAIN, frame
from .palette import Palette
from .panels import at, data_table, status_colors
from .queries import sql

ALERTS_SQL = (
    "SELECT triggered_at AS time, asset, condition, threshold, value, status, channel FROM alert_events"
    " WHERE user_id = $user AND $__timeFilter(triggered_at) ORDER BY triggered_at DESC LIMIT 200"
)


def alerts_table(p: Palette) -> dash.Panel:
    return (
        data_table(p, "Alerts & events")
        .with_target(sql("ALERTS", ALERTS_SQL))
        .sort_by([cb.TableSortByFieldState().display_name("time").desc(True)])
        .override_by_name(
            "status",
            [
                DynamicConfigValue("mappings", status_colors(p, ok=("sent",), bad=("failed",))),
                DynamicConfigValue("custom.cellOptions", {"type": "color-text"}),
            ],
        )
    )


def build(p: Palette) -> dash.Dashboard:
    board = frame(MAIN, p, time_from="now-6h")
    placed = [
        (market_panels.ticker_band(p), at(0, 0, 24, 3)),
        (market_panels.market_grid(p), at(0, 3, 24, 7)),
        (market_panels.price_chart(p, "$asset · $exchange · $timeframe"), at(0, 10, 16, 13)),
        (news_panels.news_feed(p), at(16, 10, 8, 13)),
        (alerts_table(p), at(0, 23, 12, 9)),
    ]
    infra = [*infra_panels.gauges(p), infra_panels.network(p)]
    placed += [(panel, at(12 + 3 * i, 23, 3, 5)) for i, panel in enumerate(infra)]
    placed += [(infra_panels.containers(p), at(12, 28, 9, 4)), (infra_panels.uptime(p), at(21, 28, 3, 4))]
    for panel, pos in placed:
        board.with_panel(panel.grid_pos(pos))
    return board
