"""Prometheus metrics of the API and the ASGI middleware that records them."""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("marketdash_api_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "marketdash_api_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RATE_LIMITED = Counter("marketdash_api_rate_limited_total", "Requests refused with 429", ["scope"])
CACHE_LOADS = Counter(
    "marketdash_api_cache_loads_total", "Reads the in-memory cache sent to the database", ["table"]
)
# 0 while the cache is not listening (so reading everything from the database); with several workers and
# PROMETHEUS_MULTIPROC_DIR, 0 when any worker's is not.
CACHE_LISTENING = Gauge(
    "marketdash_api_cache_listening",
    "The read cache follows the tables' notifications",
    multiprocess_mode="livemin",
)


def render() -> tuple[bytes, str]:
    # With several uvicorn workers, PROMETHEUS_MULTIPROC_DIR makes /metrics add up every worker.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            # The route template, not the URL: ids in URLs would make one time series per id.
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
