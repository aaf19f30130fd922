"""Polled markets against local Yahoo / CoinGecko / Alpha Vantage servers, written to victoria-metrics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from marketdash.core.catalogue import catalogue_by_symbol
from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.market.metrics import FeederMetrics
from marketdash.market.polling import AlphaVantagePoller, CoinGeckoPoller, Poller, YahooPoller
from marketdash_testing.fake_providers import YAHOO_NOT_FOUND, ScriptedHttp, yahoo_chart
from marketdash_testing.servers import VictoriaMetrics, eventually

NOW_S = int(time.time()) // 60 * 60 - 600
HOUR, DAY = 3600, 86400


@pytest.fixture
async def registry_and_writer(victoria_metrics: str) -> AsyncIterator[tuple[CollectorRegistry, InfluxWriter]]:
    registry = CollectorRegistry()
    async with InfluxWriter(InfluxSettings(url=victoria_metrics, flush_interval_s=0.1), registry) as writer:
        yield registry, writer


async def poll_until(poller: Poller, done: Callable[[], bool]) -> None:
    task = asyncio.create_task(poller.run())
    try:
        assert await eventually(done, 10)
    finally:
        task.cancel()
    assert await poller.writer.flush(within_s=5)


def errors(registry: CollectorRegistry, provider: str, reason: str) -> float:
    return (
        registry.get_sample_value(
            "marketdash_market_poll_errors_total", {"provider": provider, "reason": reason}
        )
        or 0
    )


def stored(vm: VictoriaMetrics, metric: str, **labels: str) -> list[tuple[int, float]]:
    match = ",".join([f'__name__="{metric}"'] + [f'{k}="{v}"' for k, v in labels.items()])
    series = list(vm.export("{" + match + "}").values())
    assert len(series) == 1, series
    return series[0]


async def test_yahoo_quote_closed_bars_and_changes_survive_429_and_garbage(
    registry_and_writer: tuple[CollectorRegistry, InfluxWriter], victoria_metrics_server: VictoriaMetrics
) -> None:
    registry, writer = registry_and_writer
    minute_bars = [
        (NOW_S - 120, 98.0, 99.0, 97.5, 98.5, 1000),
        (NOW_S - 60, 98.5, 100.5, 98.0, None, None),  # Yahoo leaves holes as nulls: skipped
        (NOW_S - 30, 99.0, 99.5, 98.9, 99.2, 300),
        (NOW_S, 99.2, 100.0, 99.0, 100.0, 50),  # the minute in progress: not a closed candle
    ]
    hourly = [(NOW_S - 7 * DAY - HOUR, 0, 0, 0, 80.0, 0), (NOW_S - DAY - 60, 0, 0, 0, 90.0, 0)]
    hourly += [(NOW_S - HOUR, 0, 0, 0, 99.0, 0), (NOW_S, 0, 0, 0, 100.0, 0)]

    def chart(request):  # type: ignore[no-untyped-def]
        bars = minute_bars if request.query["interval"] == "1m" else hourly
        return yahoo_chart("^GSPC", 100.0, 95.0, NOW_S, bars)

    yahoo = ScriptedHttp({"/v8/finance/chart/": chart})
    yahoo.queue("/v8/finance/chart/", 429, "Too Many Requests", {"Retry-After": "0"})
    yahoo.queue("/v8/finance/chart/", 200, "<html>Will be right back</html>")
    yahoo.queue("/v8/finance/chart/", 404, YAHOO_NOT_FOUND)
    await yahoo.start()
    poller = YahooPoller(yahoo.url, 0.05, writer, FeederMetrics(registry), changes_every_s=3600)
    poller.follow([catalogue_by_symbol()[s] for s in ("SPX", "BTC/USDT")])  # BTC has no Yahoo source
    try:
        await poll_until(poller, lambda: poller.last_success is not None)
    finally:
        await yahoo.stop()

    assert [path for path, _ in yahoo.requests] == ["/v8/finance/chart/^GSPC"] * 5
    assert errors(registry, "yahoo", "http_429") == 1
    assert errors(registry, "yahoo", "malformed") == 1
    assert errors(registry, "yahoo", "http_error") == 1
    vm = victoria_metrics_server
    assert stored(vm, "ticker_last", source="yahoo", symbol="SPX") == [(NOW_S * 1000, 100.0)]
    assert stored(vm, "ticker_change_pct_24h", symbol="SPX")[0][1] == pytest.approx(100 / 95 * 100 - 100)
    assert stored(vm, "candle_close", symbol="SPX") == [
        ((NOW_S - 120) * 1000, 98.5),
        ((NOW_S - 30) * 1000, 99.2),
    ]
    assert stored(vm, "price_change_change_pct_1h", symbol="SPX")[0][1] == pytest.approx(100 / 99 * 100 - 100)
    assert stored(vm, "price_change_change_pct_24h", symbol="SPX")[0][1] == pytest.approx(
        100 / 90 * 100 - 100
    )
    assert stored(vm, "price_change_change_pct_7d", symbol="SPX")[0][1] == pytest.approx(25.0)


def coingecko_row(coin: str, symbol: str, price: float, cap: float, rank: int) -> dict:
    return {
        "id": coin,
        "symbol": symbol,
        "name": coin.title(),
        "current_price": price,
        "market_cap": cap,
        "market_cap_rank": rank,
        "total_volume": cap / 50,
        "price_change_percentage_24h": 1.5,
        "last_updated": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW_S)),
        "price_change_percentage_1h_in_currency": 0.25,
        "price_change_percentage_24h_in_currency": 1.5,
        "price_change_percentage_7d_in_currency": -3.0,
    }


async def test_coingecko_market_caps_in_one_request_survive_429_and_garbage(
    registry_and_writer: tuple[CollectorRegistry, InfluxWriter], victoria_metrics_server: VictoriaMetrics
) -> None:
    registry, writer = registry_and_writer
    rows = [
        coingecko_row("bitcoin", "btc", 67000.0, 1.3e12, 1),
        coingecko_row("ethereum", "eth", 3400.0, 4.1e11, 2),
    ]
    gecko = ScriptedHttp({"/api/v3/coins/markets": lambda _: rows})
    limited = {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}
    gecko.queue("/api/v3/coins/markets", 429, json.dumps(limited))
    gecko.queue("/api/v3/coins/markets", 200, json.dumps({"unexpected": True}))
    await gecko.start()
    poller = CoinGeckoPoller(gecko.url, 0.05, writer, FeederMetrics(registry))
    poller.follow([catalogue_by_symbol()[s] for s in ("BTC/USDT", "ETH/USDT", "SPX")])
    try:
        await poll_until(poller, lambda: poller.last_success is not None)
    finally:
        await gecko.stop()

    assert gecko.requests[-1][1]["ids"] == "bitcoin,ethereum"
    assert errors(registry, "coingecko", "http_429") == 1
    assert errors(registry, "coingecko", "malformed") == 1
    vm = victoria_metrics_server
    assert stored(vm, "market_cap_market_cap_usd", symbol="BTC/USDT") == [(NOW_S * 1000, 1.3e12)]
    assert stored(vm, "market_cap_rank", symbol="ETH/USDT") == [(NOW_S * 1000, 2.0)]
    assert stored(vm, "price_change_change_pct_7d", source="coingecko", symbol="ETH/USDT")[0][1] == -3.0


async def test_alpha_vantage_quotes_and_fx_with_its_rate_limit_note(
    registry_and_writer: tuple[CollectorRegistry, InfluxWriter], victoria_metrics_server: VictoriaMetrics
) -> None:
    registry, writer = registry_and_writer

    def query(request):  # type: ignore[no-untyped-def]
        assert request.query["apikey"] == "secret-key"
        if request.query["function"] == "CURRENCY_EXCHANGE_RATE":
            return {
                "Realtime Currency Exchange Rate": {
                    "1. From_Currency Code": "EUR",
                    "2. From_Currency Name": "Euro",
                    "3. To_Currency Code": "USD",
                    "4. To_Currency Name": "United States Dollar",
                    "5. Exchange Rate": "1.08120000",
                    "6. Last Refreshed": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(NOW_S)),
                    "7. Time Zone": "UTC",
                    "8. Bid Price": "1.08110000",
                    "9. Ask Price": "1.08130000",
                }
            }
        return {
            "Global Quote": {
                "01. symbol": "AAPL",
                "02. open": "189.0000",
                "03. high": "191.0500",
                "04. low": "188.1900",
                "05. price": "190.4200",
                "06. volume": "52345678",
                "07. latest trading day": time.strftime("%Y-%m-%d", time.gmtime(NOW_S)),
                "08. previous close": "188.9000",
                "09. change": "1.5200",
                "10. change percent": "0.8047%",
            }
        }

    alpha = ScriptedHttp({"/query": query})
    note = {"Note": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day."}
    alpha.queue("/query", 200, json.dumps(note))
    await alpha.start()
    poller = AlphaVantagePoller(alpha.url, 0.05, writer, FeederMetrics(registry), api_key="secret-key")
    assets = [catalogue_by_symbol()[s] for s in ("AAPL", "EUR/USD", "CAC40")]  # CAC40: Yahoo only
    poller.follow(assets)
    assert [a.symbol for a in poller.assets] == ["AAPL", "EUR/USD"]
    try:
        written = {"source": "alphavantage", "kind": "ticker"}
        await poll_until(
            poller, lambda: registry.get_sample_value("marketdash_market_messages_total", written) == 2
        )
    finally:
        await alpha.stop()

    assert errors(registry, "alphavantage", "http_429") == 1
    vm = victoria_metrics_server
    assert stored(vm, "ticker_last", source="alphavantage", symbol="AAPL")[0][1] == 190.42
    assert stored(vm, "ticker_change_pct_24h", symbol="AAPL")[0][1] == pytest.approx(0.8047)
    assert stored(vm, "ticker_bid", symbol="EUR/USD") == [(NOW_S * 1000, 1.0811)]
    keyless = AlphaVantagePoller(alpha.url, 0.05, writer, FeederMetrics(CollectorRegistry()), api_key="")
    keyless.follow(assets)
    assert keyless.assets == []
