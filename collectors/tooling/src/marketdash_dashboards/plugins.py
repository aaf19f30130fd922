"""Panel types the dashboards may use: Grafana's native panels, and the plugins the Grafana role pins."""

from __future__ import annotations

# Native to Grafana 11/12: no install needed, nothing to pin. Candlestick is native since 8.3, which is why
# the dashboards do not use any candlestick plugin.
NATIVE_PANELS: frozenset[str] = frozenset(
    {
        "barchart",
        "bargauge",
        "candlestick",
        "gauge",
        "histogram",
        "piechart",
        "row",
        "stat",
        "state-timeline",
        "table",
        "text",
        "timeseries",
    }
)

# Plugin id -> exact version the Grafana role installs (GF_PLUGINS_PREINSTALL_SYNC=id@version).
# Business Text 6.x is the Grafana Labs fork (same id), built for Grafana 11 and 12; it renders the ticker
# band, which no native panel can do (no marquee panel: grafana/grafana#98396).
PINNED_PLUGINS: dict[str, str] = {"marcusolsson-dynamictext-panel": "6.2.0"}

BUSINESS_TEXT = "marcusolsson-dynamictext-panel"
