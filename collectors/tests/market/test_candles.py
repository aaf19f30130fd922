"""The candle book alone: its REST fetch and its writer passed in, the exchange's true candles a dict."""

from __future__ import annotations

import asyncio

from marketdash.market.candles import MINUTE_MS, CandleBook, Row
from marketdash_testing.servers import eventually

M = MINUTE_MS
# The exchange's candles, final: open time -> [open, high, low, close, volume].
TRUE = {t * M: [10.0 + t, 12.0 + t, 9.0 + t, 11.0 + t, 5.0 + t] for t in range(-10, 10)}


class Rig:
    """A book whose REST fetches wait at a gate the test opens (and fail while `refusing` is above 0),
    and which records what it writes and what it is told of REST."""

    def __init__(self, slots: int = 4) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.refusing = 0
        # Rows the REST API adds to what it serves (garbage from the exchange).
        self.extra_rows: list[Row] = []
        self.fetches: list[tuple[str, int, int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.written: dict[tuple[str, int], tuple[list[float], bool]] = {}
        self.reports: list[str | None] = []
        self.book = CandleBook(
            self._fetch,
            self._write,
            initial_backfill_min=2,
            slots=slots,
            retry_delay=lambda attempt: 0.01,
            report=lambda symbol, gap, error: self.reports.append(None if error is None else str(error)),
        )

    async def _fetch(self, symbol: str, since: int, until: int) -> list[Row]:
        self.fetches.append((symbol, since, until))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            if self.refusing:
                self.refusing -= 1
                raise ConnectionError("418 I'm a teapot")
            rows = [[ts, *values] for ts, values in sorted(TRUE.items()) if since <= ts < until]
            return rows + self.extra_rows
        finally:
            self.in_flight -= 1

    def _write(self, symbol: str, row: Row, backfilled: bool, event_time: float) -> None:
        self.written[symbol, int(row[0])] = (list(row[1:6]), backfilled)

    def candles(self, symbol: str = "X") -> dict[int, tuple[list[float], bool]]:
        return {ts: candle for (name, ts), candle in sorted(self.written.items()) if name == symbol}


def live(ts: int, values: list[float] | None = None) -> Row:
    return [ts, *(values or TRUE[ts])]


async def test_a_minute_closed_on_the_connection_that_last_updated_it_is_written_live():
    rig = Rig()
    rig.book.reconnected()
    rig.book.on_rows("X", [live(0)])  # first row: what came before it is fetched
    rig.book.on_rows("X", [live(M)])  # closes minute 0 on the same connection
    rig.book.on_rows("X", [live(2 * M)])
    assert await eventually(lambda: rig.book.settled["X"] == 2 * M, 5)
    assert rig.candles() == {
        -2 * M: (TRUE[-2 * M], True),
        -M: (TRUE[-M], True),
        0: (TRUE[0], False),
        M: (TRUE[M], False),
    }


async def test_a_minute_last_updated_before_a_reconnect_comes_over_rest():
    rig = Rig()
    rig.book.reconnected()
    rig.book.on_rows("X", [live(0)])
    rig.book.on_rows("X", [live(M, [11.0, 12.0, 10.0, 12.0, 2.0])])  # minute 1 as the old socket left it
    rig.book.reconnected()
    rig.book.on_rows("X", [live(2 * M)])  # closes minute 1 on the new connection, which never updated it
    assert await eventually(lambda: rig.book.settled["X"] == 2 * M, 5)
    assert rig.candles()[M] == (TRUE[M], True)
    assert rig.candles()[0] == (TRUE[0], False)


async def test_the_stream_goes_on_closing_minutes_live_while_a_backfill_is_held():
    rig = Rig()
    rig.gate.clear()
    rig.book.reconnected()
    rig.book.on_rows("X", [live(0)])  # backfill of the two minutes before, held at the gate
    for minute in (1, 2, 3):
        rig.book.on_rows("X", [live(minute * M)])
    assert rig.candles() == {0: (TRUE[0], False), M: (TRUE[M], False), 2 * M: (TRUE[2 * M], False)}
    assert rig.book.covered["X"] == 3 * M
    assert rig.book.settled["X"] == -2 * M  # not all written before it yet
    assert rig.book.backfills_pending == 1
    rig.gate.set()
    assert await eventually(lambda: rig.book.settled["X"] == 3 * M, 5)
    assert rig.candles()[-2 * M] == (TRUE[-2 * M], True)
    assert rig.book.backfills_pending == 0
    assert rig.fetches == [("X", -2 * M, 0)]


async def test_backfills_run_a_few_at_a_time_and_all_complete():
    rig = Rig(slots=2)
    rig.gate.clear()
    rig.book.reconnected()
    symbols = [f"S{n}" for n in range(6)]
    for symbol in symbols:
        rig.book.on_rows(symbol, [live(0)])
    assert await eventually(lambda: rig.in_flight == 2, 5)
    await asyncio.sleep(0.05)
    assert rig.in_flight == 2
    rig.gate.set()
    assert await eventually(lambda: rig.book.backfills_pending == 0, 5)
    assert rig.most_in_flight == 2
    for symbol in symbols:
        assert rig.candles(symbol) == {-2 * M: (TRUE[-2 * M], True), -M: (TRUE[-M], True)}


async def test_a_refused_backfill_is_reported_and_retried_until_it_succeeds():
    rig = Rig()
    rig.refusing = 2
    rig.book.reconnected()
    rig.book.on_rows("X", [live(0)])
    rig.book.on_rows("X", [live(M)])
    assert await eventually(lambda: rig.book.settled["X"] == M, 5)
    assert rig.reports == ["418 I'm a teapot", "418 I'm a teapot", None]
    assert rig.candles() == {-2 * M: (TRUE[-2 * M], True), -M: (TRUE[-M], True), 0: (TRUE[0], False)}
    assert rig.book.backfilled == 2


async def test_a_symbol_dropped_during_its_backfill_starts_over_from_its_first_unwritten_minute():
    rig = Rig()
    rig.gate.clear()
    rig.book.reconnected()
    rig.book.on_rows("X", [live(0)])
    rig.book.on_rows("X", [live(M)])  # minute 0 closed live; the two before it still held
    assert await eventually(lambda: rig.in_flight == 1, 5)
    rig.book.forget("X")
    assert await eventually(lambda: rig.in_flight == 0, 5)  # cancelled, not left to retry for nobody
    assert rig.book.backfills_pending == 0
    rig.gate.set()
    rig.book.on_rows("X", [live(5 * M)])  # followed again
    assert await eventually(lambda: rig.book.settled["X"] == 5 * M, 5)
    assert rig.fetches == [("X", -2 * M, 0), ("X", -2 * M, 5 * M)]
    assert sorted(rig.candles()) == [t * M for t in range(-2, 5)]


async def test_unusable_rows_from_rest_are_counted_and_skipped():
    rig = Rig()
    rig.extra_rows = [
        [-M, float("nan"), 1.0, 1.0, 1.0, 1.0],
        [-2 * M, 1.0, 1.0],
        [-M, 1.0, None, 1.0, 1.0, 1.0],
    ]
    rig.book.reconnected()
    rig.book.on_rows("X", [live(0)])
    assert await eventually(lambda: rig.book.settled["X"] == 0, 5)
    assert rig.candles() == {-2 * M: (TRUE[-2 * M], True), -M: (TRUE[-M], True)}
    assert rig.book.invalid == 3


async def test_closing_the_book_stops_its_backfills():
    rig = Rig()
    rig.gate.clear()
    rig.book.reconnected()
    for symbol in ("X", "Y"):
        rig.book.on_rows(symbol, [live(0)])
    assert await eventually(lambda: rig.in_flight == 2, 5)
    await rig.book.close()
    assert rig.in_flight == 0
    assert rig.book.backfills_pending == 0
    assert rig.candles("X") == rig.candles("Y") == {}
