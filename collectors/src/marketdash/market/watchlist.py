"""What to collect: the assets of the active watchlists, followed live through LISTEN/NOTIFY.

The API's migrations put a trigger on `watchlists` that sends `NOTIFY watchlists_changed` on any change,
whoever makes it. The follower re-reads the set on every notification (bursts coalesce into one read),
and also every `recheck_s` as a safety net. When PostgreSQL cannot be reached it keeps the last set it
read, or starts from the configured fallback list, and reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg

from marketdash.core.catalogue import Asset, catalogue_by_symbol
from marketdash.core.influx import backoff_delay
from marketdash.core.notify import follow_channel

log = logging.getLogger(__name__)

ACTIVE_SYMBOLS = "SELECT DISTINCT jsonb_array_elements_text(assets) FROM watchlists WHERE active"
CHANNEL = "watchlists_changed"


def resolve(symbols: list[str] | set[str]) -> list[Asset]:
    """Catalogue assets for these symbols, in a stable order; unknown symbols are logged and skipped."""
    catalogue = catalogue_by_symbol()
    unknown = sorted(set(symbols) - catalogue.keys())
    if unknown:
        log.warning("symbols not in the catalogue are ignored", extra={"symbols": unknown})
    return [catalogue[symbol] for symbol in sorted(set(symbols) & catalogue.keys())]


class WatchlistFollower:
    def __init__(
        self,
        dsn: str,
        fallback: list[str],
        on_change: Callable[[list[Asset]], Awaitable[None]],
        *,
        recheck_s: float = 60.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.dsn = dsn
        self.fallback = resolve(fallback)
        self.on_change = on_change
        self.recheck_s = recheck_s
        self.backoff = (backoff_initial_s, backoff_max_s)
        self.current: list[Asset] | None = None
        # "database" or "fallback": /healthz shows which one the feeder is following.
        self.origin = "none"
        self._attempt = 0

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                log.warning("watchlists unreadable", extra={"error": f"{type(exc).__name__}: {exc}"})
            if self.current is None:
                await self._apply(self.fallback, "fallback")
            elif self.origin == "database":
                self.origin = "last_known"  # keep collecting what the watchlists held
            await asyncio.sleep(backoff_delay(self._attempt, *self.backoff))
            self._attempt += 1

    async def _listen(self) -> None:
        if not self.dsn:
            raise OSError("no PostgreSQL DSN configured")
        async with await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=10
        ) as conn:

            async def read() -> None:
                await self._apply(await self._read(conn), "database")
                self._attempt = 0

            await follow_channel(conn, CHANNEL, read, recheck_s=self.recheck_s)

    async def _read(self, conn: psycopg.AsyncConnection) -> list[Asset]:
        cursor = await conn.execute(ACTIVE_SYMBOLS)
        return resolve([row[0] for row in await cursor.fetchall()])

    async def _apply(self, assets: list[Asset], origin: str) -> None:
        self.origin = origin
        if assets == self.current:
            return
        log.info("collecting", extra={"origin": origin, "symbols": [asset.symbol for asset in assets]})
        self.current = assets
        await self.on_change(assets)
