"""One exchange's websocket streams (1 m candles, tickers), kept alive whatever the exchange does.

Each stream owns its ccxt client, so tearing one down never disturbs the other. A stream is reopened
after an error, after `stale_after_s` with nothing received (ccxt can stop reading a socket without telling
anyone), and before the exchange's forced disconnect (`planned_reconnect_s`); retries never stop, with
capped, jittered exponential back-off that starts over once a connection has delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import ccxt.pro

from marketdash.core.catalogue import Asset
from marketdash.core.influx import InfluxWriter
from marketdash.core.schema import CANDLE, TICKER, SchemaError, Series
from marketdash.market.candles import MINUTE_MS, CandleBook, Row
from marketdash.market.exchanges import build_exchange
from marketdash.market.metrics import FeederMetrics
from marketdash.market.settings import MarketSettings

log = logging.getLogger(__name__)

# Binance's full 24 h ticker carries bid/ask and the 24 h change; its default (miniTicker) does not.
_TICKER_PARAMS: dict[str, dict[str, Any]] = {"binance": {"name": "ticker"}}
# How often the backfills' REST client may reload the exchange's markets for a symbol it does not know.
_MARKETS_RELOAD_EVERY_S = 60.0
# Topics an exchange takes in one subscribe request: Bybit refuses more than 10 ("args size >10").
_SUBSCRIBE_AT_MOST: dict[str, int] = {"bybit": 10}


class StaleStream(Exception):  # noqa: N818 - a condition, named as the logs show it
    """No update within the watchdog's window."""


class PlannedReconnect(Exception):  # noqa: N818
    """Time to reconnect before the exchange forces it."""


class NothingListed(Exception):  # noqa: N818
    """The exchange lists none of the followed symbols: reconnecting cannot help."""


