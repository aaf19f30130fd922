"""The market feeder's Prometheus metrics (the writer adds its own to the same registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class FeederMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "marketdash_market_messages",
            "Updates received, per source and kind",
            ["source", "kind"],
            registry=registry,
        )
        self.ignored = Counter(
            "marketdash_market_messages_ignored",
            "Updates not written: out_of_order (older than what is stored) or invalid (unusable values)",
            ["source", "reason"],
            registry=registry,
        )
        self.reconnects = Counter(
            "marketdash_market_reconnects",
            "Streams reopened: error, stale (watchdog), planned, silent (by ccxt, at a watch after a drop)",
            ["source", "stream", "reason"],
            registry=registry,
        )
        self.gaps = Counter(
            "marketdash_market_gaps_backfilled",
            "Holes in the 1 m candles filled over REST",
            ["source"],
            registry=registry,
        )
        self.backfills_pending = Gauge(
            "marketdash_market_backfills_pending",
            "REST backfills under way or waiting for a retry",
            ["source"],
            registry=registry,
        )
        self.backfill_failures = Counter(
            "marketdash_market_backfill_failures",
            "REST backfill attempts that failed (each is retried)",
            ["source"],
            registry=registry,
        )
        self.candles_backfilled = Counter(
            "marketdash_market_candles_backfilled",
            "Candles written from REST backfills",
            ["source"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "marketdash_market_poll_errors",
            "Failed polls: http_429, http_error, malformed, network",
            ["provider", "reason"],
            registry=registry,
        )
        self.last_message = Gauge(
            "marketdash_market_stream_last_message_timestamp_seconds",
            "When a stream last delivered",
            ["source", "stream"],
            registry=registry,
        )
        self.unlisted = Gauge(
            "marketdash_market_symbols_unlisted",
            "Followed symbols the exchange does not list, left out of its streams",
            ["source", "stream"],
            registry=registry,
        )
        self.symbols = Gauge("marketdash_market_symbols", "Symbols being collected", registry=registry)
