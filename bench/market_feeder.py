"""Market feeder benchmark: printed figures, not a timed test.

One run, side by side, against the local Binance-format exchange (its own process) and a real sink
(victoria-metrics, which takes the InfluxDB v2 write API):
  bare      the unchanged ccxt.pro client consuming the same flood (candles + tickers), writing nothing
  feeder    our ExchangeFeed consuming it and writing every update into the sink, until the sink has it all
  paced     the feeder at a fixed, moderate rate: event-to-write latency when not saturated
  writers   our batched gzip writer vs a writer sending one request per point (as cryptofeed does)
Each scenario runs in a fresh subprocess so its peak RSS is its own.

    .venv/bin/python bench/market_feeder.py [--flood 100000] [--paced-rate 2500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from marketdash_testing.servers import VictoriaMetrics, free_port


def binance_assets() -> list[Any]:
    from marketdash.core.catalogue import load_catalogue

    return [asset for asset in load_catalogue() if "binance" in asset.sources]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


# --- scenarios (each in its own process) ---------------------------------------------------------


async def scenario_bare(exchange_url: str, flood: int) -> dict[str, Any]:
    from marketdash.market.exchanges import build_exchange

    symbols = [asset.sources["binance"] for asset in binance_assets()]
    ws = exchange_url.replace("http://", "ws://")
    urls = {"api": {"public": f"{exchange_url}/api/v3", "ws": {"spot": f"{ws}/stream/ws"}}}
    # The exchange starts both floods once both streams subscribed: time runs from the first update.
    first: list[float] = []
    # A watch returns only the symbol that resolved it; updates ccxt parsed while no watch was pending
    # are in its cache, so that is where the end of the flood shows.

    async def candles() -> float:
        client = build_exchange("binance", urls)
        await client.load_markets()
        pairs = [[symbol, "1m"] for symbol in symbols]
        while True:
            await client.watch_ohlcv_for_symbols(pairs)
            first.append(time.time())
            cached = client.ohlcvs
            if all(symbol in cached and cached[symbol]["1m"][-1][4] == -1 for symbol in symbols):
                break
        await client.close()
        return time.time()

    # Event (the exchange's send time, the ticker's timestamp) to parsed, for each ticker ccxt replaced
    # since the last look: what ccxt alone makes of the flood, beside the feeder's event→write.
    lags: list[float] = []

    async def tickers() -> float:
        client = build_exchange("binance", urls)
        await client.load_markets()
        seen: dict[str, Any] = {}
        while True:
            await client.watch_tickers(symbols, {"name": "ticker"})
            now = time.time()
            first.append(now)
            cached = client.tickers
            for symbol, ticker in cached.items():
                if ticker is not seen.get(symbol) and ticker["last"] != -1:
                    lags.append(now - ticker["timestamp"] / 1000)
            seen.update(cached)
            if all(symbol in cached and cached[symbol]["last"] == -1 for symbol in symbols):
                break
        await client.close()
        return time.time()

    ended = max(await asyncio.gather(candles(), tickers()))
    started = min(first)
    messages = 2 * (flood + len(symbols))
    return {
        "messages": messages,
        "seconds": ended - started,
        "rate": messages / (ended - started),
        "lag_p50_ms": percentile(lags, 50) * 1000,
        "lag_p99_ms": percentile(lags, 99) * 1000,
    }


async def scenario_feeder(exchange_url: str, sink_url: str, flood: int, for_s: float = 0) -> dict[str, Any]:
    """Until every symbol's end-of-flood ticker is in the sink; or, with `for_s`, for that long."""
    from prometheus_client import CollectorRegistry

    from marketdash.core.influx import InfluxSettings, InfluxWriter
    from marketdash.market.metrics import FeederMetrics
    from marketdash.market.settings import MarketSettings
    from marketdash.market.streams import ExchangeFeed

    assets = binance_assets()
    ws = exchange_url.replace("http://", "ws://")
    urls = {"api": {"public": f"{exchange_url}/api/v3", "ws": {"spot": f"{ws}/stream/ws"}}}
    settings = MarketSettings(
        exchanges=["binance"], exchange_urls={"binance": urls}, stagger_s=0, stale_after_s=60
    )
    lags: list[float] = []
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=sink_url), registry, lag_observer=lags.extend)
    # Observation only: note when the flood's last ticker of each symbol is handed to the writer.
    sentinels: set[str] = set()
    write = writer.write

    def observed_write(bucket: str, line: str, event_time: float | None = None) -> None:
        if "last=-1.0" in line:
            sentinels.add(line.split(",symbol=", 1)[1].split(" ", 1)[0])
        write(bucket, line, event_time)

    writer.write = observed_write  # type: ignore[method-assign]
    feed = ExchangeFeed("binance", settings, writer, FeederMetrics(registry))
    await writer.start()
    await feed.follow(assets)
    started = None
    for _ in range(120_000):  # at most ten minutes
        if started is None and feed.last_update:
            started = min(feed.last_update.values())  # first update of either stream, as for bare ccxt
        if len(sentinels) >= len(assets) or (for_s and started and time.time() - started > for_s):
            break
        await asyncio.sleep(0.005)
    queued = time.time()
    await writer.flush(within_s=60)
    ended = time.time()
    assert started is not None
    await feed.close()
    await writer.close()
    messages = 2 * (flood + len(assets))
    written = registry.get_sample_value("marketdash_influx_points_written_total", {"bucket": "markets"})
    return {
        "messages": messages,
        "seconds": ended - started,
        "rate": messages / (ended - started),
        "points_written": written,
        "seconds_until_all_queued": queued - started,
        "lag_p50_ms": percentile(lags, 50) * 1000,
        "lag_p99_ms": percentile(lags, 99) * 1000,
        "dropped": sum(
            registry.get_sample_value("marketdash_influx_points_dropped_total", {"reason": r}) or 0
            for r in ("buffer_full", "rejected", "shutdown")
        ),
    }


