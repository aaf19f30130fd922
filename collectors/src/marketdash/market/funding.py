"""Funding rates of the perpetual swaps matching the followed crypto assets, over ccxt's REST API.

Perpetuals live in another ccxt client than spot (Binance: `binanceusdm`; Bybit: its linear markets), so
the spot streams never load the derivatives markets. A followed spot asset BTC/USDT is matched to the
linear perpetual BTC/USDT:USDT when the exchange lists one; the rest are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ccxt.pro

from marketdash.core.backoff import RECONNECT, Backoff
from marketdash.core.catalogue import Asset
from marketdash.core.influx import InfluxWriter
from marketdash.core.schema import FUNDING, SchemaError
from marketdash.market.exchanges import PERPETUALS, build_exchange
from marketdash.market.metrics import FeederMetrics

log = logging.getLogger(__name__)


class FundingPoller:
    def __init__(
        self,
        exchange_id: str,
        urls: dict[str, Any] | None,
        every_s: float,
        writer: InfluxWriter,
        metrics: FeederMetrics,
        backoff: Backoff = RECONNECT,
    ) -> None:
        self.exchange_id = exchange_id
        self.provider = f"{exchange_id}_funding"
        self.client_id, self.options = PERPETUALS[exchange_id]
        self.urls = urls
        self.every_s = every_s
        self.writer = writer
        self.metrics = metrics
        self.backoff = backoff
        self.assets: dict[str, Asset] = {}
        self.last_success: float | None = None

    def follow(self, assets: list[Asset]) -> None:
        self.assets = {}
        for asset in assets:
            spot = asset.sources.get(self.exchange_id)
            if asset.asset_class == "crypto" and spot and "/" in spot:
                self.assets[f"{spot}:{spot.split('/')[1]}"] = asset

    async def run(self) -> None:
        client = build_exchange(self.client_id, self.urls, self.options)
        attempt = 0
        try:
            while True:
                if not self.assets:
                    await asyncio.sleep(1)
                    continue
                try:
                    await self.poll(client)
                except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
                    reason = "network" if isinstance(exc, ccxt.NetworkError) else "http_error"
                    self.metrics.poll_errors.labels(self.provider, reason).inc()
                    log.warning("funding rates failed", extra={"source": self.exchange_id, "error": str(exc)})
                    await asyncio.sleep(self.backoff.delay(attempt))
                    attempt += 1
                    continue
                attempt = 0
                await asyncio.sleep(self.every_s)
        finally:
            await client.close()

    async def poll(self, client: ccxt.pro.Exchange) -> None:
        await client.load_markets()
        listed = [symbol for symbol in self.assets if symbol in client.markets]
        if not listed:
            return
        rates = await client.fetch_funding_rates(listed)
        for symbol, rate in rates.items():
            asset = self.assets.get(symbol)
            if asset is None:
                continue
            at = rate.get("timestamp") or int(time.time() * 1000)
            next_funding = rate.get("fundingTimestamp")
            fields = {
                "rate": rate.get("fundingRate"),
                "mark_price": rate.get("markPrice"),
                "index_price": rate.get("indexPrice"),
                "next_funding_ms": int(next_funding) if next_funding else None,
            }
            try:
                line = FUNDING.line(
                    {"source": self.exchange_id, "symbol": asset.symbol, "asset_class": asset.asset_class},
                    fields,
                    int(at),
                )
            except SchemaError as exc:
                self.metrics.poll_errors.labels(self.provider, "malformed").inc()
                log.warning("funding rate ignored", extra={"symbol": symbol, "error": str(exc)})
                continue
            self.writer.write(FUNDING.bucket, line, at / 1000)
            self.metrics.messages.labels(self.exchange_id, "funding_rate").inc()
        self.last_success = time.time()
