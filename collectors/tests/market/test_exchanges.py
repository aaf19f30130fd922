"""The default exchanges besides Binance, each through the real ccxt.pro client against a local stand-in
speaking its protocol: Bybit (candles of every symbol in one watch, like Binance) and Kraken (one watch
per symbol, the feeder's other candle path). Binance's own tests are in test_streams.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import catalogue_by_symbol
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.market.metrics import FeederMetrics
from marketdash.market.settings import MarketSettings
from marketdash.market.streams import ExchangeFeed
from marketdash_testing.fake_bybit import FakeBybit
from marketdash_testing.fake_kraken import FakeKraken
from marketdash_testing.local_exchange import MINUTE, LocalExchange
from marketdash_testing.servers import VictoriaMetrics, eventually

# Two hours ago, on a minute boundary: simulated minutes stay inside the store's retention and in the past.
T = (int(time.time() * 1000) // MINUTE - 120) * MINUTE
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
EXCHANGES = {"bybit": FakeBybit, "kraken": FakeKraken}


async def feeding(
    ex: LocalExchange, exchange_id: str, symbols: list[str], sink: VictoriaMetrics, **settings: object
) -> tuple[ExchangeFeed, InfluxWriter, CollectorRegistry]:
    """A feed of the catalogue's `symbols` from `ex` into `sink`, following them; the caller closes it."""
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=sink.url, flush_interval_s=0.1), registry)
    await writer.start()
    values = {
        "exchanges": [exchange_id],
        "exchange_urls": {exchange_id: ex.ccxt_urls()},
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "stagger_s": 0,
        "initial_backfill_min": 10,
    }
    feed = ExchangeFeed(exchange_id, MarketSettings(**(values | settings)), writer, FeederMetrics(registry))
    catalogue = catalogue_by_symbol()
    await feed.follow([catalogue[symbol] for symbol in symbols])
    return feed, writer, registry


def reconnects(registry: CollectorRegistry, exchange_id: str, stream: str, reason: str) -> float:
    labels = {"source": exchange_id, "stream": stream, "reason": reason}
    return registry.get_sample_value("marketdash_market_reconnects_total", labels) or 0


@pytest.mark.parametrize("exchange_id", sorted(EXCHANGES))
async def test_candles_and_tickers_are_stored_exactly_through_a_dropped_socket(
    exchange_id: str, victoria_metrics_server: VictoriaMetrics
) -> None:
    catalogue = catalogue_by_symbol()
    # The catalogue's symbols and the exchange's spelling of them (Kraken quotes in USD).
    pairs = {symbol: catalogue[symbol].sources[exchange_id] for symbol in SYMBOLS}
    ex: LocalExchange = EXCHANGES[exchange_id](list(pairs.values()))
    for pair in pairs.values():
        for minute in range(-3, 0):
            await ex.trade(pair, 50 + minute, 1, T + minute * MINUTE, push=False)
    await ex.start()
    feed, writer, registry = await feeding(ex, exchange_id, SYMBOLS, victoria_metrics_server)

    def subscribed() -> bool:
        return all(ex.subscribed_to(name) for pair in pairs.values() for name in ex.subscriptions(pair))

    def settled(ts: int) -> bool:
        return all(feed.book.settled.get(pair) == ts for pair in pairs.values())

    try:
        assert await eventually(subscribed, 10)
        for second in (0, 30):
            for n, pair in enumerate(pairs.values()):
                await ex.trade(pair, 100 + n + second / 100, 1, T + second * 1000)
        for n, pair in enumerate(pairs.values()):
            await ex.trade(pair, 110 + n, 1, T + MINUTE)  # closes T on the same socket
        assert await eventually(lambda: settled(T + MINUTE), 10), feed.book.settled

        # Dropped mid-minute: a T+1 trade the old socket never pushes (made before the drop: Kraken's
        # snapshot on the new socket carries it, Bybit's new socket does not, and T+1 comes over REST).
        for n, pair in enumerate(pairs.values()):
            await ex.trade(pair, 90 + n, 5, T + MINUTE + 40_000, push=False)
        await ex.drop_connections()
        assert await eventually(subscribed, 10)
        for n, pair in enumerate(pairs.values()):
            await ex.trade(pair, 120 + n, 1, T + 2 * MINUTE)  # closes T+1
        assert await eventually(lambda: settled(T + 2 * MINUTE), 10), feed.book.settled
        assert await writer.flush(within_s=10)
    finally:
        await feed.close()
        await writer.close()
        await ex.stop()

    for symbol, pair in pairs.items():
        labels = f'source="{exchange_id}", symbol="{symbol}"'
        stored = victoria_metrics_server.export(f'{{__name__=~"candle_.*", {labels}}}')
        columns = {dict(labels)["__name__"]: dict(samples) for labels, samples in stored.items()}
        expected = {ts: c for ts, c in ex.candles[pair].items() if ts < T + 2 * MINUTE}
        assert sorted(columns["candle_close"]) == sorted(expected), symbol  # T-3 .. T+1, no hole
        for ts, true in expected.items():
            candle = tuple(columns[f"candle_{k}"][ts] for k in ("open", "high", "low", "close", "volume"))
            assert candle == (true.open, true.high, true.low, true.close, true.volume), (symbol, ts)
        assert columns["candle_backfilled"][T] == 0  # closed live
        tickers = victoria_metrics_server.export(f'{{__name__="ticker_last", {labels}}}')
        assert list(dict(next(iter(tickers.values()))).values())[-1] == ex.candles[pair][T + 2 * MINUTE].close
    assert reconnects(registry, exchange_id, "candles", "error") >= 1


