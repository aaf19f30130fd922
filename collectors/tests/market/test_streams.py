"""Crypto streaming through the real ccxt.pro client against a local Binance, into victoria-metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import ccxt.pro
import pytest
from ccxt.async_support.base.ws.cache import ArrayCacheByTimestamp
from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import catalogue_by_symbol
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.market.metrics import FeederMetrics
from marketdash.market.settings import MarketSettings
from marketdash.market.streams import ExchangeFeed, _ConnectionWatch
from marketdash_testing.fake_binance import MINUTE, FakeBinance
from marketdash_testing.servers import VictoriaMetrics, eventually, free_port

# Two hours ago, on a minute boundary: simulated minutes stay inside the store's retention and in the past.
T = (int(time.time() * 1000) // MINUTE - 120) * MINUTE


@pytest.fixture
async def fake_binance() -> AsyncIterator[FakeBinance]:
    exchange = FakeBinance(["BTC/USDT", "ETH/USDT"])
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


def market_settings(exchange: FakeBinance, **overrides: object) -> MarketSettings:
    values = {
        "exchanges": ["binance"],
        "exchange_urls": {"binance": exchange.ccxt_urls()},
        "stale_after_s": 1.5,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "stagger_s": 0,
        "initial_backfill_min": 10,
    }
    return MarketSettings(**(values | overrides))


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@dataclass
class Streaming:
    feed: ExchangeFeed
    writer: InfluxWriter
    registry: CollectorRegistry


@contextlib.asynccontextmanager
async def streaming(
    exchange: FakeBinance, sink: VictoriaMetrics, symbols: list[str], **settings: object
) -> AsyncIterator[Streaming]:
    """A feed of `symbols` from the local exchange into `sink`; stopped, its writer closed, at the end."""
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=sink.url, flush_interval_s=0.1), registry)
    await writer.start()
    feed = ExchangeFeed("binance", market_settings(exchange, **settings), writer, FeederMetrics(registry))
    by_symbol = catalogue_by_symbol()
    await feed.follow([by_symbol[symbol] for symbol in symbols])
    try:
        yield Streaming(feed, writer, registry)
    finally:
        await feed.close()
        await writer.close()


async def test_forced_disconnects_garbage_and_stale_rows_leave_no_gap_and_no_wrong_candle(
    fake_binance: FakeBinance, victoria_metrics_server: VictoriaMetrics
) -> None:
    ex = fake_binance
    for minute in range(-10, 0):  # history from before the feeder started
        await ex.trade("BTC/USDT", 100 + minute, 1, T + minute * MINUTE, push=False)
    registry = CollectorRegistry()
    metrics = FeederMetrics(registry)
    writer = InfluxWriter(InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=0.1), registry)
    await writer.start()
    feed = ExchangeFeed("binance", market_settings(ex), writer, metrics)
    await feed.follow([catalogue_by_symbol()["BTC/USDT"]])

    def messages() -> float:
        return value(registry, "marketdash_market_messages_total", source="binance", kind="candle")

    async def trade(price: float, at: int) -> None:
        seen = messages()
        await ex.trade("BTC/USDT", price, 0.5, at)
        # Received at once: no backfill holds the watch.
        assert await eventually(lambda: messages() > seen, 5), "the feeder did not receive the update"

    try:
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
        await trade(200, T)  # first live row: minutes T-10..T-1 come over REST
        await trade(201, T + 20_000)
        await trade(202, T + MINUTE)  # closes T live
        await trade(203, T + 2 * MINUTE)  # closes T+1 live
        await trade(204, T + 2 * MINUTE + 10_000)

        # Dropped mid-candle: T+2 goes on without the feeder, then T+3 passes entirely.
        await ex.drop_connections()
        await ex.trade("BTC/USDT", 150, 3, T + 2 * MINUTE + 30_000, push=False)
        await ex.trade("BTC/USDT", 260, 1, T + 3 * MINUTE, push=False)
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
        await trade(205, T + 4 * MINUTE)  # T+2 (partial in ccxt's cache) and T+3 must come over REST

        # A garbage frame stops ccxt reading that socket: only the watchdog notices.
        await ex.send_raw("this is not json {")
        await ex.trade("BTC/USDT", 206, 1, T + 4 * MINUTE + 5_000, push=False)
        assert await eventually(
            lambda: (
                value(
                    registry,
                    "marketdash_market_reconnects_total",
                    source="binance",
                    stream="candles",
                    reason="stale",
                )
                >= 1
            ),
            5,
        )
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
        # An out-of-order update for an old minute, with wrong values: must not overwrite T+1.
        stale = ex.kline_event("BTC/USDT", T + MINUTE, T + 5 * MINUTE)
        stale["k"] |= {"o": "1", "h": "1", "l": "1", "c": "1"}
        await trade(207, T + 5 * MINUTE)
        await ex.send_raw(json.dumps(stale))
        await trade(208, T + 6 * MINUTE)  # closes T+5
        assert await writer.flush(within_s=10)
    finally:
        await feed.close()
        await writer.close()

    stored = victoria_metrics_server.export('{__name__=~"candle_.*", symbol="BTC/USDT"}')
    columns = {dict(labels)["__name__"]: dict(samples) for labels, samples in stored.items()}
    expected = {ts: c for ts, c in ex.candles["BTC/USDT"].items() if ts < T + 6 * MINUTE}
    assert sorted(columns["candle_close"]) == sorted(expected)  # every minute T-10..T+5, no hole
    for ts, candle in expected.items():
        stored_candle = tuple(columns[f"candle_{k}"][ts] for k in ("open", "high", "low", "close", "volume"))
        assert stored_candle == (candle.open, candle.high, candle.low, candle.close, candle.volume), ts
    backfilled = {ts for ts, flag in columns["candle_backfilled"].items() if flag == 1}
    assert backfilled >= {T - 10 * MINUTE, T - MINUTE, T + 2 * MINUTE, T + 3 * MINUTE}
    # Those closed on a live connection:
    assert T not in backfilled
    assert T + MINUTE not in backfilled
    assert (
        value(registry, "marketdash_market_messages_ignored_total", source="binance", reason="out_of_order")
        >= 1
    )
    assert value(registry, "marketdash_market_gaps_backfilled_total", source="binance") >= 3


async def test_planned_reconnection_reopens_the_stream_and_keeps_the_candles_whole(
    fake_binance: FakeBinance, victoria_metrics_server: VictoriaMetrics
) -> None:
    ex = fake_binance
    async with streaming(ex, victoria_metrics_server, ["BTC/USDT"], planned_reconnect_s=0.3) as run:
        feed = run.feed

        def planned() -> float:
            labels = {"source": "binance", "stream": "candles", "reason": "planned"}
            return value(run.registry, "marketdash_market_reconnects_total", **labels)

        for minute in range(4):
            assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
            before = planned()
            # Updates until the stream has been reopened on schedule (it checks its clock on each update).
            for second in range(0, 60, 2):
                await ex.trade(
                    "BTC/USDT", 100 + minute + second / 100, 1, T + minute * MINUTE + second * 1000
                )
                if await eventually(lambda: planned() > before, 0.05):  # noqa: B023 - read at once
                    break
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
        await ex.trade("BTC/USDT", 200, 1, T + 4 * MINUTE)
        await ex.push_kline("BTC/USDT", T + 4 * MINUTE, T + 4 * MINUTE)
        assert await eventually(lambda: feed.book.settled.get("BTC/USDT") == T + 4 * MINUTE, 10)
        assert await run.writer.flush(within_s=10)
    assert planned() >= 3
    stored = victoria_metrics_server.export('{__name__="candle_close", symbol="BTC/USDT"}')
    closes = dict(next(iter(stored.values())))
    assert sorted(closes) == [T + m * MINUTE for m in range(4)]
    assert closes == {ts: c.close for ts, c in ex.candles["BTC/USDT"].items() if ts < T + 4 * MINUTE}


async def test_updates_of_every_symbol_arriving_together_are_all_written(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    """Binance pushes each symbol's ticker (every second) and kline at the same moment: ccxt parses them
    in one go, and a watch returns only the symbol that resolved it; none of the others may be lost."""
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT"]
    ex = FakeBinance(symbols)
    await ex.start()
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=0.1), registry)
    await writer.start()
    feed = ExchangeFeed("binance", market_settings(ex), writer, FeederMetrics(registry))
    by_symbol = catalogue_by_symbol()
    await feed.follow([by_symbol[symbol] for symbol in symbols])
    bursts = [T, T + 20_000, T + 40_000, T + MINUTE]

    def settled_at(ts: int) -> bool:
        return all(feed.book.settled.get(symbol) == ts for symbol in symbols)

    def tickers_seen() -> float:
        labels = {"source": "binance", "kind": "ticker"}
        return registry.get_sample_value("marketdash_market_messages_total", labels) or 0

    try:
        assert await eventually(lambda: ex.subscribed_to("@kline_1m") and ex.subscribed_to("@ticker"), 5)
        for n, at in enumerate(bursts):
            await ex.trade_together({s: 100 + i + n for i, s in enumerate(symbols)}, 1, at)
            if n == 0:  # first rows: each symbol's history comes over REST before the stream is trusted
                assert await eventually(lambda: settled_at(T), 10)
            # Each burst handled before the next, as when Binance's bursts come a second apart.
            expected = len(symbols) * (n + 1)
            handled = await eventually(lambda least=expected: tickers_seen() >= least, 5)
            assert handled, (expected, tickers_seen())
        assert await eventually(lambda: settled_at(T + MINUTE), 2), feed.book.settled
        assert await writer.flush(within_s=10)
    finally:
        await feed.close()
        await writer.close()
        await ex.stop()

    tickers = victoria_metrics_server.export('{__name__="ticker_last"}')
    stored = {dict(labels)["symbol"]: [ts for ts, _ in samples] for labels, samples in tickers.items()}
    assert stored == {symbol: bursts for symbol in symbols}
    candles = victoria_metrics_server.export('{__name__="candle_close"}')
    closes = {dict(labels)["symbol"]: dict(samples) for labels, samples in candles.items()}
    assert closes == {symbol: {T: ex.candles[symbol][T].close} for symbol in symbols}


async def test_a_held_backfill_neither_holds_the_stream_nor_vouches_for_a_dropped_sockets_candle(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    """While the exchange holds one symbol's REST backfill, the other's minutes keep closing live; the
    socket then drops mid-minute, with one update the feeder never read: that minute comes over REST."""
    ex = FakeBinance(["BTC/USDT", "ETH/USDT"])
    await ex.start()
    for symbol in ex.symbols:
        await ex.trade(symbol, 99, 1, T - MINUTE, push=False)
    try:
        async with streaming(ex, victoria_metrics_server, ex.symbols) as run:
            feed = run.feed

            def settled(symbol: str, ts: int) -> bool:
                return feed.book.settled.get(symbol) == ts

            assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
            await ex.trade_together({"BTC/USDT": 100, "ETH/USDT": 100}, 1, T)
            await ex.trade_together({"BTC/USDT": 101, "ETH/USDT": 101}, 1, T + MINUTE)
            for symbol in ex.symbols:
                assert await eventually(lambda s=symbol: settled(s, T + MINUTE), 5), feed.book.settled

            # ETH jumps two minutes: a backfill, held by the exchange; BTC's minutes go on closing live.
            ex.klines_gate = asyncio.Event()
            await ex.trade("ETH/USDT", 104, 1, T + 3 * MINUTE)
            assert await eventually(lambda: ex.klines_in_flight > 0, 5)
            await ex.trade("BTC/USDT", 150, 1, T + MINUTE + 20_000)
            await ex.trade("BTC/USDT", 160, 1, T + 2 * MINUTE)
            assert await eventually(lambda: settled("BTC/USDT", T + 2 * MINUTE), 5), feed.book.settled
            assert ex.klines_in_flight > 0  # BTC's T+1 closed live while ETH's backfill was held

            # Dropped mid-minute: BTC's T+2 goes on where the feeder cannot see it.
            def candle_messages() -> float:
                labels = {"source": "binance", "kind": "candle"}
                return value(run.registry, "marketdash_market_messages_total", **labels)

            seen = candle_messages()
            await ex.trade("BTC/USDT", 170, 1, T + 2 * MINUTE + 10_000)
            assert await eventually(lambda: candle_messages() > seen, 5)
            await ex.drop_connections()
            await ex.trade("BTC/USDT", 90, 5, T + 2 * MINUTE + 40_000, push=False)
            await ex.trade("BTC/USDT", 300, 1, T + 3 * MINUTE, push=False)
            assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 10)
            await ex.trade("BTC/USDT", 301, 1, T + 3 * MINUTE + 1_000)  # closes T+2, seen partly
            assert ex.klines_in_flight > 0
            ex.klines_gate.set()
            ex.klines_gate = None
            assert await eventually(lambda: settled("BTC/USDT", T + 3 * MINUTE), 10), feed.book.settled
            assert await eventually(lambda: settled("ETH/USDT", T + 3 * MINUTE), 10), feed.book.settled
            assert await run.writer.flush(within_s=10)
    finally:
        await ex.stop()

    assert value(run.registry, "marketdash_market_backfills_pending", source="binance") == 0
    for symbol in ex.symbols:  # every minute the exchange has before T+3 (ETH traded in none of T+1, T+2)
        stored = victoria_metrics_server.export(f'{{__name__=~"candle_.*", symbol="{symbol}"}}')
        columns = {dict(labels)["__name__"]: dict(samples) for labels, samples in stored.items()}
        expected = {ts: c for ts, c in ex.candles[symbol].items() if ts < T + 3 * MINUTE}
        assert sorted(columns["candle_close"]) == sorted(expected), symbol
        for ts, true in expected.items():
            candle = tuple(columns[f"candle_{k}"][ts] for k in ("open", "high", "low", "close", "volume"))
            assert candle == (true.open, true.high, true.low, true.close, true.volume), (symbol, ts)
    btc = victoria_metrics_server.export('{__name__="candle_backfilled", symbol="BTC/USDT"}')
    backfilled = dict(next(iter(btc.values())))
    assert (backfilled[T], backfilled[T + MINUTE], backfilled[T + 2 * MINUTE]) == (0, 0, 1)


async def test_a_refused_backfill_is_reported_and_retried_while_the_stream_goes_on(
    fake_binance: FakeBinance, victoria_metrics_server: VictoriaMetrics
) -> None:
    ex = fake_binance
    for minute in range(-3, 0):
        await ex.trade("BTC/USDT", 90 + minute, 1, T + minute * MINUTE, push=False)
    ex.klines_refused["BTC/USDT"] = 10**6
    async with streaming(ex, victoria_metrics_server, ["BTC/USDT"]) as run:
        feed = run.feed
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
        await ex.trade("BTC/USDT", 100, 1, T)  # its backfill is refused
        assert await eventually(lambda: "backfills" in feed.failing, 5)
        assert "503" in feed.failing["backfills"][1]
        await ex.trade("BTC/USDT", 101, 1, T + MINUTE)  # closes T live all the same
        assert await eventually(lambda: feed.book.covered.get("BTC/USDT") == T + MINUTE, 5)
        assert feed.book.settled.get("BTC/USDT") == T - 10 * MINUTE  # the backfill still refused
        ex.klines_refused["BTC/USDT"] = 0
        assert await eventually(lambda: feed.book.settled.get("BTC/USDT") == T + MINUTE, 10)
        assert "backfills" not in feed.failing
        assert await run.writer.flush(within_s=10)
    assert value(run.registry, "marketdash_market_backfill_failures_total", source="binance") >= 1
    stored = victoria_metrics_server.export('{__name__=~"candle_(close|backfilled)", symbol="BTC/USDT"}')
    columns = {dict(labels)["__name__"]: dict(samples) for labels, samples in stored.items()}
    assert columns["candle_close"] == {ts: c.close for ts, c in ex.candles["BTC/USDT"].items() if ts <= T}
    assert columns["candle_backfilled"][T] == 0  # closed live while the backfill was refused


async def test_a_backfill_failing_for_one_symbol_stays_reported_whatever_the_others_do(
    fake_binance: FakeBinance, victoria_metrics_server: VictoriaMetrics
) -> None:
    ex = fake_binance
    ex.klines_refused["BTC/USDT"] = 10**6  # BTC's history is never served; ETH's is
    async with streaming(ex, victoria_metrics_server, ["BTC/USDT", "ETH/USDT"]) as run:
        feed = run.feed
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
        await ex.trade("BTC/USDT", 100, 1, T)
        assert await eventually(lambda: "backfills" in feed.failing, 5)
        since, error = feed.failing["backfills"]
        assert error.startswith("BTC/USDT: ")
        await ex.trade("ETH/USDT", 10, 1, T)  # ETH's backfill succeeds meanwhile
        assert await eventually(lambda: feed.book.settled.get("ETH/USDT") == T, 5)

        def failures() -> float:
            return value(run.registry, "marketdash_market_backfill_failures_total", source="binance")

        seen = failures()
        assert await eventually(lambda: failures() > seen, 5)  # BTC retried and refused again
        assert feed.failing["backfills"][0] == since
        assert value(run.registry, "marketdash_market_backfills_pending", source="binance") == 1
        by_symbol = catalogue_by_symbol()
        await feed.follow([by_symbol["ETH/USDT"]])  # BTC no longer followed: nothing left failing
        assert "backfills" not in feed.failing
        assert value(run.registry, "marketdash_market_backfills_pending", source="binance") == 0


async def test_a_symbol_the_exchange_lists_after_the_feeder_started_is_backfilled(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    ex = FakeBinance(["BTC/USDT"])
    await ex.start()
    try:
        async with streaming(ex, victoria_metrics_server, ["BTC/USDT"]) as run:
            feed = run.feed
            assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 5)
            await ex.trade("BTC/USDT", 100, 1, T)
            assert await eventually(lambda: feed.book.settled.get("BTC/USDT") == T, 5)  # REST client up
            ex.symbols.append("ETH/USDT")  # listed now, with a history
            ex.candles["ETH/USDT"] = {}
            for minute in range(-3, 0):
                await ex.trade("ETH/USDT", 10 + minute, 1, T + minute * MINUTE, push=False)
            by_symbol = catalogue_by_symbol()
            await feed.follow([by_symbol["BTC/USDT"], by_symbol["ETH/USDT"]])
            assert await eventually(lambda: ex.subscribed_to("ethusdt@kline_1m"), 5)
            await ex.trade("ETH/USDT", 10, 1, T)
            assert await eventually(lambda: feed.book.settled.get("ETH/USDT") == T, 5), feed.failing
            assert "backfills" not in feed.failing
            assert feed.book.backfilled == 3
    finally:
        await ex.stop()


def test_rows_a_replaced_connection_left_in_ccxts_cache_are_withheld_until_updated_again() -> None:
    """ccxt opens a new connection by itself when the server closed the old one between two watches; the
    old one's rows stay in its cache, and only its connection objects tell. Driven here through a real
    ccxt client's own connection table and candle cache (the window is too narrow to hit live)."""
    client = ccxt.pro.binance()
    btc, eth = ArrayCacheByTimestamp(100), ArrayCacheByTimestamp(100)
    btc.append([T, 1, 2, 1, 2, 3])
    btc.append([T + MINUTE, 2, 5, 2, 4, 1])  # partial: the old socket's last word on T+1
    eth.append([T, 7, 8, 7, 8, 1])
    client.ohlcvs = {"BTC/USDT": {"1m": btc}, "ETH/USDT": {"1m": eth}}
    client.clients = {"wss://stream": object()}
    connections = _ConnectionWatch(client)
    assert not connections.replaced({"ETH/USDT": [list(eth[-1])]})  # the first connection
    assert connections.fresh("BTC/USDT", [list(btc[-1])]) == [list(btc[-1])]

    client.clients = {"wss://stream": object()}  # ccxt's new connection, same address
    eth.append([T + MINUTE, 8, 9, 8, 9, 1])  # what resolved the watch on it
    assert connections.replaced({"ETH/USDT": [list(eth[-1])]})
    assert connections.fresh("ETH/USDT", [list(eth[-1])]) == [list(eth[-1])]
    assert connections.fresh("BTC/USDT", [list(btc[-1])]) == []  # left behind: withheld
    btc.append([T + MINUTE, 2, 6, 2, 5, 2])  # the new connection's update of the same minute
    assert connections.fresh("BTC/USDT", [list(btc[-1])]) == [list(btc[-1])]
    assert not connections.replaced({"BTC/USDT": [list(btc[-1])]})  # same connection since