async def scenario_writers(sink_url: str, batched_points: int, single_points: int) -> dict[str, Any]:
    import aiohttp

    from marketdash.core.influx import InfluxSettings, InfluxWriter
    from marketdash.core.schema import TICKER

    base = int(time.time() * 1000) - 3_600_000
    series = [TICKER.series(source="bench", symbol=f"S{i:02d}", asset_class="crypto") for i in range(20)]
    lines = [
        series[i % 20].line({"last": 100.0 + i % 97, "bid": 99.5, "ask": 100.5}, base + i)
        for i in range(batched_points)
    ]

    writer = InfluxWriter(InfluxSettings(url=sink_url))
    started = time.perf_counter()
    await writer.start()
    writer.write_many("markets", lines)
    await writer.flush(within_s=120)
    batched_s = time.perf_counter() - started
    await writer.close()

    # One request per point, no compression, no retry: the cryptofeed InfluxDB backend's way.
    params = {"org": "bloomberg", "bucket": "markets", "precision": "ms"}
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for line in lines[:single_points]:
            async with session.post(f"{sink_url}/api/v2/write", params=params, data=line) as response:
                response.raise_for_status()
        single_s = time.perf_counter() - started
    batched_rate, single_rate = batched_points / batched_s, single_points / single_s
    return {"batched_rate": batched_rate, "single_rate": single_rate, "speedup": batched_rate / single_rate}


def run_scenario(args: argparse.Namespace) -> None:
    if args.scenario == "bare":
        result = asyncio.run(scenario_bare(args.exchange, args.flood))
    elif args.scenario == "feeder":
        result = asyncio.run(scenario_feeder(args.exchange, args.sink, args.flood))
    elif args.scenario == "paced":
        result = asyncio.run(scenario_feeder(args.exchange, args.sink, args.flood, for_s=args.paced_seconds))
    else:
        result = asyncio.run(scenario_writers(args.sink, args.batched_points, args.single_points))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


# --- orchestration ---------------------------------------------------------------------------------


