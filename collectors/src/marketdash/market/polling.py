"""Polled markets: Yahoo Finance's chart API, Alpha Vantage (with a key) and CoinGecko market caps.

Each provider runs one loop at its own pace (its rate budget), requests spaced evenly across the
interval. A 429 (or Alpha Vantage's 200-with-a-"Note") slows that provider down, doubling its pause up
to 8x and honouring Retry-After, until a request succeeds; a malformed body is counted and skipped:
nothing already written is affected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp

from marketdash.core.backoff import Backoff
from marketdash.core.catalogue import Asset
from marketdash.core.influx import InfluxWriter
from marketdash.core.schema import CANDLE, CHANGE, MARKET_CAP, TICKER, SchemaError
from marketdash.market.metrics import FeederMetrics

log = logging.getLogger(__name__)

HOUR_S, DAY_S = 3600, 86400
# Yahoo answers scripted clients without a browser-like agent with 429s.
_HEADERS = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) marketdash", "Accept": "application/json"}


class MalformedError(ValueError):
    """The body is not in the provider's documented format."""


class RateLimited(Exception):  # noqa: N818
    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"rate limited, retry after {retry_after}")
        self.retry_after = retry_after


class Poller:
    """One provider's loop; subclasses implement `poll_one(asset)` and say which assets they serve."""

    provider = ""

    def __init__(self, base_url: str, every_s: float, writer: InfluxWriter, metrics: FeederMetrics) -> None:
        self.base_url = base_url.rstrip("/")
        self.every_s = every_s
        self.writer = writer
        self.metrics = metrics
        self.assets: list[Asset] = []
        self.last_success: float | None = None
        # A round of polls takes every_s; each rate-limited answer in a row doubles it, to 8 every_s at most.
        self.pacing = Backoff(every_s, every_s * 8)
        self.rate_limited = 0
        self._session: aiohttp.ClientSession | None = None

    def serves(self, asset: Asset) -> bool:
        return self.provider in asset.sources

    def follow(self, assets: list[Asset]) -> None:
        self.assets = [asset for asset in assets if self.serves(asset)]

    def batches(self) -> Iterator[list[Asset]]:
        """What one request covers; one asset per request unless the API takes several."""
        for asset in self.assets:
            yield [asset]

    async def run(self) -> None:
        async with aiohttp.ClientSession(
            headers=_HEADERS, timeout=aiohttp.ClientTimeout(total=15)
        ) as session:
            self._session = session
            while True:
                batches = list(self.batches())
                if not batches:
                    await asyncio.sleep(1)
                    continue
                for batch in batches:
                    started = time.monotonic()
                    pause = await self.poll_safely(batch)
                    spacing = self.pacing.ceiling(self.rate_limited) / len(batches)
                    await asyncio.sleep(max(pause, spacing - (time.monotonic() - started)))

    async def poll_safely(self, batch: list[Asset]) -> float:
        """Poll once; the extra pause a rate limit asks for (0 otherwise). Never raises."""
        try:
            await self.poll(batch)
        except RateLimited as limited:
            self.rate_limited += 1
            self.metrics.poll_errors.labels(self.provider, "http_429").inc()
            round_s = self.pacing.ceiling(self.rate_limited)
            log.warning("rate limited", extra={"provider": self.provider, "round_s": round_s})
            return limited.retry_after or 0.0
        except (MalformedError, SchemaError, KeyError, IndexError, TypeError, ValueError) as exc:
            self.metrics.poll_errors.labels(self.provider, "malformed").inc()
            log.warning(
                "malformed answer", extra={"provider": self.provider, "error": f"{type(exc).__name__}: {exc}"}
            )
        except aiohttp.ClientResponseError as exc:
            self.metrics.poll_errors.labels(self.provider, "http_error").inc()
            log.warning("HTTP error", extra={"provider": self.provider, "status": exc.status})
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.metrics.poll_errors.labels(self.provider, "network").inc()
            log.warning(
                "unreachable", extra={"provider": self.provider, "error": f"{type(exc).__name__}: {exc}"}
            )
        else:
            self.rate_limited = 0
            self.last_success = time.time()
        return 0.0

    async def poll(self, batch: list[Asset]) -> None:
        raise NotImplementedError

    async def get_json(self, path: str, params: dict[str, str]) -> Any:
        assert self._session is not None
        async with self._session.get(self.base_url + path, params=params) as response:
            if response.status == 429:
                retry_after = response.headers.get("Retry-After", "")
                raise RateLimited(float(retry_after) if retry_after.isdigit() else None)
            response.raise_for_status()
            try:
                return await response.json(content_type=None)
            except ValueError as exc:
                raise MalformedError(f"not JSON: {exc}") from None

    def write(
        self, measurement: Any, asset: Asset, fields: dict[str, Any], time_ms: int, **tags: str
    ) -> None:
        tags = {"source": self.provider, "symbol": asset.symbol, "asset_class": asset.asset_class} | tags
        self.writer.write(measurement.bucket, measurement.line(tags, fields, time_ms), time_ms / 1000)
        self.metrics.messages.labels(self.provider, measurement.name).inc()


