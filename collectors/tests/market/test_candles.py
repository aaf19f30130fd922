"""The candle book alone: its REST fetch and its writer passed in, the exchange's true candles a dict."""

from __future__ import annotations

import asyncio

from servers import eventually

from marketdash.market.candles import MINUTE_MS, CandleBook, Row

M = MINUTE_MS
# The exchange's candles, final: open time -> [open, high, low, close, volume].
TRUE = {0: [10.0, 12.0, 9.0, 11.0, 5.0], M: [11.0, 15.0, 8.0, 9.0, 7.0], 2 * M: [9.0, 9.5, 9.0, 9.2, 1.0]}


class Rig:
    """A book whose REST fetches wait at a gate the test opens, and which records what it writes."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.fetches: list[tuple[int, int]] = []
        self.written: dict[int, tuple[list[float], bool]] = {}
        self.book = CandleBook(self._fetch, self._write, initial_backfill_min=2)

    async def _fetch(self, symbol: str, since: int, until: int) -> list[Row]:
        self.fetches.append((since, until))
        await self.gate.wait()
        return [[ts, *values] for ts, values in sorted(TRUE.items()) if since <= ts < until]

    def _write(self, symbol: str, row: Row, backfilled: bool, event_time: float) -> None:
        self.written[int(row[0])] = (list(row[1:6]), backfilled)


def live(ts: int, values: list[float] | None = None) -> Row:
    return [ts, *(values or TRUE[ts])]


async def test_a_minute_closed_on_the_connection_that_last_updated_it_is_written_live():
    rig = Rig()
    rig.book.reconnected()
    await rig.book.on_rows("X", [live(0)])  # first row: what came before it is fetched
    await rig.book.on_rows("X", [live(M)])  # closes minute 0 on the same connection
    await rig.book.on_rows("X", [live(2 * M)])
    assert rig.written[0] == (TRUE[0], False)
    assert rig.written[M] == (TRUE[M], False)


async def test_a_reconnect_noticed_during_a_backfill_leaves_the_rest_of_its_batch_unconfirmed():
    # The batch [minute 0, minute 1 as the old connection last saw it] arrives; minute 0 starts a backfill;
    # meanwhile the connection is replaced. Minute 1's row is still the old connection's, whatever the
    # epoch is by the time it is read: closed by the new connection's first row, it comes over REST.
    rig = Rig()
    rig.book.reconnected()
    rig.gate.clear()
    partial = [11.0, 12.0, 10.0, 12.0, 2.0]
    batch = asyncio.create_task(rig.book.on_rows("X", [live(0), live(M, partial)]))
    assert await eventually(lambda: rig.fetches, within_s=5)
    rig.book.reconnected()
    rig.gate.set()
    await batch
    await rig.book.on_rows("X", [live(2 * M)])
    assert rig.written[M] == (TRUE[M], True)
