"""The default exchanges besides Binance, each through the real ccxt.pro client against a local stand-in
speaking its protocol: Bybit (candles of every symbol in one watch, like Binance) and Kraken (one watch
per symbol, the feeder's other candle path). Binance's own tests are in test_streams.py."""

from __future__ import annotations

import time

import pytest
from fake_bybit import FakeBybit
from fake_kraken import FakeKraken
from local_exchange import MINUTE, LocalExchange
from prometheus_client import CollectorRegistry
from servers import VictoriaMetrics, eventually

from marketdash.core.catalogue import catalogue_by_symbol
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.market.instruments import FeederMetrics
from marketdash.market.settings import MarketSettings
from marketdash.market.streams import ExchangeFeed

# Two hours ago, on a minute boundary: simulated minutes stay inside the store's retention and in the past.
T = (int(time.time() * 1000) // MINUTE - 120) * MINUTE
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
EXCHANGES = {"bybit": FakeBybit, "kraken": FakeKraken}


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
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=0.1), registry)
    await writer.start()
    settings = MarketSettings(
        exchanges=[exchange_id],
        exchange_urls={exchange_id: ex.ccxt_urls()},
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        stagger_s=0,
        initial_backfill_min=10,
    )
    feed = ExchangeFeed(exchange_id, settings, writer, FeederMetrics(registry))
    await feed.follow([catalogue[symbol] for symbol in SYMBOLS])

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

        # Dropped mid-minute: T+1 goes on where the feeder cannot see it.
        await ex.drop_connections()
        for n, pair in enumerate(pairs.values()):
            await ex.trade(pair, 90 + n, 5, T + MINUTE + 40_000, push=False)
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
    reconnects = registry.get_sample_value(
        "marketdash_market_reconnects_total", {"source": exchange_id, "stream": "candles", "reason": "error"}
    )
    assert (reconnects or 0) >= 1
