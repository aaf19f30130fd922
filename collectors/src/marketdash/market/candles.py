"""Closed 1 m candles without holes, from ccxt's stream plus REST backfills that never hold the stream.

ccxt's watch_ohlcv has no "closed" flag: a candle is closed once a later one appears. Its cache keeps the
partial candle of a dropped connection, which then looks closed: writing it would store a wrong candle.
So the stream is trusted only for a candle whose last update and whose successor came on the current
connection (the exchanges push each minute's running totals, in order, on a connection: the update before
the next minute's is that minute's final state) and that directly follows what is already covered;
anything else (first rows, a reconnect, a jump of more than a minute) is fetched over REST up to, not
including, the candle the stream is on now — the still-open one, which fetch_ohlcv also returns as its
last row. The caller says when rows come through a new connection (``reconnected``), including those ccxt
opens without a word, and hands over no row the previous connection left in ccxt's cache after that.

A backfill runs beside the stream, never in its way: ``on_rows`` only decides and returns, so the watch
is re-armed at once (ccxt hands an update only to a watch already waiting, and a watch not waiting when
the socket drops is how a drop goes unnoticed). The minutes a backfill covers count as covered at once,
so the stream goes on closing the minutes after them live; backfills run ``slots`` at a time (the
exchange's client spaces their requests by its rate limit) and a failed one is retried, with back-off,
until it succeeds or its symbol is no longer followed.
"""

from __future__ import annotations

import asyncio
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
# (symbol, (since_ms, until_ms), the fetch's error or None when it succeeded): after each backfill attempt
FetchReport = Callable[[str, tuple[int, int], Exception | None], None]
# attempt (0, 1, ...) -> seconds before the next try of a failed backfill
RetryDelay = Callable[[int], float]


@dataclass(slots=True)
class _Current:
    row: Row
    epoch: int


class CandleBook:
    """Per exchange: turns the stream's rows into closed candles, backfilling whatever it cannot trust."""

    def __init__(
        self,
        fetch: FetchRange,
        write: WriteCandle,
        initial_backfill_min: int,
        *,
        slots: int,
        retry_delay: RetryDelay,
        report: FetchReport,
    ) -> None:
        self._fetch, self._write, self._report = fetch, write, report
        self._retry_delay = retry_delay
        self._slots = asyncio.Semaphore(slots)
        self._initial_ms = initial_backfill_min * MINUTE_MS
        # Open time up to which (exclusive) every candle is written, being fetched, or known not to exist.
        self.covered: dict[str, int] = {}
        # The same, without "being fetched": every candle before it is written.
        self.settled: dict[str, int] = {}
        self._current: dict[str, _Current] = {}
        self._backfills: dict[str, dict[tuple[int, int], asyncio.Task[None]]] = {}
        self.epoch = 0
        self.out_of_order = 0
        self.invalid = 0
        self.gaps = 0
        self.backfilled = 0

    @property
    def backfills_pending(self) -> int:
        return sum(map(len, self._backfills.values()))

    def reconnected(self) -> None:
        """A new connection: candles last updated before it may be partial."""
        self.epoch += 1

    def forget(self, symbol: str) -> None:
        """The symbol left the watchlists; if it comes back it starts over with a backfill from the first
        minute not written (its unfinished backfills are dropped, not left to retry for nobody)."""
        self._current.pop(symbol, None)
        for task in self._backfills.pop(symbol, {}).values():
            task.cancel()
        if symbol in self.settled:
            self.covered[symbol] = self.settled[symbol]

    async def close(self) -> None:
        """Stop every backfill (the feeder is stopping)."""
        tasks = [task for backfills in self._backfills.values() for task in backfills.values()]
        self._backfills.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def on_rows(self, symbol: str, rows: Sequence[Row], received: float | None = None) -> None:
        received = time.time() if received is None else received
        # Copied: ccxt updates its rows in place.
        for row in [list(raw) for raw in rows]:
            if self._usable(row):
                self._on_row(symbol, row, received)

    def _usable(self, row: Row) -> bool:
        if len(row) >= 6 and all(isinstance(v, int | float) and math.isfinite(v) for v in row[:6]):
            return True
        self.invalid += 1
        return False

    def _on_row(self, symbol: str, row: Row, received: float) -> None:
        ts = int(row[0])
        current = self._current.get(symbol)
        covered = self.covered.get(symbol)
        if current is None:
            self._current[symbol] = _Current(row, self.epoch)
            self._backfill(symbol, covered if covered is not None else ts - self._initial_ms, ts)
            return
        if ts < current.row[0] or (covered is not None and ts < covered):
            self.out_of_order += 1
            return
        if ts == current.row[0]:
            current.row, current.epoch = row, self.epoch
            return
        # A later candle: the current one is closed.
        closed = current
        self._current[symbol] = _Current(row, self.epoch)
        trusted = closed.epoch == self.epoch and covered == closed.row[0] and ts == closed.row[0] + MINUTE_MS
        if trusted:
            self._write(symbol, closed.row, False, received)
            self._cover(symbol, ts)
        else:
            self._backfill(symbol, covered if covered is not None else closed.row[0], ts)

    def _cover(self, symbol: str, until: int) -> None:
        self.covered[symbol] = max(self.covered.get(symbol, until), until)
        self._settle(symbol)

    def _settle(self, symbol: str) -> None:
        backfills = self._backfills.get(symbol)
        self.settled[symbol] = min(since for since, _ in backfills) if backfills else self.covered[symbol]

    def _backfill(self, symbol: str, since: int, until: int) -> None:
        if since >= until:
            self._cover(symbol, until)
            return
        self.gaps += 1
        self._backfills.setdefault(symbol, {})[since, until] = asyncio.create_task(
            self._fill(symbol, since, until), name=f"backfill-{symbol}"
        )
        self._cover(symbol, until)

    async def _fill(self, symbol: str, since: int, until: int) -> None:
        attempt = 0
        while True:
            try:
                async with self._slots:
                    rows = await self._fetch(symbol, since, until)
                break
            except Exception as exc:  # any failure of REST: retried, reported
                self._report(symbol, (since, until), exc)
                await asyncio.sleep(self._retry_delay(attempt))
                attempt += 1
        now = time.time()
        written = 0
        for row in [list(raw) for raw in rows]:
            if self._usable(row) and since <= row[0] < until:
                self._write(symbol, row, True, now)
                written += 1
        self.backfilled += written
        backfills = self._backfills.get(symbol, {})
        backfills.pop((since, until), None)
        if not backfills:
            self._backfills.pop(symbol, None)
        self._settle(symbol)
        self._report(symbol, (since, until), None)
        log.info(
            "candles backfilled",
            extra={"symbol": symbol, "since_ms": since, "until_ms": until, "candles": written},
        )
