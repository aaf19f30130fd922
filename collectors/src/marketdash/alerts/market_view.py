"""What the alert rules measure, read from the markets bucket the dashboards read.

Why the stored data and not the feeder's stream: a rule then sees the very numbers its owner sees on the
dashboards, streamed and polled assets alike; the engine and the feeder restart independently; and the
1 s write flush is the only delay added (the goal is 2 s from a crossing to the channel).

The rule for each measure (the same across every symbol; a symbol streamed by several exchanges):
- price: the newest `ticker.last` of any source, as the ticker band shows it. Read incrementally: each
  refresh asks only for points since the previous one (minus a lookback for late writes), so a refresh
  costs what was written since, not the whole staleness window;
- price `window` minutes ago: the newest 1 m candle close of any source from before then (refreshed
  every minute: it changes once a minute);
- volume over the window: the sum of the 1 m candle volumes of the last `window` minutes, over the usual
  level, which is the mean 1 m volume of the `baseline_hours` before the window times `window`. Venues'
  volumes differ, so both come from one source per symbol: the one with the largest usual level.
  The usual level moves slowly and is refreshed every `baseline_refresh_s`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from marketdash.alerts.rules import PRICE_CONDITIONS, Observation, Rule
from marketdash.core.flux import flux_set, flux_string
from marketdash.core.schema import BUCKET_MARKETS, CANDLE, TICKER

Query = Callable[[str], Awaitable[list[dict[str, str]]]]
# A point may be stamped this long before it reaches InfluxDB (the writer's batching, retries).
LATE_WRITE_S = 15.0


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _newest_per_symbol(rows: Iterable[dict[str, str]]) -> dict[str, tuple[float, float]]:
    """symbol -> (time, value) of its newest row, whichever source it came from."""
    newest: dict[str, tuple[float, float]] = {}
    for row in rows:
        at, value = _unix(row["_time"]), float(row["_value"])
        if row["symbol"] not in newest or at > newest[row["symbol"]][0]:
            newest[row["symbol"]] = (at, value)
    return newest


def _per_series(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["symbol"], row["source"]): row for row in rows}


@dataclass
class _Volume:
    # (symbol, source) -> mean 1 m volume before the window; refreshed every baseline_refresh_s.
    baseline: dict[tuple[str, str], float] = field(default_factory=dict)
    baseline_at: float | None = None
    asked: frozenset[str] = frozenset()
    # symbol -> (close time of its newest candle, window volume over usual), chosen source only.
    window: dict[str, tuple[float, float]] = field(default_factory=dict)
    window_at: float | None = None


class MarketView:
    def __init__(
        self,
        query: Query,
        *,
        stale_after_s: float,
        baseline_hours: float = 24.0,
        minute_refresh_s: float = 60.0,
        baseline_refresh_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._query = query
        self._stale_after_s = stale_after_s
        self._baseline_minutes = int(baseline_hours * 60)
        self._minute_refresh_s = minute_refresh_s
        self._baseline_refresh_s = baseline_refresh_s
        self._clock = clock
        self.prices: dict[str, tuple[float, float]] = {}
        self._prices_read_at: float | None = None
        self._price_symbols: frozenset[str] = frozenset()
        # (symbol, window) -> price then; window -> when its references were read.
        self._references: dict[tuple[str, int], float] = {}
        self._references_at: dict[int, float] = {}
        self._references_asked: dict[int, frozenset[str]] = {}
        self._volumes: dict[int, _Volume] = {}

    async def refresh(self, rules: Iterable[Rule]) -> None:
        """Read what `rules` need that is due: prices every call, the rest on their own cadence."""
        rules = list(rules)
        now = self._clock()
        await self._refresh_prices({rule.asset for rule in rules}, now)
        windows: dict[int, set[str]] = {}
        for rule in rules:
            windows.setdefault(rule.window_minutes, set()).add(rule.asset)
        for window, symbols in windows.items():
            await self._refresh_references(window, symbols, now)
        spikes: dict[int, set[str]] = {}
        for rule in rules:
            if rule.condition == "volume_spike":
                spikes.setdefault(rule.window_minutes, set()).add(rule.asset)
        for window, symbols in spikes.items():
            await self._refresh_volume(window, symbols, now)

    async def _refresh_prices(self, symbols: set[str], now: float) -> None:
        if not symbols:
            return
        # A new symbol is read over the whole staleness window, the others since the last read.
        if self._prices_read_at is None or not symbols <= self._price_symbols:
            start = now - self._stale_after_s
        else:
            start = self._prices_read_at - LATE_WRITE_S
        rows = await self._query(
            f"from(bucket: {flux_string(BUCKET_MARKETS)})"
            f" |> range(start: {_flux_time(start)})"
            f' |> filter(fn: (r) => r._measurement == {flux_string(TICKER.name)} and r._field == "last")'
            f" |> filter(fn: (r) => contains(value: r.symbol, set: {flux_set(symbols)}))"
            ' |> last() |> keep(columns: ["_time", "_value", "symbol"])'
        )
        for symbol, (at, price) in _newest_per_symbol(rows).items():
            if symbol not in self.prices or at >= self.prices[symbol][0]:
                self.prices[symbol] = (at, price)
        self._prices_read_at = now
        self._price_symbols = frozenset(symbols)

    def _due(self, read_at: float | None, every: float, now: float) -> bool:
        return read_at is None or now - read_at >= every

    async def _refresh_references(self, window: int, symbols: set[str], now: float) -> None:
        asked = self._references_asked.get(window, frozenset())
        if not self._due(self._references_at.get(window), self._minute_refresh_s, now) and symbols <= asked:
            return
        rows = await self._query(
            f"from(bucket: {flux_string(BUCKET_MARKETS)})"
            f" |> range(start: -{window + 10}m, stop: -{window}m)"
            f' |> filter(fn: (r) => r._measurement == {flux_string(CANDLE.name)} and r._field == "close")'
            f" |> filter(fn: (r) => contains(value: r.symbol, set: {flux_set(symbols)}))"
            ' |> last() |> keep(columns: ["_time", "_value", "symbol"])'
        )
        for key in [key for key in self._references if key[1] == window]:
            del self._references[key]
        for symbol, (_, close) in _newest_per_symbol(rows).items():
            self._references[(symbol, window)] = close
        self._references_at[window] = now
        self._references_asked[window] = frozenset(symbols)

    async def _refresh_volume(self, window: int, symbols: set[str], now: float) -> None:
        volume = self._volumes.setdefault(window, _Volume())
        candles = (
            f"from(bucket: {flux_string(BUCKET_MARKETS)})"
            " |> range(start: {start}, stop: {stop})"
            f' |> filter(fn: (r) => r._measurement == {flux_string(CANDLE.name)} and r._field == "volume")'
            f" |> filter(fn: (r) => contains(value: r.symbol, set: {flux_set(symbols)}))"
        )
        if self._due(volume.baseline_at, self._baseline_refresh_s, now) or not symbols <= volume.asked:
            rows = await self._query(
                candles.format(start=f"-{window + self._baseline_minutes}m", stop=f"-{window}m")
                + ' |> mean() |> keep(columns: ["_value", "symbol", "source"])'
            )
            volume.baseline = {key: float(row["_value"]) for key, row in _per_series(rows).items()}
            volume.baseline_at = now
            volume.asked = frozenset(symbols)
        if not self._due(volume.window_at, self._minute_refresh_s, now) and volume.baseline_at != now:
            return
        totals = _per_series(
            await self._query(candles.format(start=f"-{window}m", stop="now()") + " |> sum()")
        )
        newest = _per_series(
            await self._query(
                candles.format(start=f"-{window}m", stop="now()")
                + ' |> last() |> keep(columns: ["_time", "symbol", "source"])'
            )
        )
        chosen: dict[str, tuple[str, float]] = {}
        for (symbol, source), mean in volume.baseline.items():
            if mean > 0 and (symbol not in chosen or mean > chosen[symbol][1]):
                chosen[symbol] = (source, mean)
        volume.window = {}
        for symbol, (source, mean) in chosen.items():
            key = (symbol, source)
            if key in totals and key in newest:
                # A candle's time is its open: its data is complete a minute later.
                closed_at = _unix(newest[key]["_time"]) + 60
                ratio = float(totals[key]["_value"]) / (mean * window)
                volume.window[symbol] = (closed_at, ratio)
        volume.window_at = now

    def observe(self, rule: Rule) -> Observation | None:
        """What `rule`'s condition measures now, with the time of its newest data; None when unknown."""
        price = self.prices.get(rule.asset)
        if rule.condition in PRICE_CONDITIONS:
            return Observation(price[1], price[0]) if price else None
        if rule.condition == "pct_change":
            change = self.change_pct(rule.asset, rule.window_minutes)
            return Observation(change, price[0]) if change is not None and price else None
        spike = self._volumes.get(rule.window_minutes, _Volume()).window.get(rule.asset)
        return Observation(spike[1], spike[0]) if spike else None

    def change_pct(self, symbol: str, window: int) -> float | None:
        price, then = self.prices.get(symbol), self._references.get((symbol, window))
        if price is None or not then:
            return None
        return (price[1] - then) / then * 100.0

    def price(self, symbol: str) -> float | None:
        price = self.prices.get(symbol)
        return price[1] if price else None


def _flux_time(unix: float) -> str:
    return f"time(v: {int(unix * 1e9)})"
