"""What the alert rules measure, read from the markets buckets the dashboards read.

Why the stored data and not the feeder's stream: a rule then sees the very numbers its owner sees on the
dashboards, streamed and polled assets alike; the engine and the feeder restart independently; and the
1 s write flush is the only delay added (the goal is 2 s from a crossing to the channel).

The rule for each measure (the same for every symbol, whichever exchanges or providers carry it):
- price: the newest `ticker.last` of any source within the staleness window, as the ticker band shows
  it, read every round (InfluxDB answers `last()` per series from its index, so the window's length
  costs little, and a point stamped late, as polled quotes are, is still seen). The engine samples the
  newest price each round: a price that crosses and comes back within one round (a second) can pass
  unseen;
- price `window` minutes ago: the newest candle close of any source from before then (refreshed every
  minute: it changes once a minute);
- volume: the summed volume of the window's last closed candles over the usual level, which is the mean
  candle volume of the `baseline_hours` before the window times the number of candles. Venues' volumes
  differ, so both come from one source per symbol: the one with the largest usual level. The usual
  level moves slowly and is refreshed every `baseline_refresh_s`.
Candles are 1 m ones from the raw bucket while what a measure spans fits in its retention (six days are
used of its seven), else the 5 m tier's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from marketdash.alerts.rules import PRICE_CONDITIONS, Observation, Rule
from marketdash.core.flux import flux_set, flux_string
from marketdash.core.schema import BUCKET_MARKETS, BUCKET_MARKETS_5M, CANDLE, TICKER

Query = Callable[[str], Awaitable[list[dict[str, str]]]]
# The longest span read from the raw bucket (minutes): its retention is 7 days.
RAW_SPAN_MIN = 6 * 1440


@dataclass(frozen=True)
class Tier:
    bucket: str
    minutes: int  # width of one candle


RAW = Tier(BUCKET_MARKETS, 1)
FIVE_MINUTES = Tier(BUCKET_MARKETS_5M, 5)


def tier_for(span_minutes: int) -> Tier:
    return RAW if span_minutes <= RAW_SPAN_MIN else FIVE_MINUTES


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


def _candles(tier: Tier, field_name: str, symbols: set[str], start: str, stop: str = "now()") -> str:
    return (
        f"from(bucket: {flux_string(tier.bucket)}) |> range(start: {start}, stop: {stop})"
        f" |> filter(fn: (r) => r._measurement == {flux_string(CANDLE.name)}"
        f" and r._field == {flux_string(field_name)})"
        f" |> filter(fn: (r) => contains(value: r.symbol, set: {flux_set(symbols)}))"
    )


@dataclass
class _Volume:
    # (symbol, source) -> mean candle volume before the window; refreshed every baseline_refresh_s.
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
        # (symbol, window) -> price then; window -> when its references were read, and for which symbols.
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
        spikes: dict[int, set[str]] = {}
        for rule in rules:
            windows.setdefault(rule.window_minutes, set()).add(rule.asset)
            if rule.condition == "volume_spike":
                spikes.setdefault(rule.window_minutes, set()).add(rule.asset)
        for window, symbols in windows.items():
            await self._refresh_references(window, symbols, now)
        for window, symbols in spikes.items():
            await self._refresh_volume(window, symbols, now)

    async def _refresh_prices(self, symbols: set[str], now: float) -> None:
        if not symbols:
            return
        # No symbol filter in the query: `range |> filter |> last()` is answered from InfluxDB's index.
        rows = await self._query(
            f"from(bucket: {flux_string(BUCKET_MARKETS)})"
            f" |> range(start: {_flux_time(now - self._stale_after_s)})"
            f' |> filter(fn: (r) => r._measurement == {flux_string(TICKER.name)} and r._field == "last")'
            ' |> last() |> keep(columns: ["_time", "_value", "symbol"])'
        )
        self.prices = {
            symbol: price for symbol, price in _newest_per_symbol(rows).items() if symbol in symbols
        }

    def _due(self, read_at: float | None, every: float, now: float) -> bool:
        return read_at is None or now - read_at >= every

    async def _refresh_references(self, window: int, symbols: set[str], now: float) -> None:
        asked = self._references_asked.get(window, frozenset())
        if not self._due(self._references_at.get(window), self._minute_refresh_s, now) and symbols <= asked:
            return
        tier = tier_for(window + 10 * 5)
        rows = await self._query(
            _candles(tier, "close", symbols, f"-{window + 10 * tier.minutes}m", f"-{window}m")
            + ' |> last() |> keep(columns: ["_time", "_value", "symbol"])'
        )
        for key in [key for key in self._references if key[1] == window]:
            del self._references[key]
        for symbol, (_, close) in _newest_per_symbol(rows).items():
            self._references[(symbol, window)] = close
        self._references_at[window] = now
        self._references_asked[window] = frozenset(symbols)

    async def _refresh_volume(self, window: int, symbols: set[str], now: float) -> None:
        volume = self._volumes.setdefault(window, _Volume())
        tier = tier_for(window + self._baseline_minutes)
        candles = math.ceil(window / tier.minutes)
        baseline_due = self._due(volume.baseline_at, self._baseline_refresh_s, now)
        if baseline_due or not symbols <= volume.asked:
            # Up to the window's first candle, which opened `candles` widths before the one under way.
            end = candles * tier.minutes + tier.minutes
            rows = await self._query(
                _candles(tier, "volume", symbols, f"-{end + self._baseline_minutes}m", f"-{end}m")
                + ' |> mean() |> keep(columns: ["_value", "symbol", "source"])'
            )
            volume.baseline = {key: float(row["_value"]) for key, row in _per_series(rows).items()}
            volume.baseline_at = now
            volume.asked = frozenset(symbols)
        elif not self._due(volume.window_at, self._minute_refresh_s, now):
            return
        # The window's last closed candles: the one under way is not written yet.
        recent = _candles(tier, "volume", symbols, f"-{(candles + 2) * tier.minutes}m")
        recent += f" |> tail(n: {candles})"
        totals = _per_series(await self._query(recent + " |> sum()"))
        newest = _per_series(
            await self._query(recent + ' |> last() |> keep(columns: ["_time", "symbol", "source"])')
        )
        chosen: dict[str, tuple[str, float]] = {}
        for (symbol, source), mean in volume.baseline.items():
            if mean > 0 and (symbol not in chosen or mean > chosen[symbol][1]):
                chosen[symbol] = (source, mean)
        volume.window = {}
        for symbol, (source, mean) in chosen.items():
            key = (symbol, source)
            if key in totals and key in newest:
                # A candle's time is its open: its data is complete one candle later.
                closed_at = _unix(newest[key]["_time"]) + tier.minutes * 60
                volume.window[symbol] = (closed_at, float(totals[key]["_value"]) / (mean * candles))
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
