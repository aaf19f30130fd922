"""Funding rates of perpetuals through ccxt's binanceusdm client against the local exchange."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import catalogue_by_symbol
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.market.funding import FundingPoller
from marketdash.market.metrics import FeederMetrics
from marketdash_testing.fake_binance import FakeBinance
from marketdash_testing.servers import VictoriaMetrics, eventually


async def test_funding_rates_of_listed_perpetuals_are_written(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    exchange = FakeBinance(["BTC/USDT", "ETH/USDT"])
    next_funding = (int(time.time()) // 28800 + 1) * 28800 * 1000
    exchange.perpetuals = {"BTC/USDT": (0.0001, 67000.0, next_funding)}  # no ETH perpetual listed
    await exchange.start()
    registry = CollectorRegistry()
    writer = InfluxWriter(InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=0.1), registry)
    await writer.start()
    poller = FundingPoller("binance", exchange.ccxt_futures_urls(), 60, writer, FeederMetrics(registry))
    poller.follow([catalogue_by_symbol()[s] for s in ("BTC/USDT", "ETH/USDT", "SPX")])
    task = asyncio.create_task(poller.run())
    try:
        assert await eventually(lambda: poller.last_success is not None, 10)
        assert await writer.flush(within_s=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.close()
        await exchange.stop()
    stored = victoria_metrics_server.export('{__name__=~"funding_rate_.*"}')
    by_name = {
        dict(labels)["__name__"]: (dict(labels)["symbol"], samples[0][1])
        for labels, samples in stored.items()
    }
    assert by_name["funding_rate_rate"] == ("BTC/USDT", 0.0001)
    assert by_name["funding_rate_mark_price"] == ("BTC/USDT", 67000.0)
    assert by_name["funding_rate_next_funding_ms"] == ("BTC/USDT", float(next_funding))