def pct(now: float, then: float | None) -> float | None:
    return (now / then - 1) * 100 if then else None


class YahooPoller(Poller):
    """Yahoo's chart API: last price and today's closed 1 m bars every poll, hourly closes for changes."""

    provider = "yahoo"

    def __init__(self, *args: Any, changes_every_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changes_every_s = changes_every_s
        self._changes_at: dict[str, float] = {}
        # The newest bar written per symbol: each poll returns the whole day, only newer bars are new.
        self._last_bar: dict[str, int] = {}

    async def poll(self, batch: list[Asset]) -> None:
        (asset,) = batch
        meta, timestamps, quote = await self._chart(asset, "1d", "1m")
        price, at = float(meta["regularMarketPrice"]), int(meta["regularMarketTime"]) * 1000
        previous = meta.get("chartPreviousClose") or meta.get("previousClose")
        self.write(TICKER, asset, {"last": price, "change_pct_24h": pct(price, previous)}, at)
        # The last bar is the minute in progress: only the ones before it are closed.
        newest = self._last_bar.get(asset.symbol, 0)
        for i, ts in enumerate(timestamps[:-1]):
            if ts <= newest:
                continue
            self._last_bar[asset.symbol] = ts
            row = [quote[key][i] for key in ("open", "high", "low", "close")]
            if all(isinstance(v, int | float) for v in row):
                volume = quote.get("volume", [None] * len(timestamps))[i]
                fields = dict(zip(("open", "high", "low", "close"), row, strict=True))
                fields |= {"volume": float(volume or 0), "backfilled": False}
                self.write(CANDLE, asset, fields, ts * 1000, interval="1m")
        if time.monotonic() - self._changes_at.get(asset.symbol, -1e12) >= self.changes_every_s:
            await self._changes(asset, price, at)
            self._changes_at[asset.symbol] = time.monotonic()

    async def _changes(self, asset: Asset, price: float, at_ms: int) -> None:
        _, timestamps, quote = await self._chart(asset, "1mo", "1h")
        closes = [
            (ts, c)
            for ts, c in zip(timestamps, quote.get("close", []), strict=False)
            if isinstance(c, int | float)
        ]

        def close_before(seconds: int) -> float | None:
            # The latest hourly close at least `seconds` before the quote (markets close: weekends, nights).
            cutoff = at_ms / 1000 - seconds
            older = [c for ts, c in closes if ts <= cutoff]
            return older[-1] if older else None

        fields = {
            "change_pct_1h": pct(price, close_before(HOUR_S)),
            "change_pct_24h": pct(price, close_before(DAY_S)),
            "change_pct_7d": pct(price, close_before(7 * DAY_S)),
        }
        if any(v is not None for v in fields.values()):
            self.write(CHANGE, asset, fields, at_ms)

    async def _chart(self, asset: Asset, range_: str, interval: str) -> tuple[dict, list[int], dict]:
        symbol = asset.sources[self.provider]
        body = await self.get_json(f"/v8/finance/chart/{symbol}", {"range": range_, "interval": interval})
        chart = body["chart"]
        if chart.get("error") or not chart.get("result"):
            raise MalformedError(f"{symbol}: {chart.get('error')!r}")
        result = chart["result"][0]
        timestamps = result.get("timestamp") or []
        quote = result["indicators"]["quote"][0] if timestamps else {}
        return result["meta"], timestamps, quote


class CoinGeckoPoller(Poller):
    """/coins/markets: every followed coin in one request, with market cap and 1 h / 24 h / 7 d change."""

    provider = "coingecko"

    def batches(self) -> Iterator[list[Asset]]:
        for start in range(0, len(self.assets), 250):  # the API's page size limit
            yield self.assets[start : start + 250]

    async def poll(self, batch: list[Asset]) -> None:
        by_id = {asset.sources[self.provider]: asset for asset in batch}
        params = {
            "vs_currency": "usd",
            "ids": ",".join(by_id),
            "price_change_percentage": "1h,24h,7d",
            "per_page": "250",
        }
        rows = await self.get_json("/api/v3/coins/markets", params)
        if not isinstance(rows, list):
            raise MalformedError(f"expected a list of coins, got {type(rows).__name__}")
        for row in rows:
            asset = by_id.get(row.get("id"))
            if asset is None:
                continue
            at = int(datetime.fromisoformat(row["last_updated"].replace("Z", "+00:00")).timestamp() * 1000)
            self.write(
                MARKET_CAP,
                asset,
                {
                    "market_cap_usd": _float(row.get("market_cap")),
                    "price_usd": _float(row.get("current_price")),
                    "total_volume_usd": _float(row.get("total_volume")),
                    "rank": row.get("market_cap_rank"),
                },
                at,
            )
            changes = {
                f"change_pct_{window}": _float(row.get(f"price_change_percentage_{window}_in_currency"))
                for window in ("1h", "24h", "7d")
            }
            if any(v is not None for v in changes.values()):
                self.write(CHANGE, asset, changes, at)


class AlphaVantagePoller(Poller):
    """GLOBAL_QUOTE for equities/ETFs, CURRENCY_EXCHANGE_RATE for FX; only with an API key."""

    provider = "alphavantage"

    def __init__(self, *args: Any, api_key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key = api_key

    def serves(self, asset: Asset) -> bool:
        return bool(self.api_key) and super().serves(asset)

    async def poll(self, batch: list[Asset]) -> None:
        (asset,) = batch
        symbol = asset.sources[self.provider]
        if asset.asset_class == "fx":
            base, quote = symbol.split("/")
            params = {"function": "CURRENCY_EXCHANGE_RATE", "from_currency": base, "to_currency": quote}
        else:
            params = {"function": "GLOBAL_QUOTE", "symbol": symbol}
        body = await self.get_json("/query", params | {"apikey": self.api_key})
        if not isinstance(body, dict):
            raise MalformedError(f"expected an object, got {type(body).__name__}")
        if "Note" in body or "Information" in body:
            # Its rate limit answer: HTTP 200 with a note instead of data.
            raise RateLimited(None)
        if asset.asset_class == "fx":
            rate = body["Realtime Currency Exchange Rate"]
            stamp = datetime.strptime(rate["6. Last Refreshed"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            fields = {
                "last": float(rate["5. Exchange Rate"]),
                "bid": _float(rate.get("8. Bid Price")),
                "ask": _float(rate.get("9. Ask Price")),
            }
            self.write(TICKER, asset, fields, int(stamp.timestamp() * 1000))
            return
        quote = body["Global Quote"]
        fields = {
            "last": float(quote["05. price"]),
            "volume_24h": _float(quote.get("06. volume")),
            "change_pct_24h": _float(quote.get("10. change percent", "").rstrip("%") or None),
        }
        # GLOBAL_QUOTE carries only the trading day, not a time: the price is the one known at the poll.
        self.write(TICKER, asset, fields, int(time.time() * 1000))


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)
