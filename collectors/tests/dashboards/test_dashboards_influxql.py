"""Every InfluxQL query of the dashboards, as Grafana would send it, goes through a real InfluxQL engine.

influxd 1.6 (Debian) parses and plans each query: a syntax error, a misplaced aggregate or a bad GROUP BY
comes back as an error. The key queries also run on points written with the collectors' own line
encoder, so what the panels show is checked, not only that they parse.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dashboard_fixtures import committed_models, influxql_url  # noqa: F401 - fixture
from grafana_sim import FROM_MS, interpolate, queries

from marketdash.core.schema import BUCKET_MARKETS_1H, BUCKETS, CANDLE, MARKETS_TIERS, NEWS_MENTION, TICKER

MODELS = committed_models()
# The same query appears in the three looks: parse each text once.
INFLUXQL = sorted(
    {
        query: where
        for filename, model in MODELS.items()
        for where, kind, query in queries(model)
        if kind == "influxql"
    }.items()
)


def influxql(url: str, query: str) -> list[dict[str, Any]]:
    """The statement results; raises with InfluxDB's own message on an error."""
    response = httpx.post(f"{url}/query", data={"q": query, "epoch": "ms"}, timeout=10)
    body = response.json()
    if "error" in body:
        raise AssertionError(f"{body['error']}\n  in: {query}")
    for result in body["results"]:
        if "error" in result:
            raise AssertionError(f"{result['error']}\n  in: {query}")
    return body["results"]


@pytest.fixture(scope="module")
def market_data(influxql_url: str) -> str:  # noqa: F811 - the fixture imported above
    for bucket in (*BUCKETS, *MARKETS_TIERS):
        influxql(influxql_url, f'CREATE DATABASE "{bucket}"')
    lines = []
    # 120 one-minute BTC/USDT candles on binance from the start of the simulated range; close = 100 + i.
    for i in range(120):
        tags = {"source": "binance", "symbol": "BTC/USDT", "asset_class": "crypto", "interval": "1m"}
        fields = {
            "open": 99.5 + i,
            "high": 101.0 + i,
            "low": 99.0 + i,
            "close": 100.0 + i,
            "volume": 2.0,
            "backfilled": False,
        }
        lines.append(CANDLE.line(tags, fields, FROM_MS + i * 60_000))
    # The same symbol on another exchange must not leak into the binance chart.
    lines.append(CANDLE.line({**tags, "source": "kraken"}, {**fields, "high": 10_000.0}, FROM_MS + 60_000))
    for symbol, last, change in (
        ("BTC/USDT", 67234.5, 2.3),
        ("ETH/USDT", 3456.0, -0.8),
        ("SOL/USDT", 150.0, 1.0),
    ):
        for minute, price in ((1, last - 10), (5, last)):
            tags = {"source": "binance", "symbol": symbol, "asset_class": "crypto"}
            lines.append(
                TICKER.line(tags, {"last": price, "change_pct_24h": change}, FROM_MS + minute * 60_000)
            )
    news = []
    for minute, symbol, title, sentiment in (
        (10, "BTC/USDT", "Bitcoin ETF inflows hit a record", 0.6),
        (20, "ETH/USDT", "Ether upgrade delayed", -0.4),
        (30, "BTC/USDT", 'Exchange hacked, "withdrawals" halted', -0.8),
    ):
        tags = {"source": "rss", "symbol": symbol, "asset_class": "crypto"}
        fields = {
            "sentiment": sentiment,
            "title": title,
            "url": f"https://news.example/{minute}",
            "item_id": str(minute),
        }
        news.append(NEWS_MENTION.line(tags, fields, FROM_MS + minute * 60_000))
    response = httpx.post(
        f"{influxql_url}/write",
        params={"db": NEWS_MENTION.bucket, "rp": "autogen", "precision": "ms"},
        content="\n".join(news),
        timeout=10,
    )
    assert response.status_code == 204, response.text
    response = httpx.post(
        f"{influxql_url}/write",
        params={"db": CANDLE.bucket, "rp": "autogen", "precision": "ms"},
        content="\n".join(lines),
        timeout=10,
    )
    assert response.status_code == 204, response.text
    return influxql_url


@pytest.mark.parametrize(("query", "where"), INFLUXQL, ids=[where for _, where in INFLUXQL])
def test_query_is_valid_influxql(market_data: str, query: str, where: str):
    influxql(market_data, interpolate(query, "influxql"))


