"""The API's reads served from memory: each table's entries kept until the table announces a change.

The tables the API reads on every request (the callers' accounts, the catalogue, each user's lists) change
rarely, and each sends ``NOTIFY <table>_changed`` at commit (migration 0010), whoever writes. The rules:

- A notification drops every entry of its table: a statement-level trigger does not say which rows.
- A load keeps its result only if no notification for its table came while it read: a change committed
  during the read would otherwise be kept until the next one.
- Nothing is kept while the listening connection is down (at start, through a PostgreSQL restart): every
  read goes to the database, and the cache starts empty once listening again, since what changed in
  between was announced to nobody.
- An entry is read again once older than ``max_age_s``, listening or not: the bound on staleness for a
  write that fires no trigger (``session_replication_role = replica``, a restore without triggers).
- ``None`` (nothing found) is never kept: an absence can end through a change in another table.
- A write made by this process drops its table at once (``changed``) so that the next read this process
  serves sees it; another worker process sees it when its listener hears the notification, a millisecond
  or so after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from marketdash.api.metrics import CACHE_LISTENING, CACHE_LOADS
from marketdash.core.backoff import Backoff

log = logging.getLogger(__name__)

V = TypeVar("V")

CHANNEL_SUFFIX = "_changed"
# Listening again after the connection was lost: the API reads straight from PostgreSQL meanwhile.
LISTEN_AGAIN = Backoff(1.0, 30.0)


@dataclass
class _Table:
    generation: int = 0
    entries: dict[Hashable, tuple[float, Any]] = field(default_factory=dict)

    def drop(self) -> None:
        self.generation += 1
        self.entries.clear()


class ReadCache:
    def __init__(
        self, tables: Iterable[str], *, max_age_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tables = {table: _Table() for table in tables}
        self._max_age_s = max_age_s
        self._clock = clock
        self.listening = False

    async def get(self, table: str, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """The entry for key, or what load() returns (kept under the rules above)."""
        cached = self._tables[table]
        now = self._clock()
        found = cached.entries.get(key)
        if found is not None and now - found[0] < self._max_age_s:
            return found[1]
        generation = cached.generation
        CACHE_LOADS.labels(table).inc()
        value = await load()
        if value is not None and self.listening and cached.generation == generation:
            cached.entries[key] = (now, value)
        return value

    def changed(self, *tables: str) -> None:
        for table in tables:
            self._tables[table].drop()

    def set_listening(self, listening: bool) -> None:
        """Starts keeping entries, or stops; either way what is kept goes: a load begun before is not kept."""
        self.changed(*self._tables)
        self.listening = listening
        CACHE_LISTENING.set(int(listening))

    async def follow(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        *,
        backoff: Backoff = LISTEN_AGAIN,
    ) -> None:
        """Listen to every table's channel and apply what arrives, forever; reconnect after an error
        (after `backoff`), reading straight from the database meanwhile."""
        attempt = 0
        while True:
            try:
                async with await connect() as conn:
                    for table in self._tables:
                        await conn.execute(f"LISTEN {table}{CHANNEL_SUFFIX}")
                    self.set_listening(True)
                    attempt = 0
                    async for notification in conn.notifies():
                        table = notification.channel.removesuffix(CHANNEL_SUFFIX)
                        if table in self._tables:
                            self.changed(table)
            except Exception as error:  # whatever ended it, the cache must listen again
                log.warning(
                    "read cache not listening, reading from the database",
                    extra={"error": f"{type(error).__name__}: {error}"},
                    exc_info=not isinstance(error, psycopg.Error | OSError),
                )
            finally:
                self.set_listening(False)
            await asyncio.sleep(backoff.delay(attempt))
            attempt += 1