async def test_bybit_takes_more_than_ten_symbols_in_subscribe_requests_of_ten(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    """Bybit refuses a subscribe request of more than 10 topics, which ccxt would send in one."""
    catalogue = catalogue_by_symbol()
    symbols = sorted(symbol for symbol, asset in catalogue.items() if "bybit" in asset.sources)
    assert len(symbols) > 10
    ex = FakeBybit([catalogue[symbol].sources["bybit"] for symbol in symbols])
    await ex.start()
    feed, writer, registry = await feeding(ex, "bybit", symbols, victoria_metrics_server)
    try:
        assert await eventually(
            lambda: all(ex.subscribed_to(name) for pair in ex.symbols for name in ex.subscriptions(pair)), 10
        )
        for minute in (0, 1):
            for n, pair in enumerate(ex.symbols):
                await ex.trade(pair, 100 + n + minute, 1, T + minute * MINUTE)
        assert await eventually(lambda: all(feed.book.settled.get(p) == T + MINUTE for p in ex.symbols), 10)
        assert feed.failing == {}
    finally:
        await feed.close()
        await writer.close()
        await ex.stop()
    assert reconnects(registry, "bybit", "candles", "error") == 0
    assert reconnects(registry, "bybit", "tickers", "error") == 0


async def test_a_quiet_kraken_pair_does_not_reopen_a_stream_its_heartbeats_keep_alive(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    """Kraken pushes a pair's candle only when it trades; a pair quiet for longer than the watchdog's
    window is not a dead socket while the connection's heartbeats arrive."""
    ex = FakeKraken(["BTC/USD", "ETH/USD"], heartbeat_s=0.25)
    await ex.start()
    feed, writer, registry = await feeding(ex, "kraken", SYMBOLS, victoria_metrics_server, stale_after_s=1.0)
    try:
        assert await eventually(lambda: ex.subscribed_to("ohlc:ETH/USD"), 10)
        await ex.trade("BTC/USD", 100, 1, T)
        await asyncio.sleep(3.0)  # three watchdog windows without a candle or a ticker of ETH
        await ex.trade("ETH/USD", 10, 1, T)
        assert await eventually(lambda: feed.book.settled.get("ETH/USD") == T, 5)
    finally:
        await feed.close()
        await writer.close()
        await ex.stop()
    for stream in ("candles", "tickers"):
        assert reconnects(registry, "kraken", stream, "stale") == 0
        assert reconnects(registry, "kraken", stream, "error") == 0
