"""From a watchlist to the Main dashboard: the whole path of a symbol, every part real but the exchange.

An API call adds a symbol the catalogue lacks to a user's watchlist. The market feeder, already running and
streaming from the local exchange (the protocol-level Binance that the unmodified ccxt client talks to),
follows the change and collects it; the real influxd 2 stores its candles; and the Main dashboard's own
queries, sent as Grafana's datasources send them (SQL as the grafana_reader login, InfluxQL with a read-only
token in the Authorization header), find the user, the watchlist, the symbol, its exchange and its candles.
Grafana itself does not run here: grafana_sim stands for its variable interpolation, nothing else.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg
from api_fixtures import add_user, api_settings, login, running_app
from dashboard_fixtures import committed_models
from grafana_sim import interpolate, queries

from marketdash.core.influx import InfluxSettings
from marketdash.core.schema import BUCKET_MARKETS
from marketdash.market.feeder import MarketFeeder
from marketdash.market.settings import MarketSettings
from marketdash_testing.fake_binance import FakeBinance
from marketdash_testing.servers import InfluxDB2, eventually, free_port, serving

pytest_plugins = ["api_fixtures"]

SYMBOL = "PEPE/USDT"  # not in the catalogue: collected under its own spelling
MINUTE_MS = 60_000


def main_dashboard() -> dict[str, str]:
    """The Main dashboard's queries by where they sit ("variable asset", "panel 3 ... OHLCV")."""
    return {where: query for where, _, query in queries(committed_models()["main-classic.json"])}


def query_named(dashboard: dict[str, str], where: str) -> str:
    (query,) = [text for place, text in dashboard.items() if place == where or place.endswith(f" {where}")]
    return query


def grafana_influxql(influx: InfluxDB2, token: str, query: str) -> list[dict[str, Any]]:
    """The query as Grafana's InfluxQL datasource sends it in POST mode (db and epoch in the URL, q in a
    form body, the datasource's Authorization header); the first statement's series."""
    response = httpx.post(
        f"{influx.url}/query",
        params={"db": BUCKET_MARKETS, "epoch": "ms"},
        data={"q": query},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    response.raise_for_status()
    (result,) = response.json()["results"]
    assert "error" not in result, (result, query)
    return result.get("series", [])


async def test_a_symbol_added_through_the_api_reaches_the_main_dashboard(
    migrated_db: str, influxdb2: InfluxDB2
) -> None:
    now_ms = int(time.time() * 1000)
    minute = now_ms - now_ms % MINUTE_MS
    exchange = FakeBinance(["BTC/USDT", SYMBOL])
    # Ten closed minutes before the symbol is followed: the feeder's start-up backfill reads them over REST.
    for back in range(10, 0, -1):
        await exchange.trade(SYMBOL, 1.0 + back / 100, 5.0, minute - back * MINUTE_MS, push=False)
    await exchange.start()
    markets = influxdb2.bucket(BUCKET_MARKETS, 7 * 86400)
    feeder_token = influxdb2.create_token(("write", markets))
    grafana_token = influxdb2.create_token(("read", markets))
    feeder_dsn = migrated_db.replace("://postgres@", "://marketdash_feeder@", 1)
    reader_dsn = migrated_db.replace("://postgres@", "://grafana_reader@", 1)
    settings = MarketSettings(
        exchanges=["binance"],
        exchange_urls={"binance": exchange.ccxt_urls()},
        funding_exchanges=[],
        fallback_symbols=[],
        postgres_dsn=feeder_dsn,
        stagger_s=0,
        initial_backfill_min=30,
        yahoo_url=f"http://127.0.0.1:{free_port()}",
        coingecko_url=f"http://127.0.0.1:{free_port()}",
        metrics_host="127.0.0.1",
        metrics_port=free_port(),
    )
    influx = InfluxSettings(url=influxdb2.url, token=feeder_token, org=InfluxDB2.ORG, flush_interval_s=0.1)
    feeder = MarketFeeder(settings, influx)
    user_id = await add_user(migrated_db, "ann")
    try:
        async with serving(feeder, settings):
            assert await eventually(lambda: feeder.watchlists.origin == "database", 10)
            assert not exchange.subscribed_to("kline")  # nobody follows anything yet
            async with running_app(api_settings(migrated_db)) as api:
                added = await api.post(
                    "/api/watchlists",
                    json={"name": "Memes", "assets": [SYMBOL]},
                    headers=await login(api, "ann"),
                )
            assert added.status_code == 201, added.text
            assert await eventually(lambda: exchange.subscribed_to("pepeusdt@kline_1m"), 15)
            # Streamed: this minute's trade, which starts the backfill of the minutes before; then the next
            # minute's, which closes it live.
            await exchange.trade(SYMBOL, 1.5, 2.0, minute + 1000)
            await exchange.trade(SYMBOL, 1.6, 1.0, minute + MINUTE_MS + 1000)

            def candles_stored() -> bool:
                rows = influxdb2.flux_rows(
                    f'from(bucket: "{BUCKET_MARKETS}") |> range(start: -1h) |> filter(fn: (r) => '
                    f'r._measurement == "candle" and r.symbol == "{SYMBOL}" and r._field == "close")'
                )
                return len(rows) == 11

            assert await eventually(candles_stored, 20)
    finally:
        await exchange.stop()

    dashboard = main_dashboard()
    range_ms = (minute - 20 * MINUTE_MS, minute + 3 * MINUTE_MS)
    with psycopg.connect(reader_dsn, autocommit=True) as grafana_sql:

        def variable(name: str, values: dict[str, list[str]]) -> list[Any]:
            text = interpolate(
                query_named(dashboard, f"variable {name}"),
                "sql",
                values=values,
                range_ms=range_ms,
                login="ann",
            )
            return [row[0] for row in grafana_sql.execute(text).fetchall()]

        assert variable("user", {}) == [user_id]
        watchlists = variable("watchlist", {"user": [str(user_id)]})
        assert len(watchlists) == 1
        chosen = {"user": [str(user_id)], "watchlist": [str(w) for w in watchlists]}
        assert variable("asset", chosen) == [SYMBOL]
        tier = variable("tier", chosen)
    assert tier == [BUCKET_MARKETS]  # a range of minutes reads the raw tier

    def influxql(where: str, values: dict[str, list[str]]) -> list[dict[str, Any]]:
        text = interpolate(query_named(dashboard, where), "influxql", values=values, range_ms=range_ms)
        return grafana_influxql(influxdb2, grafana_token, text)

    (exchanges,) = influxql("variable exchange", {"asset": [SYMBOL]})
    assert [value for _, value in exchanges["values"]] == ["binance"]
    chart = {"asset": [SYMBOL], "exchange": ["binance"], "timeframe": ["1m"], "tier": tier}
    (ohlcv,) = influxql("OHLCV", chart)
    assert ohlcv["columns"] == ["time", "open", "high", "low", "close", "volume"]
    by_time = {row[0]: row[1:] for row in ohlcv["values"]}
    for back in range(10, 0, -1):
        price = 1.0 + back / 100
        assert by_time[minute - back * MINUTE_MS] == [price, price, price, price, 5.0], back
    assert by_time[minute] == [1.5, 1.5, 1.5, 1.5, 2.0]  # closed by the stream
    assert minute + MINUTE_MS not in by_time  # still open: not stored
    # The hidden ticker band reads the same symbol's last price.
    (prices,) = influxql("PRICES", {"assets": [SYMBOL]})
    assert prices["tags"] == {"symbol": SYMBOL}
    assert prices["values"][0][1] == 1.6
