"""Infra Monitor (R3.7): host, containers, scrape targets, the collectors' own InfluxDB pipeline, and the
collectors' view of the outside: reconnects, failed polls, how long each source has been silent.

Collector logs are not here: the stack has no log store Grafana could query (see docs/dashboards.md).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import timeseries

from . import infra_panels
from .frame import INFRA, frame
from .palette import Palette
from .panels import at, fixed, palette_colors
from .queries import promql

# Metrics of marketdash.core.influx.InfluxWriter (prometheus_client adds `_total` to counters).
POINTS_WRITTEN = "sum by (job, bucket) (rate(marketdash_influx_points_written_total[$__rate_interval]))"
POINTS_DROPPED = "sum by (job, reason) (increase(marketdash_influx_points_dropped_total[$__rate_interval]))"
QUEUE = "sum by (job) (marketdash_influx_queue_points)"
LAG_P95 = (
    "histogram_quantile(0.95, sum by (job, le)"
    " (rate(marketdash_influx_event_to_write_lag_seconds_bucket[$__rate_interval])))"
)
WRITE_LATENCY_P95 = (
    "histogram_quantile(0.95, sum by (job, le)"
    " (rate(marketdash_influx_write_latency_seconds_bucket[$__rate_interval])))"
)
# How long each scrape takes: the network latency from Prometheus to every service it watches.
SCRAPE_LATENCY = "max by (job) (scrape_duration_seconds)"
# The market feeder's and the news feeder's metrics (marketdash.market.metrics, marketdash.news.metrics).
RECONNECTS = "sum by (source, reason) (increase(marketdash_market_reconnects_total[$__rate_interval]))"
FAILED_POLLS = "sum by (provider, reason) (increase(marketdash_market_poll_errors_total[$__rate_interval]))"
# The external APIs' health as the collectors see it: seconds since each source last answered.
STREAM_SILENCE = "time() - max by (source, stream) (marketdash_market_stream_last_message_timestamp_seconds)"
NEWS_SILENCE = "time() - max by (source) (marketdash_news_last_success_timestamp_seconds)"
CPU_BY_CONTAINER = 'sum by (name) (rate(container_cpu_usage_seconds_total{name!=""}[$__rate_interval]))'
MEMORY_BY_CONTAINER = 'sum by (name) (container_memory_working_set_bytes{name!=""})'


def series(p: Palette, title: str, unit: str, *targets: tuple[str, str, str]) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).color_scheme(palette_colors())
    for ref_id, expr, legend in targets:
        panel.with_target(promql(ref_id, expr, legend=legend))
    return panel.line_width(1).fill_opacity(10)


def build(p: Palette) -> dash.Dashboard:
    board = frame(INFRA, p, time_from="now-6h")
    host = [*infra_panels.gauges(p), infra_panels.network(p), infra_panels.uptime(p)]
    placed = [(panel, at(4 * i, 0, 4, 6)) for i, panel in enumerate(host)]
    placed += [
        (infra_panels.containers(p), at(0, 6, 12, 6)),
        (infra_panels.targets(p), at(12, 6, 12, 6)),
        (
            series(p, "Container CPU (cores)", "short", ("CPU", CPU_BY_CONTAINER, "{{name}}")),
            at(0, 12, 12, 8),
        ),
        (series(p, "Container memory", "bytes", ("MEM", MEMORY_BY_CONTAINER, "{{name}}")), at(12, 12, 12, 8)),
        (series(p, "Scrape latency by target", "s", ("SCRAPE", SCRAPE_LATENCY, "{{job}}")), at(0, 20, 12, 8)),
        (
            series(
                p,
                "InfluxDB writes: points/s, queue",
                "short",
                ("WRITTEN", POINTS_WRITTEN, "{{job}} {{bucket}}"),
                ("QUEUE", QUEUE, "{{job}} queued"),
            ),
            at(12, 20, 12, 8),
        ),
        (
            series(
                p,
                "Event → InfluxDB lag, write latency (p95)",
                "s",
                ("LAG", LAG_P95, "{{job}} lag"),
                ("LATENCY", WRITE_LATENCY_P95, "{{job}} write"),
            ),
            at(0, 28, 12, 8),
        ),
        (
            series(
                p, "Points dropped", "short", ("DROPPED", POINTS_DROPPED, "{{job}} {{reason}}")
            ).color_scheme(fixed(p.loss)),
            at(12, 28, 12, 8),
        ),
        (infra_panels.backups(p), at(0, 36, 24, 5)),
        (
            series(
                p,
                "Exchanges: reconnects, failed polls",
                "short",
                ("RECONNECTS", RECONNECTS, "{{source}} reconnect: {{reason}}"),
                ("POLLS", FAILED_POLLS, "{{provider}} poll: {{reason}}"),
            ).color_scheme(fixed(p.loss)),
            at(0, 41, 12, 8),
        ),
        (
            series(
                p,
                "Sources: seconds since their last data",
                "s",
                ("STREAMS", STREAM_SILENCE, "{{source}} {{stream}}"),
                ("NEWS", NEWS_SILENCE, "{{source}} news"),
            ),
            at(12, 41, 12, 8),
        ),
    ]
    for panel, pos in placed:
        board.with_panel(panel.grid_pos(pos))
    return board
