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

# The exchanges' regular sessions in their own time zones (lunch breaks where they have one), weekends
# closed; public holidays and half days are not known here, so a holiday shows OPEN. Computed by
# PostgreSQL from its clock and time-zone database: no clock plugin, and daylight saving comes right.
SESSIONS_SQL = """WITH markets (n, market, zone, opens, closes, lunch_from, lunch_to) AS (VALUES
  (1, 'New York', 'America/New_York', time '09:30', time '16:00', NULL::time, NULL::time),
  (2, 'London', 'Europe/London', time '08:00', time '16:30', NULL, NULL),
  (3, 'Frankfurt', 'Europe/Berlin', time '09:00', time '17:30', NULL, NULL),
  (4, 'Tokyo', 'Asia/Tokyo', time '09:00', time '15:30', time '11:30', time '12:30'),
  (5, 'Hong Kong', 'Asia/Hong_Kong', time '09:30', time '16:00', time '12:00', time '13:00')
), here AS (
  SELECT n, market, opens, closes, lunch_from, lunch_to, now() AT TIME ZONE zone AS local FROM markets
)
SELECT market, to_char(local, 'Dy HH24:MI') AS "local time",
  CASE
    WHEN extract(isodow FROM local) > 5 THEN 'CLOSED'
    WHEN local::time >= lunch_from AND local::time < lunch_to THEN 'LUNCH'
    WHEN local::time >= opens AND local::time < closes THEN 'OPEN'
    ELSE 'CLOSED'
  END AS session
FROM here ORDER BY n"""


def market_sessions(p: Palette) -> dash.Panel:
    return (
        data_table(p, "Market sessions")
        .with_target(sql("SESSIONS", SESSIONS_SQL))
        .override_by_name(
            "session",
            [
                DynamicConfigValue("mappings", status_colors(p, ok=("OPEN",), bad=("CLOSED",))),
                DynamicConfigValue("custom.cellOptions", {"type": "color-text"}),
            ],
        )
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
        (alerts_table(p), at(0, 23, 8, 9)),
        (market_sessions(p), at(8, 23, 4, 9)),
    ]
    infra = [*infra_panels.gauges(p), infra_panels.network(p)]
    placed += [(panel, at(12 + 3 * i, 23, 3, 5)) for i, panel in enumerate(infra)]
    placed += [(infra_panels.containers(p), at(12, 28, 9, 4)), (infra_panels.uptime(p), at(21, 28, 3, 4))]
    for panel, pos in placed:
        board.with_panel(panel.grid_pos(pos))
    return board
