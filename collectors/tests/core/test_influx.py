"""The InfluxDB writer against a real server of the v2 write API (victoria-metrics), outages included."""

from __future__ import annotations

import asyncio
import time

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.schema import BUCKET_MARKETS, TICKER
from marketdash_testing.servers import VictoriaMetrics, eventually, free_port

T0 = int(time.time() * 1000) - 3_600_000  # an hour ago: inside the server's retention, ms precision


def settings(url: str, **overrides: object) -> InfluxSettings:
    defaults = {"url": url, "token": "write-token", "backoff_initial_s": 0.05, "backoff_max_s": 0.3}
    return InfluxSettings(**(defaults | overrides))


def lines(symbol: str, count: int, start: int = 0) -> list[str]:
    series = TICKER.series(source="binance", symbol=symbol, asset_class="crypto")
    return [series.line({"last": float(i)}, T0 + i * 100) for i in range(start, start + count)]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def write_requests(vm: VictoriaMetrics) -> float:
    text = httpx.get(f"{vm.url}/metrics").text
    return sum(
        float(row.rsplit(" ", 1)[1])
        for row in text.splitlines()
        if row.startswith('vm_http_requests_total{path="/influx/write"')
    )


async def test_batches_reach_the_server_with_escaped_tags_and_exact_values(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    registry = CollectorRegistry()
    async with InfluxWriter(settings(victoria_metrics_server.url, batch_size=5000), registry) as writer:
        writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 7000))
        writer.write_many(BUCKET_MARKETS, lines("odd tag, value=x", 5000))
        assert await writer.flush(within_s=10)
    stored = victoria_metrics_server.export('{__name__="ticker_last"}')
    by_symbol = {dict(labels)["symbol"]: samples for labels, samples in stored.items()}
    assert set(by_symbol) == {"BTC/USDT", "odd tag, value=x"}
    assert by_symbol["BTC/USDT"] == [(T0 + i * 100, float(i)) for i in range(7000)]
    assert len(by_symbol["odd tag, value=x"]) == 5000
    assert sample(registry, "marketdash_influx_points_written_total", bucket="markets") == 12000
    # 12 000 points in batches of at most 5 000: three requests, not twelve thousand.
    assert write_requests(victoria_metrics_server) == 3


async def test_a_lone_point_is_written_within_the_flush_interval(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    async with InfluxWriter(settings(victoria_metrics_server.url, flush_interval_s=0.2)) as writer:
        writer.write_many(BUCKET_MARKETS, lines("ETH/USDT", 1))
        # No flush() call: the timer alone must send it.
        assert await eventually(lambda: not writer.pending, within_s=5)
    assert len(victoria_metrics_server.export('{__name__="ticker_last"}')) == 1


async def test_an_outage_of_the_server_loses_nothing(victoria_metrics_server: VictoriaMetrics) -> None:
    registry = CollectorRegistry()
    async with InfluxWriter(settings(victoria_metrics_server.url, flush_interval_s=0.1), registry) as writer:
        writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 100))
        assert await writer.flush(within_s=10)
        await asyncio.to_thread(victoria_metrics_server.stop)
        writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 400, start=100))
        # Several capped back-offs long: the writer must still hold every point.
        assert await eventually(lambda: sample(registry, "marketdash_influx_write_retries_total") >= 6, 10)
        assert writer.pending == 400
        assert writer.last_error
        await asyncio.to_thread(victoria_metrics_server.start)
        assert await writer.flush(within_s=15)
    stored = victoria_metrics_server.export('{__name__="ticker_last"}')
    assert [value for _, value in next(iter(stored.values()))] == [float(i) for i in range(500)]
    for reason in ("buffer_full", "rejected", "shutdown"):
        assert sample(registry, "marketdash_influx_points_dropped_total", reason=reason) == 0


async def test_writes_resume_as_soon_as_the_server_answers_again(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    # The first back-off alone is 10-20 s here: only the health probe can bring the writer back sooner.
    registry = CollectorRegistry()
    slow = {"backoff_initial_s": 20.0, "backoff_max_s": 30.0, "probe_every_s": 0.2, "flush_interval_s": 0.1}
    async with InfluxWriter(settings(victoria_metrics_server.url, **slow), registry) as writer:
        await asyncio.to_thread(victoria_metrics_server.stop)
        writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 50))
        assert await eventually(lambda: sample(registry, "marketdash_influx_write_retries_total") >= 1, 10)
        await asyncio.to_thread(victoria_metrics_server.start)
        assert await writer.flush(within_s=5)
    assert len(next(iter(victoria_metrics_server.export('{__name__="ticker_last"}').values()))) == 50


async def test_a_full_buffer_drops_the_oldest_points_and_counts_them(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    registry = CollectorRegistry()
    writer = InfluxWriter(settings(victoria_metrics_server.url, max_buffered_points=100), registry)
    writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 250))  # not started yet: nothing can leave
    assert writer.pending == 100
    assert sample(registry, "marketdash_influx_points_dropped_total", reason="buffer_full") == 150
    async with writer:
        assert await writer.flush(within_s=10)
    stored = next(iter(victoria_metrics_server.export('{__name__="ticker_last"}').values()))
    assert [value for _, value in stored] == [float(i) for i in range(150, 250)]


async def test_points_still_queued_at_shutdown_are_counted(victoria_metrics_server: VictoriaMetrics) -> None:
    victoria_metrics_server.stop()
    registry = CollectorRegistry()
    writer = InfluxWriter(settings(victoria_metrics_server.url), registry)
    await writer.start()
    writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 30))
    await writer.close(within_s=0.5)
    assert sample(registry, "marketdash_influx_points_dropped_total", reason="shutdown") == 30


async def test_retry_after_is_honoured_and_a_malformed_batch_is_dropped_and_counted() -> None:
    # victoria-metrics skips bad lines with 204, so InfluxDB's own answers (429, 400) come from a stand-in.
    seen: list[tuple[float, bytes]] = []

    async def write(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((time.monotonic(), body))
        if len(seen) == 1:
            return web.Response(status=429, headers={"Retry-After": "0.25"})
        if b"bad" in (await request.text()).encode() or len(seen) == 3:
            return web.json_response({"code": "invalid", "message": "unable to parse"}, status=400)
        return web.Response(status=204)

    app = web.Application(client_max_size=0)
    app.router.add_post("/api/v2/write", write)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    registry = CollectorRegistry()
    try:
        async with InfluxWriter(settings(f"http://127.0.0.1:{port}", gzip=False), registry) as writer:
            writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 5))
            assert await writer.flush(within_s=5)
            writer.write_many(BUCKET_MARKETS, lines("BTC/USDT", 7))
            assert await writer.flush(within_s=5)
    finally:
        await runner.cleanup()
    assert seen[1][0] - seen[0][0] >= 0.25
    assert sample(registry, "marketdash_influx_points_written_total", bucket="markets") == 5
    assert sample(registry, "marketdash_influx_points_dropped_total", reason="rejected") == 7