async def test_a_failing_stream_is_reported_until_it_has_stayed_up_a_whole_grace_period(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    ex = FakeBinance(["BTC/USDT"])
    port = free_port()
    ex.url = f"http://127.0.0.1:{port}"  # where it will listen; nothing does yet
    grace = {"stream_failing_grace_s": 2.0}
    async with streaming(ex, victoria_metrics_server, ["BTC/USDT"], **grace) as run:
        feed = run.feed
        assert await eventually(lambda: "candles" in feed.failing, 5)
        await ex.start(port)
        assert await eventually(lambda: ex.subscribed_to("@kline_1m"), 10)
        delivered, at = feed.last_update.get("candles"), T
        for _ in range(50):
            await ex.trade("BTC/USDT", 100, 1, at)
            if await eventually(lambda: feed.last_update.get("candles") != delivered, 0.1):
                break
        assert feed.last_update.get("candles") != delivered
        assert "candles" in feed.failing  # delivering again, not yet for the grace period
        for _ in range(40):
            at += 1000
            await ex.trade("BTC/USDT", 100, 1, at)
            if await eventually(lambda: "candles" not in feed.failing, 0.1):
                break
        assert "candles" not in feed.failing
        # Failing again, then the watchlists drop the exchange: a stopped stream is not reported.
        await ex.stop()
        assert await eventually(lambda: "candles" in feed.failing, 10)
        await feed.follow([])
        assert feed.failing == {}
