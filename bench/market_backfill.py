"""REST backfills of the market feeder: printed figures, not a timed test.

Against the local Binance-format exchange (in this process) and a real sink (victoria-metrics, which takes
the InfluxDB v2 write API), with the unmodified ccxt.pro client:
  catch-up   20 symbols each with 120 minutes the feeder has not seen; their first live update starts
             20 backfills: seconds until every symbol is settled, with BACKFILL_SLOTS 1 (one after the
             other, as the feeder used to) and 4 (the default), alternated, REST answering at once and
             after 300 ms
  drops      5 symbols over 20 simulated minutes, the socket dropped exactly on every other minute boundary
             (the first trade of that minute made while it is down) with every REST call slowed by 300 ms:
             closed candles stored wrong or missing, compared with the exchange's own, minute for minute

    .venv/bin/python bench/market_backfill.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import Asset, load_catalogue, uncatalogued_asset
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.market.metrics import FeederMetrics
from marketdash.market.settings import MarketSettings
from marketdash.market.streams import ExchangeFeed
from marketdash_testing.fake_binance import MINUTE, FakeBinance
from marketdash_testing.servers import VictoriaMetrics, free_port

HISTORY_MIN = 120
FIELDS = ("open", "high", "low", "close", "volume")


def binance_assets(count: int) -> list[Asset]:
    """The catalogue's Binance pairs, then pairs it lacks (collected under their own spelling)."""
    assets = [asset for asset in load_catalogue() if "binance" in asset.sources][:count]
    for n in range(count - len(assets)):
        asset = uncatalogued_asset(f"COIN{n}/USDT", ("binance",))
        assert asset is not None
        assets.append(asset)
    return assets


async def wait_for(predicate: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.005)
    return predicate()


@contextlib.asynccontextmanager
async def feeding(
    exchange: FakeBinance, sink: VictoriaMetrics, assets: list[Asset], slots: int
) -> AsyncIterator[ExchangeFeed]:
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=sink.url, flush_interval_s=0.1), registry)
    await writer.start()
    settings = MarketSettings(
        exchanges=["binance"],
        exchange_urls={"binance": exchange.ccxt_urls()},
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        stagger_s=0,
        initial_backfill_min=HISTORY_MIN,
        backfill_slots=slots,
    )
    feed = ExchangeFeed("binance", settings, writer, FeederMetrics(registry))
    await feed.follow(assets)
    try:
        yield feed
        if not await writer.flush(within_s=30):
            raise SystemExit("the sink did not take every candle within 30 s")
    finally:
        await feed.close()
        await writer.close()


async def catch_up(sink: VictoriaMetrics, slots: int, delay_s: float) -> float:
    """Seconds from the first live update of 20 symbols to every one of them settled."""
    assets = binance_assets(20)
    symbols = [asset.sources["binance"] for asset in assets]
    exchange = FakeBinance(symbols, klines_delay_s=delay_s)
    now = int(time.time() * 1000) // MINUTE * MINUTE
    for symbol in symbols:
        for back in range(HISTORY_MIN, 0, -1):
            await exchange.trade(symbol, 100 + back / 10, 1, now - back * MINUTE, push=False)
    await exchange.start()
    try:
        async with feeding(exchange, sink, assets, slots) as feed:
            if not await wait_for(lambda: exchange.subscribed_to("@kline_1m"), 10):
                raise SystemExit("the feeder did not subscribe")
            started = time.perf_counter()
            await exchange.trade_together(dict.fromkeys(symbols, 100.0), 1, now + 1000)
            settled = await wait_for(
                lambda: all(feed.book.settled.get(symbol) == now for symbol in symbols), 120
            )
            elapsed = time.perf_counter() - started
            if not settled or feed.book.backfilled != 20 * HISTORY_MIN:
                raise SystemExit(f"catch-up incomplete: {feed.book.backfilled} candles backfilled")
    finally:
        await exchange.stop()
    return elapsed


