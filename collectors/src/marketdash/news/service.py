"""The news feeder: polls each source on its own schedule; new items are scored, tagged and written.

Data flows one way: source → fetch → parse → normalise → de-duplicate → sentiment and assets → writer.
Parsing and scoring run in worker threads, the rest (the de-duplication store, the writer) in the event
loop, which stays free for the other sources and /healthz while a large feed is read.
A source failing in any way (network, HTTP status, refused or unusable body) backs off on its own and
never stops the others; a malformed feed still yields the entries that could be read.
It runs in the collectors' service shell (`marketdash.core.service`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import Asset, load_catalogue
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.schema import BUCKET_NEWS, NEWS, NEWS_MENTION
from marketdash.core.service import until_stopped
from marketdash.news.feeds import FeedRefusedError
from marketdash.news.fetch import Fetcher, FetchError
from marketdash.news.items import NewsItem, RawEntry, normalise
from marketdash.news.metrics import NewsMetrics
from marketdash.news.schedule import RateBudget, SourceSchedule
from marketdash.news.sentiment import FinanceSentiment
from marketdash.news.settings import NewsSettings
from marketdash.news.sources import CryptoPanicSource, MalformedAnswerError, NewsApiSource, RssSource, Source
from marketdash.news.store import StateStore
from marketdash.news.tagging import AssetTagger

log = logging.getLogger(__name__)

# A source failing this many polls in a row counts as down for /healthz.
DOWN_AFTER_FAILURES = 3


@dataclass
class ScheduledSource:
    source: Source
    schedule: SourceSchedule
    budget_logged: bool = False


@dataclass(frozen=True)
class PollOutcome:
    result: str  # a FETCH_RESULTS label
    new_items: tuple[NewsItem, ...] = ()
    problem: str | None = None


def build_sources(settings: NewsSettings, metrics: NewsMetrics) -> list[ScheduledSource]:
    """The configured sources; an API without its key is off, and the log says so once, here."""
    sources: list[ScheduledSource] = []
    for feed in settings.feeds:
        budget = RateBudget(feed.max_requests, feed.window_s) if feed.max_requests else None
        sources.append(
            ScheduledSource(
                RssSource(feed.name, feed.url),
                SourceSchedule(feed.interval_s, budget, settings.max_backoff_s),
            )
        )
    # The APIs that need a key are off without one, and the log says which setting turns them on.
    keyed = (
        ("cryptopanic", settings.cryptopanic_token, _cryptopanic, "CryptoPanic token", "CRYPTOPANIC_TOKEN"),
        ("newsapi", settings.newsapi_key, _newsapi, "NewsAPI key", "NEWSAPI_KEY"),
    )
    for name, key, build, what, variable in keyed:
        if key is not None and key.get_secret_value():
            sources.append(build(settings, key.get_secret_value()))
        else:
            metrics.source(name, enabled=False)
            log.info(f"source off: no {what} (set MARKETDASH_NEWS_{variable})", extra={"source": name})
    names = [entry.source.name for entry in sources]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"news source names must be unique; repeated: {sorted(duplicates)}")
    for name in names:
        metrics.source(name)
    return sources


def _cryptopanic(settings: NewsSettings, token: str) -> ScheduledSource:
    budget = RateBudget(settings.cryptopanic_max_requests, settings.cryptopanic_window_s)
    return ScheduledSource(
        CryptoPanicSource(token, settings.cryptopanic_url, settings.cryptopanic_currencies),
        SourceSchedule(settings.cryptopanic_interval_s, budget, settings.max_backoff_s),
    )


def _newsapi(settings: NewsSettings, key: str) -> ScheduledSource:
    budget = RateBudget(settings.newsapi_max_requests, settings.newsapi_window_s)
    return ScheduledSource(
        NewsApiSource(key, settings.newsapi_url, dict(settings.newsapi_query)),
        SourceSchedule(settings.newsapi_interval_s, budget, settings.max_backoff_s),
    )


def point_time_ms(item: NewsItem) -> int:
    """Publication second plus a sub-second offset from the item's id: items of one source published in
    the same second (feeds give whole seconds) stay distinct points of the series."""
    offset = int(hashlib.sha256(item.url.encode()).hexdigest()[:8], 16) % 1000
    return int(item.published.timestamp()) * 1000 + offset


def news_lines(item: NewsItem, assets: dict[str, Asset]) -> list[str]:
    time_ms = point_time_ms(item)
    item_id = item.item_id
    lines = [
        NEWS.line(
            {"source": item.source},
            {
                "title": item.title,
                "url": item.url,
                "summary": item.summary,
                "publisher": item.publisher,
                "assets": ",".join(item.assets),
                "categories": ",".join(item.tags),
                "sentiment": item.sentiment,
                "item_id": item_id,
            },
            time_ms,
        )
    ]
    for symbol in item.assets:
        lines.append(
            NEWS_MENTION.line(
                {"source": item.source, "symbol": symbol, "asset_class": assets[symbol].asset_class},
                {"sentiment": item.sentiment, "title": item.title, "url": item.url, "item_id": item_id},
                time_ms,
            )
        )
    return lines


class NewsFeeder:
    def __init__(
        self,
        settings: NewsSettings,
        influx: InfluxSettings,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = NewsMetrics(self.registry)
        self.sources = build_sources(settings, self.metrics)
        if not self.sources:
            log.warning("no news source configured: set MARKETDASH_NEWS_FEEDS or an API key")
        self.fetcher = Fetcher(
            max_body_bytes=settings.max_body_bytes,
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            total_timeout=settings.total_timeout_s,
        )
        self.store = StateStore(settings.data_dir / "news-state.sqlite3", settings.dedup_retention_s)
        self.writer = InfluxWriter(influx, self.registry)
        self.assets = {asset.symbol: asset for asset in load_catalogue()}
        self.tagger = AssetTagger(self.assets.values())
        self.sentiment = FinanceSentiment()
        self.max_item_age_s = settings.max_item_age_s
        self.clock = clock

    def health(self) -> tuple[bool, dict[str, Any]]:
        sources = {entry.source.name: {"failures": entry.schedule.failures} for entry in self.sources}
        down = [name for name, state in sources.items() if state["failures"] >= DOWN_AFTER_FAILURES]
        # Unhealthy only when every source is down: one dead feed is a metric and a log line, not a restart.
        healthy = not sources or len(down) < len(sources)
        return healthy, {"sources": sources, "influx_error": self.writer.last_error}

    async def close(self) -> None:
        await self.fetcher.aclose()
        self.store.close()

    def source(self, name: str) -> ScheduledSource:
        return next(entry for entry in self.sources if entry.source.name == name)

    async def poll(self, entry: ScheduledSource) -> PollOutcome:
        """One poll of one source, whatever happens; the schedule is updated from the result."""
        source, schedule, name = entry.source, entry.schedule, entry.source.name
        now = self.clock()
        schedule.started(now)
        request = source.request()
        cache_key = f"{name} {request.url}"  # the URL without its query: API keys stay out of the store
        started = time.monotonic()
        try:
            result = await self.fetcher.get(
                request.url,
                params=request.params,
                headers=request.headers,
                validators=self.store.validators(cache_key),
            )
        except FetchError as exc:
            return self._failed(entry, exc.reason, str(exc), exc.retry_after)
        finally:
            self.metrics.fetch_seconds.labels(name).observe(time.monotonic() - started)
        if result.not_modified:
            return self._succeeded(entry, "not_modified")
        try:
            # Parsing (and below, scoring) is CPU work: a large legal feed takes seconds, which in the
            # event loop would hold every other source and /healthz. A worker thread takes it.
            parsed = await asyncio.to_thread(source.parse, result.body, result.content_type)
        except FeedRefusedError as exc:
            return self._failed(entry, "refused", str(exc), None)
        except MalformedAnswerError as exc:
            return self._failed(entry, "malformed", str(exc), None)
        if parsed.problem:
            self.metrics.feed_problems.labels(name).inc()
            log.warning(
                "feed malformed, kept what could be read",
                extra={"source": name, "problem": parsed.problem[:300], "entries": len(parsed.entries)},
            )
        # Validators only after a body was accepted: a refused body must be fetched again, not 304'd.
        self.store.save_validators(cache_key, result.validators)
        new_items = await self._ingest(name, parsed.entries)
        return self._succeeded(entry, "ok", new_items, parsed.problem)

    async def _ingest(self, name: str, entries: Iterable[RawEntry]) -> tuple[NewsItem, ...]:
        fetched_at = datetime.fromtimestamp(self.clock(), UTC)
        oldest = self.clock() - self.max_item_age_s
        items: list[NewsItem] = []
        tickers: dict[int, tuple[str, ...]] = {}
        for entry in entries:
            item = normalise(entry, name, fetched_at)
            if item is None:
                self.metrics.items.labels(name, "invalid").inc()
                continue
            if item.published.timestamp() < oldest:
                self.metrics.items.labels(name, "stale").inc()
                continue
            items.append(item)
            tickers[id(item)] = entry.tickers
        # Scored before they are claimed, and claimed and written with no await between: a poll cancelled
        # while scoring claims nothing, so no item is marked seen without having been written.
        candidates = self.store.unseen(items)
        enriched = await asyncio.to_thread(
            lambda: [self.enrich(item, tickers=tickers[id(item)]) for item in candidates]
        )
        fresh = self.store.claim_new(enriched, self.clock())
        self.metrics.items.labels(name, "duplicate").inc(len(items) - len(fresh))
        written = []
        for item in fresh:
            for line in news_lines(item, self.assets):
                self.writer.write(BUCKET_NEWS, line, event_time=item.published.timestamp())
            self.metrics.sentiment.observe(item.sentiment)
            written.append(item)
        self.metrics.items.labels(name, "new").inc(len(written))
        return tuple(written)

    def enrich(self, item: NewsItem, tickers: Iterable[str] = ()) -> NewsItem:
        """The item with its sentiment (from the headline) and the assets its text mentions."""
        return replace(
            item,
            sentiment=self.sentiment.score(item.title),
            assets=self.tagger.tag(item.title, item.summary, tickers=tickers),
        )

    def _succeeded(
        self,
        entry: ScheduledSource,
        result: str,
        items: tuple[NewsItem, ...] = (),
        problem: str | None = None,
    ) -> PollOutcome:
        name, now = entry.source.name, self.clock()
        entry.schedule.succeeded(now)
        self.metrics.fetches.labels(name, result).inc()
        self.metrics.source_up.labels(name).set(1)
        self.metrics.last_success.labels(name).set(now)
        log.info("polled", extra={"source": name, "result": result, "new_items": len(items)})
        return PollOutcome(result, items, problem)

    def _failed(
        self, entry: ScheduledSource, result: str, message: str, retry_after: float | None
    ) -> PollOutcome:
        name = entry.source.name
        delay = entry.schedule.failed(self.clock(), retry_after)
        self.metrics.fetches.labels(name, result).inc()
        self.metrics.source_up.labels(name).set(0)
        log.warning(
            "poll failed, backing off",
            extra={
                "source": name,
                "result": result,
                "error": message[:300],
                "retry_in_s": round(delay, 1),
                "failures": entry.schedule.failures,
            },
        )
        return PollOutcome(result, problem=message)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every source on its schedule until `stop` is set; a poll in flight then is abandoned (what
        it already queued is written by the writer's close), so shutdown never waits for a slow source."""
        log.info("news feeder started", extra={"sources": [entry.source.name for entry in self.sources]})
        tasks = [
            asyncio.create_task(self._run_source(entry, stop), name=f"news-{entry.source.name}")
            for entry in self.sources
        ]
        tasks.append(asyncio.create_task(self._prune_daily(stop), name="news-prune"))
        await until_stopped(stop, tasks)

    async def _sleep_until(self, when: float, stop: asyncio.Event) -> bool:
        """False if `stop` was set meanwhile."""
        delay = when - self.clock()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        return not stop.is_set()

    async def _run_source(self, entry: ScheduledSource, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = self.clock()
            due = entry.schedule.due_at(now)
            if due > max(entry.schedule.next_due, now) and not entry.budget_logged:
                log.info(
                    "request budget spent, waiting",
                    extra={"source": entry.source.name, "wait_s": round(due - now)},
                )
                entry.budget_logged = True
            if not await self._sleep_until(due, stop):
                return
            entry.budget_logged = False
            try:
                await self.poll(entry)
            except Exception as exc:  # a bug in one source's handling must not stop the feeder
                log.exception("poll crashed", extra={"source": entry.source.name})
                self._failed(entry, "error", f"{type(exc).__name__}: {exc}", None)

    async def _prune_daily(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                removed = self.store.prune(self.clock())
            except sqlite3.Error as exc:  # a full disk, say: the feeder goes on, the file grows until fixed
                log.warning("old de-duplication keys not forgotten", extra={"error": str(exc)})
                removed = 0
            if removed:
                log.info("forgot old de-duplication keys", extra={"removed": removed})
            if not await self._sleep_until(self.clock() + 86400, stop):
                return