def test_an_invalid_query_is_refused(market_data: str):
    with pytest.raises(AssertionError, match="error parsing query"):
        influxql(market_data, 'SELECT last("close") FORM "markets"."autogen"."candle"')
    # Parses, but InfluxQL refuses an aggregate mixed with a raw field: caught too.
    with pytest.raises(AssertionError, match="mixing aggregate and non-aggregate"):
        influxql(market_data, 'SELECT mean("close"), "open" FROM "markets"."autogen"."candle"')


def _panel_targets(title_start: str) -> dict[str, str]:
    panel = next(
        p for p in MODELS["main-classic.json"]["panels"] if (p.get("title") or "").startswith(title_start)
    )
    return {target["refId"]: interpolate(target["query"], "influxql") for target in panel["targets"]}


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
        for series in result.get("series", [])
        for values in series["values"]
    ]


def test_candlestick_aggregates_1m_candles_to_the_timeframe(market_data: str):
    targets = _panel_targets("$asset")  # timeframe 5m, BTC/USDT on binance (grafana_sim's samples)
    candles = _rows(influxql(market_data, targets["OHLCV"])[0])
    assert len(candles) == 24
    first = candles[0]
    assert (first["time"], first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        FROM_MS,
        99.5,
        105.0,
        99.0,
        104.0,
        10.0,
    )
    sma20 = _rows(influxql(market_data, targets["SMA20"])[0])
    # 24 five-minute closes (104, 109, …) give 5 windows of 20; the first averages closes 0..19.
    assert len(sma20) == 5
    assert sma20[0]["sma20"] == pytest.approx(sum(104 + 5 * k for k in range(20)) / 20)
    assert _rows(influxql(market_data, targets["SMA50"])[0]) == []  # not enough history: no line, no error


def test_the_candlestick_reads_the_tier_its_variable_names(market_data: str):
    # Six hourly candles, as the downsampling task writes them (interval 1h), in the coarsest tier only.
    tags = {"source": "binance", "symbol": "BTC/USDT", "asset_class": "crypto", "interval": "1h"}
    hourly = [
        CANDLE.line(
            tags,
            {"open": 200.0 + h, "high": 210.0 + h, "low": 190.0 + h, "close": 205.0 + h, "volume": 60.0},
            FROM_MS + h * 3_600_000,
        )
        for h in range(6)
    ]
    response = httpx.post(
        f"{market_data}/write",
        params={"db": BUCKET_MARKETS_1H, "rp": "autogen", "precision": "ms"},
        content="\n".join(hourly),
        timeout=10,
    )
    assert response.status_code == 204, response.text
    panel = next(
        p for p in MODELS["main-classic.json"]["panels"] if (p.get("title") or "").startswith("$asset")
    )
    ohlcv = next(target["query"] for target in panel["targets"] if target["refId"] == "OHLCV")
    candles = _rows(
        influxql(market_data, interpolate(ohlcv.replace("$tier", BUCKET_MARKETS_1H), "influxql"))[0]
    )
    assert [(c["time"], c["open"], c["high"], c["low"], c["close"], c["volume"]) for c in candles] == [
        (FROM_MS + h * 3_600_000, 200.0 + h, 210.0 + h, 190.0 + h, 205.0 + h, 60.0) for h in range(6)
    ]


def test_ticker_band_gets_the_last_price_of_each_watched_asset(market_data: str):
    rows = _rows(influxql(market_data, _panel_targets("")["PRICES"])[0])
    assert {row["symbol"]: (row["price"], row["change"]) for row in rows} == {
        "BTC/USDT": (67234.5, 2.3),
        "ETH/USDT": (3456.0, -0.8),
    }


def test_exchange_variable_lists_the_sources_of_the_asset(market_data: str):
    variable = next(v for v in MODELS["main-classic.json"]["templating"]["list"] if v["name"] == "exchange")
    result = influxql(market_data, interpolate(variable["query"], "influxql"))[0]
    assert sorted(value for _, value in result["series"][0]["values"]) == ["binance", "kraken"]


def test_news_feed_is_the_assets_headlines_newest_first(market_data: str):
    panel = next(p for p in MODELS["main-classic.json"]["panels"] if p.get("title") == "News · $asset")
    rows = _rows(influxql(market_data, interpolate(panel["targets"][0]["query"], "influxql"))[0])
    assert [(row["title"], row["sentiment"], row["url"], row["source"]) for row in rows] == [
        ('Exchange hacked, "withdrawals" halted', -0.8, "https://news.example/30", "rss"),
        ("Bitcoin ETF inflows hit a record", 0.6, "https://news.example/10", "rss"),
    ]