async def drops(sink: VictoriaMetrics, minutes: int) -> dict[str, int]:
    """Wrong and missing closed candles after drops on minute boundaries, REST slowed by 300 ms."""
    assets = binance_assets(5)
    symbols = [asset.sources["binance"] for asset in assets]
    exchange = FakeBinance(symbols, klines_delay_s=0.3)
    # Six hours back: clear of the catch-up's minutes in the same sink.
    start = (int(time.time() * 1000) // MINUTE - 6 * 60) * MINUTE
    for symbol in symbols:
        for back in range(10, 0, -1):
            await exchange.trade(symbol, 50 + back, 1, start - back * MINUTE, push=False)
    await exchange.start()
    reconnected = 0
    try:
        async with feeding(exchange, sink, assets, slots=4) as feed:
            for minute in range(minutes + 1):
                at = start + minute * MINUTE
                if not await wait_for(lambda: exchange.subscribed_to("@kline_1m"), 10):
                    raise SystemExit("the feeder did not resubscribe")
                prices = {symbol: 100.0 + minute + index for index, symbol in enumerate(symbols)}
                if minute % 2 and minute < minutes:
                    await exchange.drop_connections()  # on the boundary: the minute opens unseen
                    for symbol, price in prices.items():
                        await exchange.trade(symbol, price - 0.5, 2, at, push=False)
                    reconnected += 1
                    if not await wait_for(lambda: exchange.subscribed_to("@kline_1m"), 10):
                        raise SystemExit("the feeder did not resubscribe")
                await exchange.trade_together(prices, 1, at + 20_000)
                await exchange.trade_together({s: p + 0.25 for s, p in prices.items()}, 1, at + 40_000)
            last = start + minutes * MINUTE
            if not await wait_for(lambda: all(feed.book.settled.get(s) == last for s in symbols), 60):
                raise SystemExit(f"not settled: {feed.book.settled}")
    finally:
        await exchange.stop()
    wrong = missing = 0
    for symbol in symbols:
        stored = sink.export(f'{{__name__=~"candle_.*", symbol="{symbol}"}}')
        columns = {dict(labels)["__name__"]: dict(samples) for labels, samples in stored.items()}
        for ts, candle in exchange.candles[symbol].items():
            if ts >= start + minutes * MINUTE:
                continue  # still open
            if ts not in columns.get("candle_close", {}):
                missing += 1
            else:
                stored_candle = tuple(columns[f"candle_{k}"][ts] for k in FIELDS)
                wrong += stored_candle != tuple(getattr(candle, k) for k in FIELDS)
    closed = sum(1 for symbol in symbols for ts in exchange.candles[symbol] if ts < start + minutes * MINUTE)
    return {"closed candles": closed, "drops": reconnected, "wrong": wrong, "missing": missing}


async def run(rounds: int, minutes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as storage:
        sink = VictoriaMetrics(Path(storage), free_port())
        sink.start()
        try:
            figures: dict[tuple[int, float], list[float]] = {}
            for _ in range(rounds):
                for delay_s in (0.0, 0.3):
                    for slots in (1, 4):
                        figures.setdefault((slots, delay_s), []).append(await catch_up(sink, slots, delay_s))
            print(f"catch-up: 20 symbols x {HISTORY_MIN} min, medians of {rounds} alternated rounds")
            print("| REST answers | slots 1 (s) | slots 4 (s) | ratio 4/1 |")
            print("| --- | --- | --- | --- |")
            for delay_s in (0.0, 0.3):
                one = statistics.median(figures[1, delay_s])
                four = statistics.median(figures[4, delay_s])
                print(f"| after {delay_s * 1000:.0f} ms | {one:.2f} | {four:.2f} | {four / one:.2f} |")
            outcome = await drops(sink, minutes)
            print(f"drops on minute boundaries, REST +300 ms, {minutes} minutes: {outcome}")
        finally:
            sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=20)
    args = parser.parse_args()
    # The drops make the expected "stream failed" warnings: only errors are worth printing here.
    logging.getLogger("marketdash").setLevel(logging.ERROR)
    asyncio.run(run(args.rounds, args.minutes))


if __name__ == "__main__":
    main()
