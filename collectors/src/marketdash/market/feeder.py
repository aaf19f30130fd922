"""The market feeder: watchlists in, streams and pollers following them, one writer out (a service of
`marketdash.core.service`)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import Asset
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.service import until_stopped
from marketdash.market.exchanges import PERPETUALS
from marketdash.market.funding import FundingPoller
from marketdash.market.metrics import FeederMetrics
from marketdash.market.polling import AlphaVantagePoller, CoinGeckoPoller, Poller, YahooPoller
from marketdash.market.settings import MarketSettings
from marketdash.market.streams import ExchangeFeed
from marketdash.market.watchlist import WatchlistFollower

log = logging.getLogger(__name__)

# The writer may be failing this long (an InfluxDB restart) before /healthz says so.
WRITER_GRACE_S = 120.0


class MarketFeeder:
    def __init__(
        self,
        settings: MarketSettings,
        influx: InfluxSettings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = FeederMetrics(self.registry)
        self.writer = InfluxWriter(influx, self.registry)
        self.feeds = [ExchangeFeed(name, settings, self.writer, self.metrics) for name in settings.exchanges]
        common = {"writer": self.writer, "metrics": self.metrics}
        self.pollers: list[Poller | FundingPoller] = [
            YahooPoller(
                settings.yahoo_url, settings.yahoo_every_s, changes_every_s=settings.changes_every_s, **common
            ),
            CoinGeckoPoller(settings.coingecko_url, settings.coingecko_every_s, **common),
            AlphaVantagePoller(
                settings.alphavantage_url,
                settings.alphavantage_every_s,
                api_key=settings.alphavantage_key,
                **common,
            ),
        ]
        self.pollers += [
            FundingPoller(
                name,
                settings.exchange_urls.get(PERPETUALS[name][0]),
                settings.funding_every_s,
                backoff=settings.backoff,
                **common,
            )
            for name in settings.funding_exchanges
        ]
        self.watchlists = WatchlistFollower(
            settings.postgres_dsn,
            settings.fallback_symbols,
            self.follow,
            exchanges=settings.exchanges,
            backoff=settings.backoff,
        )
        self.started = time.time()

    async def follow(self, assets: list[Asset]) -> None:
        self.metrics.symbols.set(len(assets))
        for poller in self.pollers:
            poller.follow(assets)
        for feed in self.feeds:
            await feed.follow(assets)
            # Staggered: a change of watchlist must not open every exchange's sockets at once.
            await asyncio.sleep(self.settings.stagger_s)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("market feeder started", extra={"exchanges": self.settings.exchanges})
        tasks = [asyncio.create_task(self.watchlists.run(), name="watchlists")]
        tasks += [asyncio.create_task(p.run(), name=f"poll-{p.provider}") for p in self.pollers]
        await until_stopped(stop, tasks)

    async def close(self) -> None:
        for feed in self.feeds:
            await feed.close()

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.time()
        writer = self.writer
        writer_failing = (
            writer.last_error is not None and now - (writer.last_success or self.started) > WRITER_GRACE_S
        )
        streams = {
            f"{feed.exchange_id}/{stream}": round(now - at, 1)
            for feed in self.feeds
            for stream, at in feed.last_update.items()
        }
        details = {
            "watchlists": self.watchlists.origin,
            "symbols": len(self.watchlists.current or []),
            "writer": {"pending": writer.pending, "last_error": writer.last_error},
            "stream_age_s": streams,
            "pollers": {
                p.provider: None if p.last_success is None else round(now - p.last_success, 1)
                for p in self.pollers
            },
        }
        failing = {
            f"{feed.exchange_id}/{stream}": {"for_s": round(now - since, 1), "error": error}
            for feed in self.feeds
            for stream, (since, error) in feed.failing.items()
        }
        details["streams_failing"] = failing
        streams_down = any(
            entry["for_s"] > self.settings.stream_failing_grace_s for entry in failing.values()
        )
        return not (writer_failing or streams_down), details
