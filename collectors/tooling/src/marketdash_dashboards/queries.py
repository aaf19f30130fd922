"""Panel targets for our three datasources, and InfluxQL names taken from the collectors' schema.

The foundation SDK ships no InfluxDB or PostgreSQL query builders, so the two raw-query targets are
defined here as SDK `Dataquery` variants (they serialise through the SDK's encoder like its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import AnnotationQuery

from marketdash.core.schema import BUCKET_MARKETS, Measurement

from .datasources import INFLUXDB, POSTGRES, PROMETHEUS

# InfluxDB 2 maps each bucket to database=<bucket>, retention policy=autogen (DBRP) for InfluxQL: it keeps
# such a virtual mapping for every bucket.
RETENTION_POLICY = "autogen"
# The dashboards' variable naming the markets tier to read (variables.tier).
TIER_VARIABLE = "tier"

M = TypeVar("M")


@dataclass
class RawQuery(cogvariants.Dataquery):
    """A target as Grafana stores it: the SDK encoder calls to_json()."""

    payload: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return self.payload


@dataclass
class Built(cogbuilder.Builder[M]):
    """A model finished by hand (what the SDK's builders cannot express), handed on where a builder is
    expected: raw targets, SQL annotations, a variable with a field the builder has no setter for."""

    model: M

    def build(self) -> M:
        return self.model


Target = Built[cogvariants.Dataquery]


def influxql(ref_id: str, query: str, *, table: bool = False, alias: str | None = None) -> Target:
    payload: dict[str, object] = {
        "refId": ref_id,
        "datasource": {"type": INFLUXDB.type, "uid": INFLUXDB.uid},
        "query": query,
        "rawQuery": True,
        "resultFormat": "table" if table else "time_series",
    }
    if alias:
        payload["alias"] = alias
    return Target(RawQuery(payload))


def sql(ref_id: str, query: str) -> Target:
    return Target(
        RawQuery(
            {
                "refId": ref_id,
                "datasource": {"type": POSTGRES.type, "uid": POSTGRES.uid},
                "rawSql": query,
                "rawQuery": True,
                "editorMode": "code",
                "format": "table",
            }
        )
    )


def promql(ref_id: str, expr: str, *, legend: str = "", instant: bool = False) -> Target:
    payload: dict[str, object] = {
        "refId": ref_id,
        "datasource": {"type": PROMETHEUS.type, "uid": PROMETHEUS.uid},
        "expr": expr,
        "editorMode": "code",
        "range": not instant,
        "instant": instant,
    }
    if legend:
        payload["legendFormat"] = legend
    return Target(RawQuery(payload))


def source(measurement: Measurement) -> str:
    """`"bucket"."autogen"."measurement"`: fully qualified, so one InfluxQL datasource reads every bucket."""
    return f'"{measurement.bucket}"."{RETENTION_POLICY}"."{measurement.name}"'


def tiered_source(measurement: Measurement) -> str:
    """`"$tier"."autogen"."measurement"`: the markets tier whose reach covers the dashboard's range (the
    hidden variable `tier`), for a query over the range; its latest values stay in the raw bucket."""
    if measurement.bucket != BUCKET_MARKETS:
        raise ValueError(f"{measurement.name} is in {measurement.bucket!r}, which has no downsampled tiers")
    return f'"${TIER_VARIABLE}"."{RETENTION_POLICY}"."{measurement.name}"'


def name(measurement: Measurement, key: str) -> str:
    """A quoted tag or field of `measurement`; refuses a name the schema does not declare."""
    if key not in measurement.tags and key not in measurement.fields:
        raise KeyError(f"{measurement.name} has no tag or field {key!r}")
    return f'"{key}"'


class SqlAnnotation(AnnotationQuery):
    """Events from PostgreSQL drawn on every time axis (R6.1); the SDK's AnnotationTarget has no rawSql."""

    def __init__(self, name: str, icon_color: str, query: str) -> None:
        super().__init__(name=name, datasource=POSTGRES.ref(), enable=True, icon_color=icon_color)
        self.query = query

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload["target"] = {"refId": "Anno", "rawSql": self.query, "format": "table", "editorMode": "code"}
        return payload


Annotation = Built[AnnotationQuery]
