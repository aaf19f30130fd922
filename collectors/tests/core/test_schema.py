"""The schema module: line protocol encoding and the rules that keep the data portable to InfluxDB 3."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from marketdash.core import schema
from marketdash.core.schema import CANDLE, TICKER, Measurement, SchemaError

INFLUXDB_DEFAULTS = Path(__file__).resolve().parents[3] / "roles" / "influxdb" / "defaults" / "main.yml"


def test_line_has_sorted_escaped_tags_typed_fields_and_ms_time() -> None:
    line = TICKER.line(
        {"symbol": "BTC/USDT", "source": "my exch,a=b"},
        {"last": 67234.5, "bid": None, "volume_24h": 12},
        1_700_000_000_123,
    )
    assert line == r"ticker,source=my\ exch\,a\=b,symbol=BTC/USDT last=67234.5,volume_24h=12.0 1700000000123"


def test_bool_int_and_string_fields_are_encoded_as_influx_types() -> None:
    news_like = Measurement(
        "probe", schema.BUCKET_CUSTOM, ("kind",), {"n": int, "ok": bool, "title": str}, "test only"
    )
    line = news_like.line({"kind": "x"}, {"n": 3, "ok": True, "title": 'say "hi" \\o/'}, 5)
    assert line == r'probe,kind=x n=3i,ok=true,title="say \"hi\" \\o/" 5'


@pytest.mark.parametrize(
    ("tags", "fields", "message"),
    [
        ({"exchange": "binance"}, {"close": 1.0}, "unknown tag"),
        ({"symbol": ""}, {"close": 1.0}, "non-empty string"),
        ({"symbol": "BTC/USDT"}, {"price": 1.0}, "unknown field"),
        ({"symbol": "BTC/USDT"}, {"close": "1.0"}, "expected float"),
        ({"symbol": "BTC/USDT"}, {"close": math.nan}, "not finite"),
        ({"symbol": "BTC/USDT"}, {"backfilled": 1}, "expected bool"),
        ({"symbol": "BTC/USDT"}, {"close": None}, "at least one field"),
    ],
)
def test_bad_points_get_a_clear_error(tags: dict, fields: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        CANDLE.line(tags, fields, 0)


def test_registered_schema_has_no_tag_field_clash_and_no_reserved_name() -> None:
    tags = {tag for m in schema.MEASUREMENTS.values() for tag in m.tags}
    fields = {name for m in schema.MEASUREMENTS.values() for name in m.fields}
    assert not tags & fields
    assert not (tags | fields) & {"time", "_field", "_measurement", "_value"}
    assert all(m.bucket in schema.BUCKETS for m in schema.MEASUREMENTS.values())
    assert {"candle", "ticker", "price_change", "market_cap", "funding_rate"} <= set(schema.MEASUREMENTS)


def test_the_influxdb_role_creates_the_schemas_buckets_and_tiers_and_no_other() -> None:
    defaults = yaml.safe_load(INFLUXDB_DEFAULTS.read_text(encoding="utf-8"))
    assert [bucket["name"] for bucket in defaults["influxdb_buckets"]] == [
        *schema.BUCKETS,
        *schema.MARKETS_TIERS,
    ]
    # Each retention is "{{ influxdb_retention_<tier> }}": the variable's value.
    retention = {
        bucket["name"]: int(defaults[re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", bucket["retention_seconds"])[1]])
        for bucket in defaults["influxdb_buckets"]
    }
    assert [(tier.bucket, tier.reach_s) for tier in schema.MARKET_TIERS] == [
        (tier.bucket, retention[tier.bucket]) for tier in schema.MARKET_TIERS
    ]
    assert [tier.bucket for tier in schema.MARKET_TIERS] == [schema.BUCKET_MARKETS, *schema.MARKETS_TIERS]
    downsampling = [(task["source"], task["target"]) for task in defaults["influxdb_downsampling"]]
    assert downsampling == [
        (schema.BUCKET_MARKETS, schema.BUCKET_MARKETS_5M),
        (schema.BUCKET_MARKETS_5M, schema.BUCKET_MARKETS_1H),
    ]


@pytest.mark.parametrize(
    ("measurement", "message"),
    [
        (Measurement("probe", "markets", ("close",), {"x": float}, ""), "tag in one measurement"),
        (Measurement("probe", "markets", ("y",), {"symbol": float}, ""), "tag in one measurement"),
        (Measurement("probe", "markets", ("a",), {"a": float}, ""), "both tag and field"),
        (Measurement("probe", "markets", ("time",), {"x": float}, ""), "reserved"),
        (Measurement("probe", "prices", ("a",), {"x": float}, ""), "bucket"),
        (Measurement("candle", "markets", ("a",), {"x": float}, ""), "twice"),
    ],
)
def test_register_refuses_what_would_clash(measurement: Measurement, message: str) -> None:
    before = dict(schema.MEASUREMENTS)
    with pytest.raises(SchemaError, match=message):
        schema.register(measurement)
    assert before == schema.MEASUREMENTS
