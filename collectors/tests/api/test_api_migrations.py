import threading

import psycopg
import pytest

from marketdash.api.migrations import MigrationError, available_migrations, migrate, pending_migrations
from marketdash.core.catalogue import load_catalogue

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]

EXPECTED_TABLES = {
    "users",
    "assets",
    "watchlists",
    "user_layouts",
    "alert_rules",
    "alert_events",
    "alert_rule_state",
    "portfolio_positions",
    "schema_migrations",
}


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_migrates_an_empty_database_then_reapplies_nothing(postgres_db):
    first = migrate(postgres_db)
    assert first == [m.name for m in available_migrations()]
    assert _tables(postgres_db) == EXPECTED_TABLES
    assert migrate(postgres_db) == []
    with psycopg.connect(postgres_db) as conn:
        assert pending_migrations(conn) == []


def test_concurrent_migrations_apply_each_migration_once(postgres_db):
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(postgres_db))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = [name for result in results for name in result]
    assert sorted(applied) == [m.name for m in available_migrations()]


def test_assets_table_mirrors_the_catalogue_and_is_refreshed(postgres_db):
    migrate(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        conn.execute("DELETE FROM assets WHERE symbol = 'BTC/USDT'")
        conn.execute("INSERT INTO assets (symbol, name, asset_class) VALUES ('GONE', 'Delisted', 'equity')")
    migrate(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        symbols = {row[0] for row in conn.execute("SELECT symbol FROM assets")}
        sources = conn.execute("SELECT sources FROM assets WHERE symbol = 'SPX'").fetchone()[0]
    assert symbols == {asset.symbol for asset in load_catalogue()}
    assert sources["yahoo"] == "^GSPC"


def test_an_applied_migration_edited_afterwards_is_refused(postgres_db):
    migrate(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE name = '0003_watchlists'")
    with pytest.raises(MigrationError, match="0003_watchlists"):
        migrate(postgres_db)


def test_watchlist_changes_notify_the_feeder_channel_at_commit(postgres_db):
    migrate(postgres_db)
    with psycopg.connect(postgres_db, autocommit=True) as listener, psycopg.connect(postgres_db) as writer:
        listener.execute("LISTEN watchlists_changed")
        user_id = writer.execute(
            "INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id"
        ).fetchone()[0]
        writer.execute(
            "INSERT INTO watchlists (user_id, name, assets) VALUES (%s, 'main', '[\"BTC/USDT\"]')", (user_id,)
        )
        assert list(listener.notifies(timeout=0.2, stop_after=1)) == []  # not before commit
        writer.commit()
        received = list(listener.notifies(timeout=5, stop_after=1))
        assert [(n.channel, n.payload) for n in received] == [("watchlists_changed", "INSERT")]
        active = writer.execute(
            "SELECT DISTINCT jsonb_array_elements_text(assets) FROM watchlists WHERE active"
        ).fetchall()
        assert active == [("BTC/USDT",)]
