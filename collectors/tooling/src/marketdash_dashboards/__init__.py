"""Grafana dashboards as code: `python -m marketdash_dashboards` writes the JSON that Grafana provisions.

Imports only `marketdash.core.schema` (names of measurements, tags and fields) and this package's own
palette, per DESIGN.md, so a rename in the collectors' schema shows up here at generation time.
"""
