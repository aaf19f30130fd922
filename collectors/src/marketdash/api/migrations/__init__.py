"""Ordered SQL migrations of the bloomberg_config schema, applied by ``marketdash.api.migrations.migrate``."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib.resources import files

import psycopg

from marketdash.core.catalogue import load_catalogue

log = logging.getLogger(__name__)

# Any constant works as long as every migrating process uses the same one: two deploys racing (or
# a test run beside a service start) queue on it instead of both creating the same tables.
_ADVISORY_LOCK_KEY = 0x6D64_6D69  # "mdmi"

_HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text        PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The database's migration history disagrees with the migrations shipped in this package."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> tuple[Migration, ...]:
    found = [
        Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in files(__name__).iterdir()
        if entry.name.endswith(".sql")
    ]
    return tuple(sorted(found, key=lambda migration: migration.name))


def applied_migrations(conn: psycopg.Connection) -> dict[str, str]:
    """name -> checksum of what this database has applied; empty when it has never been migrated."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())


def pending_from(applied: dict[str, str]) -> list[str]:
    """Names not yet applied, given name -> checksum of those that were.

    Raises MigrationError when an applied migration was edited afterwards: the database would silently
    differ from what a fresh install gets.
    """
    pending = []
    for migration in available_migrations():
        checksum = applied.get(migration.name)
        if checksum is None:
            pending.append(migration.name)
        elif checksum != migration.checksum:
            raise MigrationError(
                f"migration {migration.name} changed after it was applied: add a new migration instead"
            )
    return pending


def pending_migrations(conn: psycopg.Connection) -> list[str]:
    return pending_from(applied_migrations(conn))


def sync_assets(conn: psycopg.Connection) -> None:
    """Make the assets table hold the catalogue shipped with this package, and the other symbols some
    user's data names (added by a symbol alone, or gone from the catalogue since); a catalogue entry for
    such a symbol fills in its metadata."""
    rows = [
        (a.symbol, a.name, a.asset_class, json.dumps(list(a.aliases)), json.dumps(dict(a.sources)))
        for a in load_catalogue()
    ]
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO assets (symbol, name, asset_class, aliases, sources)
            VALUES (%s, %s, %s, %s::jsonb, %s::jsonb)
            ON CONFLICT (symbol) DO UPDATE SET name = excluded.name, asset_class = excluded.asset_class,
                aliases = excluded.aliases, sources = excluded.sources
            """,
            rows,
        )
        cur.execute(
            """DELETE FROM assets WHERE NOT (symbol = ANY(%s))
                 AND NOT EXISTS (SELECT 1 FROM watchlists WHERE watchlists.assets ? assets.symbol)
                 AND NOT EXISTS (SELECT 1 FROM alert_rules WHERE alert_rules.asset = assets.symbol)
                 AND NOT EXISTS (SELECT 1 FROM portfolio_positions AS p WHERE p.asset = assets.symbol)""",
            ([row[0] for row in rows],),
        )


def migrate(dsn: str) -> list[str]:
    """Apply pending migrations in order, each in its own transaction, then refresh the asset catalogue
    and the other logins' privileges (grants.sql).

    Returns the names applied (empty when the schema was current). Safe to run concurrently.
    """
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            conn.execute(_HISTORY_TABLE)
            pending = set(pending_migrations(conn))
            for migration in available_migrations():
                if migration.name not in pending:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                        (migration.name, migration.checksum),
                    )
                log.info("migration applied", extra={"migration": migration.name})
                applied.append(migration.name)
            with conn.transaction():
                sync_assets(conn)
                # Every time, not once: a login created or re-created since still gets its privileges.
                conn.execute(files("marketdash.api").joinpath("grants.sql").read_text(encoding="utf-8"))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return applied
