"""`python -m marketdash.news`: run the news feeder until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import load_catalogue
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.logging import configure_logging
from marketdash.core.metrics import serve_metrics
from marketdash.news.fetch import Fetcher
from marketdash.news.metrics import NewsMetrics
from marketdash.news.service import NewsFeeder, build_sources
from marketdash.news.settings import NewsSettings
from marketdash.news.store import StateStore

log = logging.getLogger("marketdash.news")

# A source failing this many polls in a row counts as down for /healthz.
DOWN_AFTER_FAILURES = 3


def health(feeder: NewsFeeder, writer: InfluxWriter) -> tuple[bool, dict[str, Any]]:
    sources = {entry.source.name: {"failures": entry.schedule.failures} for entry in feeder.sources}
    down = [name for name, state in sources.items() if state["failures"] >= DOWN_AFTER_FAILURES]
    # Unhealthy only when every source is down: one dead feed is a metric and a log line, not a restart.
    healthy = not sources or len(down) < len(sources)
    return healthy, {"sources": sources, "influx_error": writer.last_error}


async def run(settings: NewsSettings, influx: InfluxSettings) -> None:
    registry = CollectorRegistry()
    metrics = NewsMetrics(registry)
    sources = build_sources(settings, metrics)
    if not sources:
        log.warning("no news source configured: set MARKETDASH_NEWS_FEEDS or an API key")
    fetcher = Fetcher(
        max_body_bytes=settings.max_body_bytes,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        total_timeout=settings.total_timeout_s,
    )
    store = StateStore(settings.data_dir / "news-state.sqlite3", settings.dedup_retention_s)
    writer = InfluxWriter(influx, registry)
    feeder = NewsFeeder(
        sources,
        fetcher=fetcher,
        store=store,
        writer=writer,
        catalogue=load_catalogue(),
        metrics=metrics,
        max_item_age_s=settings.max_item_age_s,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await writer.start()
    runner = await serve_metrics(
        registry, lambda: health(feeder, writer), settings.metrics_host, settings.metrics_port
    )
    log.info(
        "news feeder started",
        extra={"sources": [entry.source.name for entry in sources], "metrics_port": settings.metrics_port},
    )
    try:
        await feeder.run(stop)
    finally:
        await writer.close()
        await fetcher.aclose()
        store.close()
        await runner.cleanup()
        log.info("news feeder stopped")


def main() -> None:
    settings = NewsSettings()
    configure_logging("news", settings.log_level)
    asyncio.run(run(settings, InfluxSettings()))


if __name__ == "__main__":
    main()
