"""The news feeder's Prometheus metrics, on the registry its /metrics serves."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FETCH_RESULTS = (
    "ok",
    "not_modified",
    "error",
    "timeout",
    "too_large",
    "http_error",
    "rate_limited",
    "refused",
    "malformed",
)
ITEM_OUTCOMES = ("new", "duplicate", "invalid", "stale")


class NewsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fetches = Counter(
            "marketdash_news_fetches",
            "Polls of a source by result: ok, not_modified (304), error, timeout, too_large, http_error, "
            "rate_limited (429), refused (XML entity tricks), malformed (unusable answer)",
            ["source", "result"],
            registry=registry,
        )
        self.fetch_seconds = Histogram(
            "marketdash_news_fetch_duration_seconds",
            "Duration of one poll's HTTP exchange",
            ["source"],
            registry=registry,
        )
        self.items = Counter(
            "marketdash_news_items",
            "Items read by outcome: new (written), duplicate, invalid (no title or safe link), stale (old)",
            ["source", "outcome"],
            registry=registry,
        )
        self.feed_problems = Counter(
            "marketdash_news_feed_problems",
            "Polls whose feed was malformed but parsed as far as it went",
            ["source"],
            registry=registry,
        )
        self.source_up = Gauge(
            "marketdash_news_source_up",
            "1 if the source's last poll succeeded",
            ["source"],
            registry=registry,
        )
        self.source_enabled = Gauge(
            "marketdash_news_source_enabled",
            "1 if the source is configured and has its key, 0 if it is off",
            ["source"],
            registry=registry,
        )
        self.last_success = Gauge(
            "marketdash_news_last_success_timestamp_seconds",
            "When the source was last polled successfully",
            ["source"],
            registry=registry,
        )
        self.sentiment = Histogram(
            "marketdash_news_sentiment",
            "Sentiment of new items",
            buckets=(-0.75, -0.5, -0.25, -0.05, 0.05, 0.25, 0.5, 0.75, 1.0),
            registry=registry,
        )

    def source(self, name: str, enabled: bool = True) -> None:
        """Create the source's series up front, so dashboards see zeros rather than nothing."""
        self.source_enabled.labels(name).set(1 if enabled else 0)
        if not enabled:
            return
        for result in FETCH_RESULTS:
            self.fetches.labels(name, result)
        for outcome in ITEM_OUTCOMES:
            self.items.labels(name, outcome)
        self.feed_problems.labels(name)
        self.source_up.labels(name).set(0)
