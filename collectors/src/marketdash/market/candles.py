"""Closed 1 m candles without holes, from ccxt's stream plus REST backfills.

ccxt's watch_ohlcv has no "closed" flag: a candle is closed once a later one appears. Its cache keeps the
partial candle of a dropped connection, which then looks closed: writing it would store a wrong candle.
So the stream is trusted only for a candle whose last update and whose successor came on the current
connection (the exchanges push each minute's running totals, in order, on a connection: the update before
the next minute's is that minute's final state) and that directly follows what is already settled;
anything else (first rows, a reconnect, a jump of more than a minute) is fetched over REST up to, not
including, the candle the stream is on now — the still-open one, which fetch_ohlcv also returns as its
last row. The caller says when rows come through a new connection (``reconnected``), including those ccxt
opens without a word, and hands over no row the previous connection left in ccxt's cache after that.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
Row = list[float]
# (symbol, since_ms, until_ms) -> closed rows with since <= ts < until, oldest first
FetchRange = Callable[[str, int, int], Awaitable[list[Row]]]
# (symbol, row, backfilled, event_time)
WriteCandle = Callable[[str, Row, bool, float], None]


@dataclass(slots=True)
class _Current:
    row: Row
    epoch: int


class CandleBook:
    """Per exchange: turns the stream's rows into closed candles, backfilling whatever it cannot trust."""

    def __init__(self, fetch: FetchRange, write: WriteCandle, initial_backfill_min: int) -> None:
        self._fetch, self._write = fetch, write
        self._initial_ms = initial_backfill_min * MINUTE_MS
        # Open time up to which (exclusive) every candle is written or known not to exist.
        self.settled: dict[str, int] = {}
        self._current: dict[str, _Current] = {}
        self.epoch = 0
        self.out_of_order = 0
        self.invalid = 0
        self.gaps = 0
        self.backfilled = 0

    def reconnected(self) -> None:
        """A new connection: candles last updated before it may be partial."""
        self.epoch += 1

    def forget(self, symbol: str) -> None:
        """The symbol left the watchlists; if it comes back it starts over with a backfill."""
        self._current.pop(symbol, None)

    async def on_rows(self, symbol: str, rows: Sequence[Row], received: float | None = None) -> None:
        received = time.time() if received is None else received
        # The connection these rows came through, taken now: a reconnect noticed while a backfill started by
        # one of them is awaited must not relabel the rest. Copied now too: ccxt updates its rows in place.
        epoch = self.epoch
        for row in [list(raw) for raw in rows]:
            if len(row) < 6 or not all(isinstance(v, int | float) and math.isfinite(v) for v in row[:6]):
                self.invalid += 1
                continue
            await self._on_row(symbol, row, received, epoch)

    async def _on_row(self, symbol: str, row: Row, received: float, epoch: int) -> None:
        ts = int(row[0])
        current = self._current.get(symbol)
        settled = self.settled.get(symbol)
        if current is None:
            self._current[symbol] = _Current(row, epoch)
            since = settled if settled is not None else ts - self._initial_ms
            await self._backfill(symbol, since, ts)
            return
        if ts < current.row[0] or (settled is not None and ts < settled):
            self.out_of_order += 1
            return
        if ts == current.row[0]:
            current.row, current.epoch = row, epoch
            return
        # A later candle: the current one is closed.
        closed = current
        self._current[symbol] = _Current(row, epoch)
        same_connection = closed.epoch == epoch == self.epoch
        trusted = same_connection and settled == closed.row[0] and ts == closed.row[0] + MINUTE_MS
        if trusted:
            self._write(symbol, closed.row, False, received)
            self.settled[symbol] = ts
        else:
            await self._backfill(symbol, settled if settled is not None else closed.row[0], ts)

    async def _backfill(self, symbol: str, since: int, until: int) -> None:
        if since >= until:
            self.settled[symbol] = max(self.settled.get(symbol, until), until)
            return
        self.gaps += 1
        rows = await self._fetch(symbol, since, until)
        now = time.time()
        for row in rows:
            if since <= row[0] < until:
                self._write(symbol, list(row), True, now)
                self.backfilled += 1
        self.settled[symbol] = until
        log.info(
            "candles backfilled",
            extra={"symbol": symbol, "since_ms": since, "until_ms": until, "candles": len(rows)},
        )
