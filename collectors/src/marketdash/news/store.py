"""What survives a restart: the keys of items already handled, and each URL's conditional-GET validators.

SQLite in the data directory (stdlib, one file, atomic commits, indexed look-ups and age-based pruning in
one statement); a JSON state file would have to be rewritten whole on every poll and could be torn by a
crash mid-write. Calls are short and synchronous: a poll touches a few dozen keys.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from marketdash.news.fetch import Validators
from marketdash.news.items import NewsItem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_age ON seen (seen_at);
CREATE TABLE IF NOT EXISTS validators (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT) WITHOUT ROWID;
"""


class StateStore:
    def __init__(self, path: Path, retention_s: float = 30 * 86400) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention_s = retention_s
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def claim_new(self, items: Iterable[NewsItem], now: float | None = None) -> list[NewsItem]:
        """Items none of whose keys was seen before (nor earlier in `items`); their keys are then recorded.

        An item seen under one key gets its other keys recorded too, so a copy reaching us later under only
        one of them (same title elsewhere, same URL with a new guid) is still recognised.
        """
        now = time.time() if now is None else now
        fresh: list[NewsItem] = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for item in items:
                keys = item.dedup_keys()
                placeholders = ",".join("?" * len(keys))
                query = f"SELECT 1 FROM seen WHERE key IN ({placeholders}) LIMIT 1"  # noqa: S608 — only "?"s
                known = self._db.execute(query, keys).fetchone()
                # Every sighting refreshes the date, so an item a feed keeps listing is never forgotten and
                # re-announced by pruning.
                self._db.executemany(
                    "INSERT INTO seen (key, seen_at) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at",
                    [(key, now) for key in keys],
                )
                if known is None:
                    fresh.append(item)
        return fresh

    def unseen(self, items: Iterable[NewsItem]) -> list[NewsItem]:
        """Items none of whose keys was seen before; records nothing (`claim_new` does)."""
        unseen = []
        for item in items:
            keys = item.dedup_keys()
            placeholders = ",".join("?" * len(keys))
            query = f"SELECT 1 FROM seen WHERE key IN ({placeholders}) LIMIT 1"  # noqa: S608 — only "?"s
            if self._db.execute(query, keys).fetchone() is None:
                unseen.append(item)
        return unseen

    def prune(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._db:
            return self._db.execute("DELETE FROM seen WHERE seen_at < ?", (now - self.retention_s,)).rowcount

    def validators(self, url: str) -> Validators | None:
        row = self._db.execute("SELECT etag, last_modified FROM validators WHERE url = ?", (url,)).fetchone()
        return Validators(row[0], row[1]) if row else None

    def save_validators(self, url: str, validators: Validators) -> None:
        with self._db:
            if validators.etag or validators.last_modified:
                self._db.execute(
                    "INSERT OR REPLACE INTO validators (url, etag, last_modified) VALUES (?, ?, ?)",
                    (url, validators.etag, validators.last_modified),
                )
            else:
                self._db.execute("DELETE FROM validators WHERE url = ?", (url,))
