"""Every InfluxDB measurement the collectors write: its bucket, its tags, its fields, in one place.

The collectors write through these objects and the dashboard generator reads the names from them, so a
rename happens once. Rules kept here (and checked when a measurement is registered):
- tags are low-cardinality dimensions only (exchange, canonical symbol, asset class, interval); anything
  unbounded (URLs, headlines, ids) is a field;
- no name is both a tag and a field anywhere, and none is reserved by InfluxDB 2 or 3 (`time`, `_field`…),
  so the data moves to InfluxDB 3 (where tags and fields share one column namespace) unchanged;
- lines are encoded here, with InfluxDB's escaping rules, in milliseconds (the writer's precision).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ORG = "bloomberg"
# Buckets of the InfluxDB org (R1.1), the ones the collectors write.
BUCKET_MARKETS = "markets"
BUCKET_NEWS = "news"
BUCKET_INFRA = "infra"
BUCKET_CUSTOM = "custom"
BUCKETS = (BUCKET_MARKETS, BUCKET_NEWS, BUCKET_INFRA, BUCKET_CUSTOM)
# The markets bucket's downsampled tiers (30 d of 5 m windows, 1 y of 1 h windows): same measurements,
# tags and fields, written by the InfluxDB tasks of the influxdb role and never by a collector.
BUCKET_MARKETS_5M = "markets_5m"
BUCKET_MARKETS_1H = "markets_1h"
MARKETS_TIERS = (BUCKET_MARKETS_5M, BUCKET_MARKETS_1H)


@dataclass(frozen=True)
class Tier:
    """A bucket of market data and how far back it reaches (its retention): a chart whose range starts
    within `reach_s` of now reads it, else the next one."""

    bucket: str
    reach_s: int


_DAY_S = 86_400
# Finest first. The influxdb role's retentions (raw 7 d, downsampled 30 d, aggregated 1 y) say the same; a
# test compares them.
MARKET_TIERS = (
    Tier(BUCKET_MARKETS, 7 * _DAY_S),
    Tier(BUCKET_MARKETS_5M, 30 * _DAY_S),
    Tier(BUCKET_MARKETS_1H, 365 * _DAY_S),
)
# The precision of every timestamp a Series encodes, and so of the writer's requests.
PRECISION = "ms"

FieldType = type[float] | type[int] | type[bool] | type[str]
_RESERVED = frozenset(
    {"time", "_measurement", "_field", "_value", "_start", "_stop", "_time", "iox::measurement"}
)

# InfluxDB line protocol escaping (https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/).
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


class SchemaError(ValueError):
    """A point or a measurement breaks the schema: the message says which name and why."""


@dataclass(frozen=True)
class Measurement:
    name: str
    bucket: str
    tags: tuple[str, ...]
    fields: Mapping[str, FieldType]
    description: str
    _escaped: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        object.__setattr__(self, "_escaped", self.name.translate(_ESCAPE_MEASUREMENT))

    def series(self, **tags: str) -> Series:
        """The encoder of one series (one tag set): build it once per stream, then encode many points."""
        unknown = tags.keys() - set(self.tags)
        if unknown:
            raise SchemaError(f"{self.name}: unknown tag(s) {sorted(unknown)}; declared: {list(self.tags)}")
        parts = [self._escaped]
        # Sorted tag keys: the order InfluxDB stores them in, so it does no re-sorting per line.
        for key in sorted(tags):
            value = tags[key]
            if not isinstance(value, str) or not value:
                raise SchemaError(f"{self.name}: tag {key} must be a non-empty string, got {value!r}")
            parts.append(f"{key.translate(_ESCAPE_KEY)}={value.translate(_ESCAPE_KEY)}")
        return Series(self, ",".join(parts) + " ")

    def line(self, tags: Mapping[str, str], fields: Mapping[str, object], time_ms: int) -> str:
        return self.series(**tags).line(fields, time_ms)


@dataclass(frozen=True, slots=True)
class Series:
    measurement: Measurement
    prefix: str

    def line(self, fields: Mapping[str, object], time_ms: int) -> str:
        """One line of line protocol; fields whose value is None are left out (a quote without a bid)."""
        declared = self.measurement.fields
        encoded = []
        for key, value in fields.items():
            if value is None:
                continue
            kind = declared.get(key)
            if kind is None:
                raise SchemaError(
                    f"{self.measurement.name}: unknown field {key!r}; declared: {list(declared)}"
                )
            encoded.append(
                f"{key.translate(_ESCAPE_KEY)}={_encode_value(self.measurement.name, key, kind, value)}"
            )
        if not encoded:
            raise SchemaError(
                f"{self.measurement.name}: a point needs at least one field, got {dict(fields)!r}"
            )
        return f"{self.prefix}{','.join(encoded)} {int(time_ms)}"


def _encode_value(measurement: str, key: str, kind: FieldType, value: object) -> str:
    # bool before int: bool is a subclass of int and must not slip into an integer field, nor the reverse.
    if kind is bool:
        if isinstance(value, bool):
            return "true" if value else "false"
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return repr(number)
            raise SchemaError(f"{measurement}.{key}: {value!r} is not finite; line protocol has no NaN/inf")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}i"
    elif kind is str and isinstance(value, str):
        return f'"{value.translate(_ESCAPE_STRING)}"'
    raise SchemaError(f"{measurement}.{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")


MEASUREMENTS: dict[str, Measurement] = {}


def register(measurement: Measurement) -> Measurement:
    """Add a measurement to the schema, refusing anything that would clash in InfluxDB 2 or 3."""
    if measurement.name in MEASUREMENTS:
        raise SchemaError(f"measurement {measurement.name} is registered twice")
    if measurement.bucket not in BUCKETS:
        raise SchemaError(f"{measurement.name}: bucket {measurement.bucket!r} is not one of {BUCKETS}")
    names = set(measurement.tags) | set(measurement.fields)
    for name in names:
        if name in _RESERVED or not name or name.startswith("_"):
            raise SchemaError(f"{measurement.name}: {name!r} is reserved by InfluxDB")
    if set(measurement.tags) & set(measurement.fields):
        raise SchemaError(
            f"{measurement.name}: {set(measurement.tags) & set(measurement.fields)} both tag and field"
        )
    all_tags = {tag for other in MEASUREMENTS.values() for tag in other.tags}
    all_fields = {name for other in MEASUREMENTS.values() for name in other.fields}
    clash = (set(measurement.tags) & all_fields) | (set(measurement.fields) & all_tags)
    if clash:
        raise SchemaError(
            f"{measurement.name}: {sorted(clash)} is a tag in one measurement, a field in another"
        )
    MEASUREMENTS[measurement.name] = measurement
    return measurement


# --- Markets (owner: market feeder) -------------------------------------------------------------------
# Tag domains: `source` is an exchange or provider id (binance, bybit, kraken, yahoo, alphavantage,
# coingecko); `symbol` a canonical catalogue symbol (BTC/USDT, SPX, EUR/USD…); `asset_class` one of the
# catalogue's classes; `interval` a candle width (1m). All bounded by configuration.

CANDLE = register(
    Measurement(
        name="candle",
        bucket=BUCKET_MARKETS,
        tags=("source", "symbol", "asset_class", "interval"),
        fields={
            "open": float,
            "high": float,
            "low": float,
            "close": float,
            "volume": float,
            # True when the candle came from a REST backfill rather than the live stream.
            "backfilled": bool,
        },
        description="Closed OHLCV candles; the timestamp is the candle's open time.",
    )
)

TICKER = register(
    Measurement(
        name="ticker",
        bucket=BUCKET_MARKETS,
        tags=("source", "symbol", "asset_class"),
        fields={
            "last": float,
            "bid": float,
            "ask": float,
            "volume_24h": float,
            "change_pct_24h": float,
        },
        description="Latest trade price and quote; crypto from exchange streams, the rest polled.",
    )
)

CHANGE = register(
    Measurement(
        name="price_change",
        bucket=BUCKET_MARKETS,
        tags=("source", "symbol", "asset_class"),
        fields={"change_pct_1h": float, "change_pct_24h": float, "change_pct_7d": float},
        description="Change of the last price in percent over 1 h, 24 h and 7 d, from the feeder's candles.",
    )
)

MARKET_CAP = register(
    Measurement(
        name="market_cap",
        bucket=BUCKET_MARKETS,
        tags=("source", "symbol", "asset_class"),
        fields={"market_cap_usd": float, "price_usd": float, "total_volume_usd": float, "rank": int},
        description="CoinGecko market capitalisation.",
    )
)

FUNDING = register(
    Measurement(
        name="funding_rate",
        bucket=BUCKET_MARKETS,
        tags=("source", "symbol", "asset_class"),
        fields={"rate": float, "mark_price": float, "index_price": float, "next_funding_ms": int},
        description="Perpetual futures funding rate (per funding interval, as a fraction).",
    )
)


# --- News (owner: news feeder) ------------------------------------------------------------------------
# Tag domains: `source` is a configured news source (an RSS feed's name, cryptopanic, newsapi); `symbol` and
# `asset_class` are the catalogue's. Headlines, URLs, summaries and ids are fields, never tags. The point's
# time is the item's publication time plus a sub-second offset derived from its id, so two items of one
# source published in the same second stay two points.

NEWS = register(
    Measurement(
        name="news",
        bucket=BUCKET_NEWS,
        tags=("source",),
        fields={
            "title": str,
            "url": str,
            "summary": str,
            "publisher": str,
            # Catalogue symbols the item mentions, comma-separated ("BTC/USDT,ETH/USDT"); "" for none.
            "assets": str,
            # The source's own categories or currency codes, comma-separated.
            "categories": str,
            "sentiment": float,
            "item_id": str,
        },
        description="One point per news item: headline, link and finance-aware sentiment in -1..+1.",
    )
)

NEWS_MENTION = register(
    Measurement(
        name="news_mention",
        bucket=BUCKET_NEWS,
        tags=("source", "symbol", "asset_class"),
        fields={"sentiment": float, "title": str, "url": str, "item_id": str},
        description="One point per (news item, asset it mentions): the news panel filtered by $asset, and "
        "per-asset sentiment series.",
    )
)
