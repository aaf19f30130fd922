"""What to collect: the assets of the active watchlists, followed live through LISTEN/NOTIFY.

A symbol the catalogue lacks is collected under its own spelling (core/catalogue.py says which spellings):
a crypto pair on every exchange streamed, each of which leaves it out if it does not list it.

The API's migrations put a trigger on `watchlists` that sends `NOTIFY watchlists_changed` on any change,
whoever makes it. The follower re-reads the set on every notification (bursts coalesce into one read),
and also every `recheck_s` as a safety net. When PostgreSQL cannot be reached it keeps the last set it
read, or starts from the configured fallback list, and reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import psycopg

from marketdash.core.backoff import RECONNECT, Backoff
from marketdash.core.catalogue import UNCATALOGUED_SPELLING, Asset, catalogue_by_symbol, uncatalogued_asset
from marketdash.core.notify import follow_channel

log = logging.getLogger(__name__)

ACTIVE_SYMBOLS = "SELECT DISTINCT jsonb_array_elements_text(assets) FROM watchlists WHERE active"
CHANNEL = "watchlists_changed"


def resolve(symbols: list[str] | set[str], exchanges: Iterable[str]) -> list[Asset]:
    """The assets of these symbols, in a stable order: the catalogue's, or one collected under its own
    spelling (a crypto pair on these exchanges); a symbol spelt as nothing collects is logged and skipped."""
    catalogue = catalogue_by_symbol()
    exchanges = tuple(exchanges)
    assets = []
    for symbol in sorted(set(symbols)):
        asset = catalogue.get(symbol) or uncatalogued_asset(symbol, exchanges)
        if asset is None:
            log.warning("symbol left out", extra={"symbol": symbol, "why": UNCATALOGUED_SPELLING})
        else:
            assets.append(asset)
    return assets


class WatchlistFollower:
    def __init__(
        self,
        dsn: str,
        fallback: list[str],
        on_change: Callable[[list[Asset]], Awaitable[None]],
        *,
        exchanges: Iterable[str],
        recheck_s: float = 60.0,
        backoff: Backoff = RECONNECT,
    ) -> None:
        self.dsn = dsn
        self.exchanges = tuple(exchanges)
        self.fallback = resolve(fallback, self.exchanges)
        self.on_change = on_change
        self.recheck_s = recheck_s
        self.backoff = backoff
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
            await asyncio.sleep(self.backoff.delay(self._attempt))
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
        return resolve([row[0] for row in await cursor.fetchall()], self.exchanges)

    async def _apply(self, assets: list[Asset], origin: str) -> None:
        self.origin = origin
        if assets == self.current:
            return
        log.info("collecting", extra={"origin": origin, "symbols": [asset.symbol for asset in assets]})
        self.current = assets
        await self.on_change(assets)
