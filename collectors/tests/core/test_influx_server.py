"""The InfluxDB writer against a real InfluxDB 2 (scripts/build-influxd.sh): what it writes reads back
equal through Flux, and a token scoped to one bucket is refused on the others."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry

from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.schema import BUCKET_MARKETS, BUCKET_NEWS, CANDLE, NEWS, TICKER
from marketdash_testing.servers import InfluxDB2

T0 = int(time.time() * 1000) - 3_600_000  # an hour ago, in the writer's precision (ms)


@pytest.fixture(scope="module")
def buckets(influxdb2: InfluxDB2) -> dict[str, str]:
    """The schema's markets and news buckets, with the raw tier's retention (7 d)."""
    return {name: influxdb2.bucket(name, 7 * 86400) for name in (BUCKET_MARKETS, BUCKET_NEWS)}


def settings(server: InfluxDB2, token: str) -> InfluxSettings:
    return InfluxSettings(url=server.url, token=token, backoff_initial_s=0.05, backoff_max_s=0.2)


def rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def ms(flux_time: str) -> int:
    """Flux's RFC 3339 time (trailing zeros of the fraction trimmed) in Unix milliseconds."""
    return round(datetime.fromisoformat(flux_time).timestamp() * 1000)


async def test_written_points_read_back_equal_with_flux(
    influxdb2: InfluxDB2, buckets: dict[str, str]
) -> None:
    token = influxdb2.create_token(("write", buckets[BUCKET_MARKETS]), ("write", buckets[BUCKET_NEWS]))
    ticker = TICKER.series(source="binance", symbol="BTC/USDT", asset_class="crypto")
    odd = TICKER.series(source="kraken", symbol="odd tag, value=x", asset_class="crypto")
    candle = CANDLE.series(source="binance", symbol="ETH/USDT", asset_class="crypto", interval="1m")
    news = NEWS.series(source="rss-test")
    registry = CollectorRegistry()
    async with InfluxWriter(settings(influxdb2, token), registry) as writer:
        writer.write_many(BUCKET_MARKETS, [ticker.line({"last": 0.1 * i}, T0 + i) for i in range(2000)])
        writer.write(BUCKET_MARKETS, odd.line({"last": 1e-9, "bid": None, "ask": 2.5}, T0))
        writer.write(BUCKET_MARKETS, candle.line({"open": 1.0, "close": 2.0, "backfilled": True}, T0))
        writer.write(BUCKET_NEWS, news.line({"title": 'Say "hi" \\ bye, =x', "sentiment": -0.25}, T0 + 7))
        assert await writer.flush(within_s=30)
    assert registry.get_sample_value("marketdash_influx_points_dropped_total", {"reason": "rejected"}) == 0

    start = rfc3339(T0 - 1000)
    rows = influxdb2.flux_rows(
        f'from(bucket: "markets") |> range(start: {start}) |> filter(fn: (r) => r.symbol == "BTC/USDT")'
    )
    assert [(ms(row["_time"]), float(row["_value"])) for row in rows] == [
        (T0 + i, 0.1 * i) for i in range(2000)
    ]
    assert {(row["_measurement"], row["_field"], row["source"], row["asset_class"]) for row in rows} == {
        ("ticker", "last", "binance", "crypto")
    }

    rows = influxdb2.flux_rows(
        f'from(bucket: "markets") |> range(start: {start}) |> filter(fn: (r) => r.source == "kraken")'
    )
    assert {row["_field"]: float(row["_value"]) for row in rows} == {"last": 1e-9, "ask": 2.5}
    assert {row["symbol"] for row in rows} == {"odd tag, value=x"}

    rows = influxdb2.flux_rows(
        f'from(bucket: "markets") |> range(start: {start}) |> filter(fn: (r) => r._measurement == "candle"'
        ' and r.symbol == "ETH/USDT")'  # the session's InfluxDB holds other tests' candles too
    )
    assert {row["_field"]: row["_value"] for row in rows} == {"open": "1", "close": "2", "backfilled": "true"}
    assert {row["interval"] for row in rows} == {"1m"}

    rows = influxdb2.flux_rows(f'from(bucket: "news") |> range(start: {start})')
    assert {row["_field"]: row["_value"] for row in rows} == {
        "title": 'Say "hi" \\ bye, =x',
        "sentiment": "-0.25",
    }
    assert {ms(row["_time"]) for row in rows} == {T0 + 7}


def test_a_token_scoped_to_one_bucket_is_refused_on_another(
    influxdb2: InfluxDB2, buckets: dict[str, str]
) -> None:
    token = influxdb2.create_token(("write", buckets[BUCKET_MARKETS]))
    line = TICKER.line(
        {"source": "binance", "symbol": "BTC/USDT", "asset_class": "crypto"}, {"last": 1.0}, T0
    )

    def write(bucket: str) -> httpx.Response:
        return httpx.post(
            f"{influxdb2.url}/api/v2/write",
            params={"org": InfluxDB2.ORG, "bucket": bucket, "precision": "ms"},
            headers={"Authorization": f"Token {token}"},
            content=line,
            timeout=10,
        )

    assert write(BUCKET_MARKETS).status_code == 204
    refused = write(BUCKET_NEWS)
    assert refused.status_code in (401, 403), refused.text
    # Write-only: reading back its own bucket is refused too.
    read = influxdb2.flux(f'from(bucket: "markets") |> range(start: {rfc3339(T0 - 1000)})', token=token)
    assert read.status_code in (401, 403, 404), read.text
    assert "BTC/USDT" not in read.text


async def test_the_writer_keeps_a_refused_batch_and_reports_the_refusal(
    influxdb2: InfluxDB2, buckets: dict[str, str]
) -> None:
    # A refusal is a configuration error (wrong token) that an operator fixes: the writer retries and
    # says why, rather than dropping the points as it does for a malformed batch.
    token = influxdb2.create_token(("write", buckets[BUCKET_MARKETS]))
    registry = CollectorRegistry()
    writer = InfluxWriter(settings(influxdb2, token), registry)
    await writer.start()
    writer.write(BUCKET_NEWS, NEWS.line({"source": "rss-test"}, {"title": "refused"}, T0))
    assert not await writer.flush(within_s=1)
    assert writer.last_error is not None
    assert writer.last_error.startswith(("HTTP 401", "HTTP 403")), writer.last_error
    assert (registry.get_sample_value("marketdash_influx_write_retries_total") or 0) >= 1
    await writer.close(within_s=0.1)
