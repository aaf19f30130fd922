"""The whole feeder: PostgreSQL watchlists in, local exchange and providers, victoria-metrics out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from marketdash.api.migrations import migrate
from marketdash.core.influx import InfluxSettings
from marketdash.market.feeder import MarketFeeder
from marketdash.market.settings import MarketSettings
from marketdash_testing.fake_binance import FakeBinance
from marketdash_testing.fake_providers import ScriptedHttp, yahoo_chart
from marketdash_testing.servers import VictoriaMetrics, eventually, free_port, serving


async def test_feeder_follows_the_watchlists_and_reports_on_metrics_and_healthz(
    postgres_db: str, victoria_metrics_server: VictoriaMetrics
) -> None:
    await asyncio.to_thread(migrate, postgres_db)
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES ('bo', 'x') RETURNING id"
        ).fetchone()
        watchlist = conn.execute(
            "INSERT INTO watchlists (user_id, name, assets) VALUES (%s, 'w', %s) RETURNING id",
            (user[0], json.dumps(["BTC/USDT", "DAX"])),
        ).fetchone()[0]
    now_s = int(time.time()) // 60 * 60 - 300
    exchange = FakeBinance(["BTC/USDT", "ETH/USDT"])
    exchange.perpetuals = {"BTC/USDT": (0.0001, 67000.0, (now_s + 3600) * 1000)}
    await exchange.start()
    yahoo = ScriptedHttp({"/v8/finance/chart/": lambda _: yahoo_chart("^GDAXI", 18000.0, 17900.0, now_s, [])})
    await yahoo.start()
    port = free_port()
    settings = MarketSettings(
        exchanges=["binance"],
        exchange_urls={"binance": exchange.ccxt_urls(), "binanceusdm": exchange.ccxt_futures_urls()},
        funding_exchanges=["binance"],
        postgres_dsn=postgres_db,
        stagger_s=0,
        yahoo_url=yahoo.url,
        yahoo_every_s=15,
        coingecko_url=yahoo.url,  # answers 404: counted, and the rest goes on
        metrics_host="127.0.0.1",
        metrics_port=port,
    )
    feeder = MarketFeeder(settings, InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=0.1))
    try:
        async with serving(feeder, settings):
            assert await eventually(lambda: exchange.subscribed_to("btcusdt@ticker"), 10)
            await exchange.trade("BTC/USDT", 67000.0, 1.0, now_s * 1000)
            assert await eventually(lambda: feeder.writer.last_success is not None, 10)
            yahoo_written = {"source": "yahoo", "kind": "ticker"}
            assert await eventually(
                lambda: feeder.registry.get_sample_value("marketdash_market_messages_total", yahoo_written),
                10,
            )
            funding_written = {"source": "binance", "kind": "funding_rate"}
            assert await eventually(
                lambda: feeder.registry.get_sample_value("marketdash_market_messages_total", funding_written),
                10,
            )
            with psycopg.connect(postgres_db, autocommit=True) as conn:
                conn.execute(
                    "UPDATE watchlists SET assets = %s WHERE id = %s", (json.dumps(["ETH/USDT"]), watchlist)
                )
            assert await eventually(lambda: exchange.subscribed_to("ethusdt@kline_1m"), 10)
            assert not exchange.subscribed_to("btcusdt")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/healthz")
                metrics = (await client.get("/metrics")).text
    finally:
        await exchange.stop()
        await yahoo.stop()

    assert health.status_code == 200
    assert health.json()["watchlists"] == "database"
    assert health.json()["symbols"] == 1
    for name in (
        'marketdash_market_messages_total{kind="ticker",source="binance"}',
        'marketdash_market_messages_total{kind="ticker",source="yahoo"}',
        'marketdash_market_messages_total{kind="funding_rate",source="binance"}',
        'marketdash_market_poll_errors_total{provider="coingecko",reason="http_error"}',
        "marketdash_influx_queue_points",
        "marketdash_influx_write_latency_seconds_count",
        "marketdash_influx_event_to_write_lag_seconds_bucket",
        'marketdash_influx_points_dropped_total{reason="buffer_full"} 0.0',
        "marketdash_market_reconnects_total",
        "marketdash_market_gaps_backfilled_total",
    ):
        assert name in metrics, name
    stored = victoria_metrics_server.export('{__name__="ticker_last"}')
    assert {dict(labels)["symbol"] for labels in stored} == {"BTC/USDT", "DAX"}


async def test_a_stream_that_cannot_start_is_reported_and_an_unlisted_symbol_left_out(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    # Binance here lists BTC/USDT only; Kraken's API is a closed port. No PostgreSQL: the fallback list.
    exchange = FakeBinance(["BTC/USDT"])
    await exchange.start()
    closed = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    settings = MarketSettings(
        exchanges=["binance", "kraken"],
        exchange_urls={"binance": exchange.ccxt_urls(), "kraken": {"api": {"public": closed}}},
        funding_exchanges=[],
        fallback_symbols=["BTC/USDT", "ETH/USDT"],
        stagger_s=0,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        stream_failing_grace_s=0.5,
        yahoo_url=closed,
        coingecko_url=closed,
        metrics_host="127.0.0.1",
        metrics_port=port,
    )
    feeder = MarketFeeder(settings, InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=0.1))

    def sample(name: str, **labels: str) -> float:
        return feeder.registry.get_sample_value(name, labels) or 0.0

    try:
        async with serving(feeder, settings):
            assert await eventually(lambda: exchange.subscribed_to("btcusdt@kline_1m"), 10)
            assert not exchange.subscribed_to("ethusdt")
            assert await eventually(
                lambda: (
                    sample(
                        "marketdash_market_reconnects_total",
                        source="kraken",
                        stream="candles",
                        reason="error",
                    )
                    >= 2
                ),
                10,
            )
            await asyncio.sleep(0.6)  # past the grace
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/healthz")
            unlisted = sample("marketdash_market_symbols_unlisted", source="binance", stream="candles")
    finally:
        await exchange.stop()

    assert unlisted == 1
    assert health.status_code == 503
    failing = health.json()["streams_failing"]
    assert set(failing) == {"kraken/candles", "kraken/tickers"}
    assert failing["kraken/candles"]["error"].startswith(f"ExchangeNotAvailable: kraken GET {closed}/")


def test_an_exchange_the_feeder_cannot_stream_is_refused_by_name(tmp_path) -> None:
    env = {**os.environ, "MARKETDASH_MARKET_EXCHANGES": '["binance", "binanse", "coinbase"]'}
    run = subprocess.run(
        [sys.executable, "-m", "marketdash.market"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    refused = [json.loads(line) for line in run.stderr.splitlines() if "setting refused" in line]
    assert [entry["setting"] for entry in refused] == ["MARKETDASH_MARKET_EXCHANGES"]
    assert "'binanse' is not a ccxt.pro exchange id" in refused[0]["error"]
    assert "coinbase has no watchOHLCV" in refused[0]["error"]
    with pytest.raises(ValueError, match=r"no funding rates for \['kraken'\]"):
        MarketSettings(funding_exchanges=["kraken"])