class ExchangeFeed:
    def __init__(
        self,
        exchange_id: str,
        settings: MarketSettings,
        writer: InfluxWriter,
        metrics: FeederMetrics,
    ) -> None:
        self.exchange_id = exchange_id
        self.settings = settings
        self.writer = writer
        self.metrics = metrics
        # exchange symbol -> asset; replaced whole when the watchlists change
        self._assets: dict[str, Asset] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._candle_series: dict[str, Series] = {}
        self._ticker_series: dict[str, Series] = {}
        self.last_update: dict[str, float] = {}
        # stream -> (since when it has been failing, its last error): see _failed
        self.failing: dict[str, tuple[float, str]] = {}
        self._attempt_started: dict[str, float] = {}
        self.book = CandleBook(
            self._fetch_range,
            self._write_candle,
            settings.initial_backfill_min,
            slots=settings.backfill_slots,
            retry_delay=settings.backoff.delay,
            report=self._backfill_reported,
        )
        # The book's counters as last added to the metrics.
        self._book_counted = (0, 0, 0, 0)
        # (symbol, since_ms, until_ms) of a backfill -> (since when it has been failing, its last error)
        self._backfill_failing: dict[tuple[str, int, int], tuple[float, str]] = {}
        self._rest_reloaded = 0.0
        # Backfills have a client of their own: REST requests spaced by its rate limit, whatever the
        # streams' clients are doing (a reconnect closes theirs).
        self._rest: ccxt.pro.Exchange | None = None
        self._rest_lock = asyncio.Lock()

    @property
    def symbols(self) -> set[str]:
        return {asset.symbol for asset in self._assets.values()}

    async def follow(self, assets: list[Asset]) -> None:
        """Stream these assets (those this exchange lists); resubscribes only when the set changed."""
        wanted = {
            asset.sources[self.exchange_id]: asset for asset in assets if self.exchange_id in asset.sources
        }
        if wanted.keys() == self._assets.keys() and self._tasks:
            return
        for gone in self._assets.keys() - wanted.keys():
            self.book.forget(gone)
            for key in [key for key in self._backfill_failing if key[0] == gone]:
                del self._backfill_failing[key]
        self._report_backfills()
        self._count_book()
        self._assets = wanted
        await self.stop()
        if not wanted:
            return
        self._tasks = [
            asyncio.create_task(
                self._supervise("candles", self._candles), name=f"{self.exchange_id}-candles"
            ),
            asyncio.create_task(
                self._supervise("tickers", self._tickers, delay=self.settings.stagger_s),
                name=f"{self.exchange_id}-tickers",
            ),
        ]

    async def stop(self) -> None:
        """Stop the streams; the backfills of symbols still followed go on (see close)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # A stream that no longer runs is neither failing nor delivering.
        for stream in ("candles", "tickers"):
            self.failing.pop(stream, None)
            self.last_update.pop(stream, None)
            self.metrics.unlisted.labels(self.exchange_id, stream).set(0)

    async def close(self) -> None:
        """Stop the streams and the backfills, and close the REST client (the feeder is stopping)."""
        try:
            await self.stop()
        finally:
            try:
                await self.book.close()
                self._count_book()
            finally:
                if self._rest is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._rest.close())
                    self._rest = None

    # --- supervision ------------------------------------------------------------------------------

    async def _supervise(
        self, stream: str, body: Callable[[ccxt.pro.Exchange], Awaitable[None]], delay: float = 0.0
    ) -> None:
        await asyncio.sleep(delay)
        attempt = 0
        while True:
            client: ccxt.pro.Exchange | None = None
            delivered_before = self.last_update.get(stream)
            self._attempt_started[stream] = time.time()
            try:
                client = build_exchange(
                    self.exchange_id,
                    self.settings.exchange_urls.get(self.exchange_id),
                    self.settings.exchange_options.get(self.exchange_id),
                )
                await client.load_markets()
                await body(client)
                reason = "ended"
            except PlannedReconnect:
                reason = "planned"
            except StaleStream as exc:
                reason = "stale"
                self._failed(stream, str(exc))
            except NothingListed as exc:
                reason = "unlisted"
                self._failed(stream, str(exc))
                log.error(
                    "stream parked", extra={"source": self.exchange_id, "stream": stream, "error": str(exc)}
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = "error"
                error = f"{type(exc).__name__}: {exc}"[:300]
                self._failed(stream, error)
                log.warning(
                    "stream failed", extra={"source": self.exchange_id, "stream": stream, "error": error}
                )
            finally:
                if client is not None:
                    # Shielded: a stop() arriving meanwhile must not leave the client half closed.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(client.close())
            if reason == "unlisted":
                await asyncio.Event().wait()  # until the watchlists change and follow() restarts the streams
            self.metrics.reconnects.labels(self.exchange_id, stream, reason).inc()
            if self.last_update.get(stream) != delivered_before:
                attempt = 0  # it worked for a while: start the back-off over
            if reason != "planned":
                delay = self.settings.backoff.delay(attempt)
                attempt += 1
                log.info(
                    "stream reconnecting",
                    extra={
                        "source": self.exchange_id,
                        "stream": stream,
                        "reason": reason,
                        "in_s": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)

    def _failed(self, stream: str, error: str) -> None:
        """Recorded for /healthz, from the first failure of a streak: a stream whose attempts keep failing,
        each after a few good watches, is not recovered until one attempt has stayed up for the whole grace
        period."""
        since = self.failing[stream][0] if stream in self.failing else time.time()
        self.failing[stream] = (since, error)

    def _delivered(self, stream: str, deadline: float) -> None:
        """A watch of `stream` returned: it delivers (and, once up for a whole grace period, is recovered),
        unless it is time for the planned reconnect."""
        now = time.time()
        self.last_update[stream] = now
        if (
            stream in self.failing
            and now - self._attempt_started[stream] >= self.settings.stream_failing_grace_s
        ):
            del self.failing[stream]  # up for a whole grace period: recovered
        self.metrics.last_message.labels(self.exchange_id, stream).set(now)
        if time.monotonic() >= deadline:
            raise PlannedReconnect

    async def _together(
        self, stream: str, client: ccxt.pro.Exchange, watches: list[Coroutine[Any, Any, None]]
    ) -> None:
        """Run a stream's watch loops on one client, with the watchdog; the first to fail ends them all.

        The watchdog judges the connection, not each watch: a symbol may be quiet for minutes (Kraken
        pushes a candle only when it trades) while the socket is alive (its heartbeats, the other symbols).
        ccxt notes when each of its connections last received a frame; nothing for `stale_after_s` means
        it stopped reading (after an invalid frame it reports nothing until its keep-alive times out).
        A TaskGroup, not gather: none outlives its client."""

        async def watchdog() -> None:
            started = time.time()
            while True:
                await asyncio.sleep(min(1.0, self.settings.stale_after_s / 4))
                frames = [
                    connection.last_message_at / 1000
                    for connection in (client.clients or {}).values()
                    if getattr(connection, "last_message_at", None)
                ]
                if time.time() - max([started, *frames]) > self.settings.stale_after_s:
                    raise StaleStream(
                        f"{self.exchange_id} {stream}: nothing received for {self.settings.stale_after_s}s"
                    )

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(watchdog())
                for watch in watches:
                    group.create_task(watch)
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None

    def _groups(self, symbols: list[str]) -> list[list[str]]:
        """The symbols in as few subscribe requests as the exchange takes (Bybit: 10 topics a request,
        and ccxt sends them all in one)."""
        size = _SUBSCRIBE_AT_MOST.get(self.exchange_id, len(symbols)) or 1
        return [symbols[start : start + size] for start in range(0, len(symbols), size)]

    # --- candles ----------------------------------------------------------------------------------

    async def _candles(self, client: ccxt.pro.Exchange) -> None:
        self.book.reconnected()
        deadline = time.monotonic() + self.settings.planned_reconnect_s
        symbols = self._listed(client, "candles")
        # One for every watch on this client (ccxt multiplexes them on one socket).
        connections = _ConnectionWatch(client)

        async def many(group: list[str]) -> None:
            pairs = [[symbol, "1m"] for symbol in group]
            # A copy of the last row handed to the book, per symbol, on this connection.
            delivered: dict[str, Row] = {}
            while True:
                update = await client.watch_ohlcv_for_symbols(pairs)
                self._delivered("candles", deadline)
                returned = {symbol: timeframes.get("1m", []) for symbol, timeframes in update.items()}
                if connections.replaced(returned):
                    self._reconnected_silently()
                # One symbol per return: the others' klines parsed in the same read resolved no watch and
                # are only in ccxt's cache.
                for symbol in group:
                    rows = connections.fresh(symbol, _unseen_rows(client, symbol, update, delivered))
                    if rows:
                        self._on_candles(symbol, rows)

        async def one(symbol: str) -> None:
            while True:
                rows = await client.watch_ohlcv(symbol, "1m")
                self._delivered("candles", deadline)
                if connections.replaced({symbol: rows}):
                    self._reconnected_silently()
                rows = connections.fresh(symbol, rows)
                if rows:
                    self._on_candles(symbol, rows)

        if client.has.get("watchOHLCVForSymbols"):
            await self._together("candles", client, [many(group) for group in self._groups(symbols)])
        else:
            await self._together("candles", client, [one(symbol) for symbol in symbols])

    def _listed(self, client: ccxt.pro.Exchange, stream: str) -> list[str]:
        """The followed symbols the exchange lists: one it does not (delisted, a catalogue mistake, or a
        pair followed under its own spelling that another exchange lists) is left out with a warning instead
        of failing the subscription of all the others."""
        listed = [symbol for symbol in self._assets if symbol in client.markets]
        unlisted = sorted(self._assets.keys() - set(listed))
        self.metrics.unlisted.labels(self.exchange_id, stream).set(len(unlisted))
        if unlisted:
            log.warning(
                "symbols not listed by the exchange",
                extra={"source": self.exchange_id, "stream": stream, "symbols": unlisted},
            )
        if not listed:
            raise NothingListed(f"{self.exchange_id} lists none of the followed symbols {unlisted}")
        return listed

    def _reconnected_silently(self) -> None:
        self.book.reconnected()
        self.metrics.reconnects.labels(self.exchange_id, "candles", "silent").inc()
        log.info("stream reconnected by ccxt", extra={"source": self.exchange_id, "stream": "candles"})

    def _on_candles(self, symbol: str, rows: list[Row]) -> None:
        self.metrics.messages.labels(self.exchange_id, "candle").inc(len(rows))
        if symbol not in self._assets:
            return
        self.book.on_rows(symbol, rows)
        self._count_book()

    def _count_book(self) -> None:
        book = self.book
        counted, self._book_counted = (
            self._book_counted,
            (book.out_of_order, book.invalid, book.gaps, book.backfilled),
        )
        source = self.exchange_id
        self.metrics.ignored.labels(source, "out_of_order").inc(book.out_of_order - counted[0])
        self.metrics.ignored.labels(source, "invalid").inc(book.invalid - counted[1])
        self.metrics.gaps.labels(source).inc(book.gaps - counted[2])
        self.metrics.candles_backfilled.labels(source).inc(book.backfilled - counted[3])
        self.metrics.backfills_pending.labels(source).set(book.backfills_pending)

    def _backfill_reported(self, symbol: str, gap: tuple[int, int], error: Exception | None) -> None:
        self._count_book()
        key = (symbol, *gap)
        if error is None:
            self._backfill_failing.pop(key, None)
        else:
            message = f"{type(error).__name__}: {error}"[:300]
            since = self._backfill_failing.get(key, (time.time(), ""))[0]
            self._backfill_failing[key] = (since, message)
            self.metrics.backfill_failures.labels(self.exchange_id).inc()
            log.warning(
                "backfill failed", extra={"source": self.exchange_id, "symbol": symbol, "error": message}
            )
        self._report_backfills()

    def _report_backfills(self) -> None:
        """/healthz's "backfills" entry: the backfill failing longest, until none is (another backfill's
        success, of the same symbol or another, does not clear it)."""
        if self._backfill_failing:
            (symbol, *_), (since, error) = min(self._backfill_failing.items(), key=lambda item: item[1][0])
            self.failing["backfills"] = (since, f"{symbol}: {error}")
        else:
            self.failing.pop("backfills", None)

    async def _rest_client(self) -> ccxt.pro.Exchange:
        async with self._rest_lock:
            if self._rest is None:
                client = build_exchange(
                    self.exchange_id,
                    self.settings.exchange_urls.get(self.exchange_id),
                    self.settings.exchange_options.get(self.exchange_id),
                )
                try:
                    await client.load_markets()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(client.close())
                    raise
                self._rest = client
            return self._rest

    async def _fetch_range(self, symbol: str, since: int, until: int) -> list[Row]:
        rest = await self._rest_client()
        if symbol not in rest.markets and time.monotonic() - self._rest_reloaded > _MARKETS_RELOAD_EVERY_S:
            # Listed since this client loaded its markets (the streams reload theirs at each connection).
            # At most once a minute: a reload costs the REST rate limit every backfill shares. Shielded:
            # ccxt gives every caller the same loading task, which one caller's cancellation would cancel.
            self._rest_reloaded = time.monotonic()
            await asyncio.shield(rest.load_markets(reload=True))
        rows: list[Row] = []
        cursor = since
        while cursor < until:
            page = await rest.fetch_ohlcv(symbol, "1m", since=cursor, limit=1000)
            page = [row for row in page if cursor <= row[0] < until]
            if not page:
                break
            rows.extend(page)
            cursor = int(page[-1][0]) + MINUTE_MS
        return rows

    def _write_candle(self, symbol: str, row: Row, backfilled: bool, event_time: float) -> None:
        asset = self._assets.get(symbol)
        if asset is None:
            return
        series = self._candle_series.get(symbol)
        if series is None:
            series = self._candle_series[symbol] = CANDLE.series(
                source=self.exchange_id, symbol=asset.symbol, asset_class=asset.asset_class, interval="1m"
            )
        ts, open_, high, low, close, volume = row[:6]
        fields = {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "backfilled": backfilled,
        }
        self.writer.write(CANDLE.bucket, series.line(fields, int(ts)), event_time)

    # --- tickers ----------------------------------------------------------------------------------

    async def _tickers(self, client: ccxt.pro.Exchange) -> None:
        deadline = time.monotonic() + self.settings.planned_reconnect_s
        symbols = self._listed(client, "tickers")
        params = _TICKER_PARAMS.get(self.exchange_id, {})
        # ccxt replaces a symbol's cached ticker on every update: identity tells what is new.
        written: dict[str, dict[str, Any]] = {}

        async def watch(group: list[str]) -> None:
            while True:
                returned = await client.watch_tickers(group, params)
                self._delivered("tickers", deadline)
                # watch_tickers returns the one ticker that resolved it; the other symbols' updates parsed in
                # the same read (Binance pushes every symbol's ticker at once, each second) are only cached.
                cached = client.tickers
                fresh = {
                    symbol: ticker
                    for symbol in group
                    if (ticker := cached.get(symbol, returned.get(symbol))) is not None
                    and ticker is not written.get(symbol)
                }
                written.update(fresh)
                self.metrics.messages.labels(self.exchange_id, "ticker").inc(len(fresh))
                for symbol, ticker in fresh.items():
                    self._write_ticker(symbol, ticker)

        await self._together("tickers", client, [watch(group) for group in self._groups(symbols)])

    def _write_ticker(self, symbol: str, ticker: dict[str, Any]) -> None:
        asset = self._assets.get(symbol)
        if asset is None:
            return
        series = self._ticker_series.get(symbol)
        if series is None:
            series = self._ticker_series[symbol] = TICKER.series(
                source=self.exchange_id, symbol=asset.symbol, asset_class=asset.asset_class
            )
        timestamp = ticker.get("timestamp") or int(time.time() * 1000)
        fields = {
            "last": ticker.get("last"),
            "bid": ticker.get("bid"),
            "ask": ticker.get("ask"),
            "volume_24h": ticker.get("baseVolume"),
            "change_pct_24h": ticker.get("percentage"),
        }
        try:
            if not isinstance(fields["last"], int | float):
                raise SchemaError(f"ticker without a last price: {ticker.get('info')!r}")
            line = series.line(fields, int(timestamp))
        except SchemaError as exc:
            self.metrics.ignored.labels(self.exchange_id, "invalid").inc()
            log.warning(
                "ticker ignored", extra={"source": self.exchange_id, "symbol": symbol, "error": str(exc)}
            )
            return
        self.writer.write(TICKER.bucket, line, timestamp / 1000)


_LEFT_REACH_MS = 60 * MINUTE_MS


class _ConnectionWatch:
    """Tells when a client's rows start coming through another websocket connection, and which rows the
    previous one left behind.

    ccxt forgets a connection the server closed and opens a new one at the next watch, raising nothing when
    no watch was pending (between a watch's return and the next, a window inside ccxt now that backfills
    run beside the stream): only the connection objects it keeps show it. Its
    cache outlives the connection and may hold rows the old one parsed but nobody read yet (a partial
    minute among them), which ccxt would hand over later as if new: every row the cache holds at that
    moment, but the one that resolved the watch, is withheld until the new connection updates it. Withheld,
    such a minute costs a REST backfill; handed over, it could be closed as final."""

    def __init__(self, client: ccxt.pro.Exchange) -> None:
        self._client = client
        self._seen: tuple[Any, ...] | None = None
        self._left: dict[str, set[tuple[float, ...]]] = {}

    def replaced(self, returned: dict[str, list[Row]]) -> bool:
        """Whether the rows just returned (by symbol) came through other connections than the previous
        call's (never so at the first call: a new client starts with an empty cache)."""
        current = tuple((self._client.clients or {}).values())
        seen, self._seen = self._seen, current
        if seen is None or (len(current) == len(seen) and all(map(operator.is_, current, seen))):
            return False
        # The last hour of each symbol's cache: older rows are behind anything the book still takes.
        self._left = {
            symbol: {tuple(row) for row in cached if row[0] >= cached[-1][0] - _LEFT_REACH_MS}
            for symbol, timeframes in self._client.ohlcvs.items()
            if (cached := timeframes.get("1m"))
        }
        for symbol, rows in returned.items():
            if rows:
                self._left.get(symbol, set()).discard(tuple(rows[-1]))
        return True

    def fresh(self, symbol: str, rows: list[Row]) -> list[Row]:
        """rows without those the previous connection left in the cache, unchanged since."""
        left = self._left.get(symbol)
        return [row for row in rows if tuple(row) not in left] if left else rows


def _unseen_rows(
    client: ccxt.pro.Exchange, symbol: str, update: dict[str, dict[str, list[Row]]], delivered: dict[str, Row]
) -> list[Row]:
    """The rows of `symbol` the book has not had yet: those returned, else those ccxt only cached."""
    stored = client.ohlcvs.get(symbol, {}).get("1m")
    if symbol in update:
        rows = update[symbol].get("1m", [])
    elif stored and stored[-1] != delivered.get(symbol):
        # What watch_ohlcv_for_symbols would have returned had this symbol resolved it.
        new = stored.getLimit(symbol, None) or 1
        rows = stored[len(stored) - new :]
    else:
        return []
    # A copy of what was handed over, not of the cache's last row: a minute ccxt appended while an earlier
    # symbol's backfill was awaited is not handed over yet. ccxt updates its rows in place.
    if rows:
        delivered[symbol] = list(rows[-1])
    return rows
