"""Host and container health from Prometheus (node-exporter, cAdvisor, the scrape targets themselves)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import gauge, stat
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode, BigValueTextMode

from .palette import Palette
from .panels import big_number, by_thresholds, fixed, load_levels, up_down
from .queries import promql

CPU = '100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval])))'
RAM = "100 * (1 - sum(node_memory_MemAvailable_bytes) / sum(node_memory_MemTotal_bytes))"
DISK = (
    '100 * (1 - sum(node_filesystem_avail_bytes{mountpoint="/", fstype!="rootfs"})'
    ' / sum(node_filesystem_size_bytes{mountpoint="/", fstype!="rootfs"}))'
)
NET_IN = 'sum(rate(node_network_receive_bytes_total{device!~"lo|veth.*|docker.*|br-.*"}[$__rate_interval]))'
NET_OUT = 'sum(rate(node_network_transmit_bytes_total{device!~"lo|veth.*|docker.*|br-.*"}[$__rate_interval]))'
UPTIME = "time() - max(node_boot_time_seconds)"
# cAdvisor refreshes container_last_seen on every housekeeping pass: a container silent for a minute is gone.
CONTAINERS_UP = 'max by (name) (time() - container_last_seen{name!=""} < bool 60)'
TARGETS_UP = "up"
# How much of its alert's allowance each kind of backup has used since its last good run (100: BackupTooOld).
# Capped at 1000 %: a backup that never succeeded is "0 s since 1970".
BACKUP_ALLOWANCE_USED = (
    "clamp_max(100 * (time() - max by (instance, kind, repository)"
    " (bloomberg_backup_last_success_timestamp_seconds)) / on (instance, kind) group_left"
    " max by (instance, kind) (bloomberg_backup_max_age_seconds), 1000)"
)


def usage_gauge(p: Palette, title: str, expr: str) -> gauge.Panel:
    return (
        gauge.Panel()
        .title(title)
        .with_target(promql("A", expr, instant=True))
        .unit("percent")
        .min(0)
        .max(100)
        .decimals(1)
        .thresholds(load_levels(p))
        .color_scheme(by_thresholds())
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def gauges(p: Palette) -> list[gauge.Panel]:
    return [usage_gauge(p, "CPU", CPU), usage_gauge(p, "RAM", RAM), usage_gauge(p, "Disk /", DISK)]


def network(p: Palette) -> stat.Panel:
    return (
        big_number(p, "Network")
        .with_target(promql("IN", NET_IN, legend="in"))
        .with_target(promql("OUT", NET_OUT, legend="out"))
        .unit("Bps")
        .graph_mode(BigValueGraphMode.AREA)
    )


def uptime(p: Palette) -> stat.Panel:
    return big_number(p, "Uptime").with_target(promql("A", UPTIME, instant=True)).unit("s").decimals(0)


def up_tiles(p: Palette, title: str, expr: str, legend: str) -> stat.Panel:
    """One UP/DOWN tile per container or scrape target, coloured gain/loss."""
    return (
        stat.Panel()
        .title(title)
        .with_target(promql("A", expr, legend=legend, instant=True))
        .mappings(up_down(p))
        .color_scheme(fixed(p.text))
        .color_mode(BigValueColorMode.BACKGROUND_SOLID)
        .graph_mode(BigValueGraphMode.NONE)
        .text_mode(BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def containers(p: Palette) -> stat.Panel:
    return up_tiles(p, "Containers", CONTAINERS_UP, "{{name}}")


def targets(p: Palette) -> stat.Panel:
    return up_tiles(p, "Scrape targets", TARGETS_UP, "{{job}}")


def backups(p: Palette) -> stat.Panel:
    """One tile per kind of backup and repository: the share of its allowed age used (the alert at 100 %)."""
    return (
        big_number(p, "Backups: age, % of the allowed")
        .with_target(
            promql("A", BACKUP_ALLOWANCE_USED, legend="{{instance}} {{kind}} → {{repository}}", instant=True)
        )
        .unit("percent")
        .decimals(0)
        .thresholds(load_levels(p))
        .color_scheme(by_thresholds())
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