def start_exchange(flood: int, rate: float) -> tuple[subprocess.Popen[str], str]:
    symbols = ",".join(asset.sources["binance"] for asset in binance_assets())
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketdash_testing.fake_binance",
            "--port",
            str(port),
            "--symbols",
            symbols,
            "--flood",
            str(flood),
            "--rate",
            str(rate),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def child(args: argparse.Namespace, scenario: str, **extra: Any) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--scenario",
        scenario,
        "--flood",
        str(extra.get("flood", args.flood)),
    ]
    for key in ("exchange", "sink"):
        if key in extra:
            command += [f"--{key}", extra[key]]
    command += ["--batched-points", str(args.batched_points), "--single-points", str(args.single_points)]
    command += ["--paced-seconds", str(args.paced_seconds)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(output.strip().splitlines()[-1])


def orchestrate(args: argparse.Namespace) -> None:
    storage = Path(tempfile.mkdtemp(prefix="bench-vm-"))
    sink = VictoriaMetrics(storage, free_port())
    sink.start()
    sink_url = sink.url
    results: dict[str, dict[str, Any]] = {}
    try:
        for scenario, flood, rate in (
            ("bare", args.flood, 0.0),
            ("feeder", args.flood, 0.0),
            ("paced", int(args.paced_rate * args.paced_seconds), args.paced_rate),
        ):
            exchange, exchange_url = start_exchange(flood, rate)
            try:
                results[scenario] = child(args, scenario, exchange=exchange_url, sink=sink_url, flood=flood)
            finally:
                exchange.terminate()
                exchange.wait()
        results["writers"] = child(args, "writers", sink=sink_url)
    finally:
        sink.stop()
        shutil.rmtree(storage, ignore_errors=True)

    symbols = len(binance_assets())
    bare, feeder, paced, writers = results["bare"], results["feeder"], results["paced"], results["writers"]
    print(f"market feeder benchmark — {symbols} symbols, 1 m candles + tickers, {os.cpu_count()} cores")
    print(f"  flood: {args.flood} messages per stream (2 streams), exchange and sink in their own processes")
    print(f"  bare ccxt.pro        {bare['rate']:>9,.0f} msg/s   peak RSS {bare['peak_rss_mb']:.0f} MB")
    print(
        f"  feeder → sink        {feeder['rate']:>9,.0f} msg/s   peak RSS {feeder['peak_rss_mb']:.0f} MB   "
        f"= {feeder['rate'] / bare['rate']:.0%} of bare ccxt"
    )
    print(
        f"     all updates handed to the writer after {feeder['seconds_until_all_queued']:.1f} s of "
        f"{feeder['seconds']:.1f} s; bare ccxt took {bare['seconds']:.1f} s"
    )
    print(
        f"     {feeder['points_written']:.0f} points written, {feeder['dropped']:.0f} dropped; event→write "
        f"p50 {feeder['lag_p50_ms']:.0f} ms, p99 {feeder['lag_p99_ms']:.0f} ms (saturated); bare ccxt's "
        f"event→parsed (tickers) p50 {bare['lag_p50_ms']:.0f} ms, p99 {bare['lag_p99_ms']:.0f} ms"
    )
    print(
        f"  feeder paced at {2 * args.paced_rate:,.0f} msg/s: event→write p50 {paced['lag_p50_ms']:.0f} ms, "
        f"p99 {paced['lag_p99_ms']:.0f} ms (flush interval 1 s), peak RSS {paced['peak_rss_mb']:.0f} MB"
    )
    print(
        f"  writer: batched+gzip {writers['batched_rate']:>9,.0f} points/s; one request per point "
        f"{writers['single_rate']:,.0f} points/s → speed-up x{writers['speedup']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flood", type=int, default=100_000, help="messages per stream, saturated runs")
    parser.add_argument("--paced-rate", type=float, default=2500.0, help="messages/s per stream, paced run")
    parser.add_argument("--paced-seconds", type=int, default=6)
    parser.add_argument("--batched-points", type=int, default=200_000)
    parser.add_argument("--single-points", type=int, default=5_000)
    parser.add_argument("--scenario", choices=["bare", "feeder", "paced", "writers"], help=argparse.SUPPRESS)
    parser.add_argument("--exchange", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        run_scenario(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
