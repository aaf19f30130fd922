import threading

import psycopg
import pytest

from marketdash.api.app import CACHED_TABLES
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


def test_assets_table_holds_the_catalogue_and_what_users_added(postgres_db):
    migrate(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        conn.execute("DELETE FROM assets WHERE symbol IN ('ETH/USDT', 'BTC/USDT')")
        # Not in the catalogue: kept while some user's data names it (a watchlist, a rule, a position),
        # else dropped. The catalogue's own entry for a symbol a user added gives it its metadata.
        for symbol in ("GONE", "APPL", "NFLX", "PL=F", "BN.PA", "BTC/USDT"):
            conn.execute(
                "INSERT INTO assets (symbol, name, asset_class) VALUES (%s, %s, 'equity')", (symbol, symbol)
            )
        user = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES ('u', 'x') RETURNING id"
        ).fetchone()
        conn.execute("""INSERT INTO watchlists (user_id, name, assets) VALUES (%s, 'w', '["NFLX"]')""", user)
        conn.execute(
            "INSERT INTO alert_rules (user_id, asset, condition, threshold, channel)"
            " VALUES (%s, 'PL=F', 'above', 1, 'telegram')",
            user,
        )
        conn.execute(
            "INSERT INTO portfolio_positions (user_id, asset, quantity, avg_price)"
            " VALUES (%s, 'BN.PA', 1, 1)",
            user,
        )
    migrate(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        symbols = {row[0] for row in conn.execute("SELECT symbol FROM assets")}
        sources = conn.execute("SELECT sources FROM assets WHERE symbol = 'SPX'").fetchone()[0]
        bitcoin = conn.execute("SELECT name, sources FROM assets WHERE symbol = 'BTC/USDT'").fetchone()
    assert symbols == {asset.symbol for asset in load_catalogue()} | {"NFLX", "PL=F", "BN.PA"}
    assert sources["yahoo"] == "^GSPC"
    assert bitcoin[0] == "Bitcoin"
    assert bitcoin[1]["kraken"] == "BTC/USD"


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


def test_every_table_the_api_caches_has_the_trigger_that_announces_its_changes(postgres_db):
    migrate(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        announced = {
            table
            for (table,) in conn.execute(
                "SELECT tgrelid::regclass::text FROM pg_trigger"
                " WHERE tgfoid = 'notify_table_changed'::regproc"
                " AND tgname = tgrelid::regclass::text || '_changed'"
            )
        }
    assert announced >= set(CACHED_TABLES)


def test_every_table_the_api_caches_announces_its_changes_even_by_cascade(postgres_db):
    migrate(postgres_db)
    cached = CACHED_TABLES
    with psycopg.connect(postgres_db, autocommit=True) as listener, psycopg.connect(postgres_db) as writer:
        for table in cached:
            listener.execute(f"LISTEN {table}_changed")

        def announced() -> set[str]:
            return {n.channel for n in listener.notifies(timeout=0.5)}

        user_id = writer.execute(
            "INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id"
        ).fetchone()[0]
        writer.execute("INSERT INTO watchlists (user_id, name) VALUES (%s, 'main')", (user_id,))
        writer.execute("INSERT INTO user_layouts (user_id, layout_name) VALUES (%s, 'desk')", (user_id,))
        writer.execute(
            "INSERT INTO alert_rules (user_id, asset, condition, threshold, channel)"
            " VALUES (%s, 'BTC/USDT', 'above', 1, 'email')",
            (user_id,),
        )
        writer.execute(
            "INSERT INTO portfolio_positions (user_id, asset, quantity, avg_price) VALUES (%s, 'AAPL', 1, 1)",
            (user_id,),
        )
        writer.execute("UPDATE assets SET name = name WHERE symbol = 'AAPL'")
        writer.commit()
        assert announced() == {f"{table}_changed" for table in cached}
        # Deleting the user deletes what they owned by cascade: each of those tables says so too.
        writer.execute("DELETE FROM users WHERE id = %s", (user_id,))
        writer.commit()
        assert announced() == {f"{table}_changed" for table in cached if table != "assets"}


# Every migration shipped so far, by checksum. A database that applied one refuses to migrate once its
# file changes (see the test above), so a shipped migration is never edited: add a new one, and its line
# here once it ships.
SHIPPED = {
    "0001_users": "bd724f83c05177d3293070046d69b81e549579d910a78737506cd638fdc1f2dd",
    "0002_assets": "d34e271ffd4c7dd0495f86acb4d985c8b3e81677029ecf981aebd6a32dea6851",
    "0003_watchlists": "367e30884e7adf3feb3d534eb2ea658f245f003d92f6bce41136637f684eef3e",
    "0004_user_layouts": "c84015fd91a75ab7c18acb94fc098de60ce4e3778cc5b4837efb0305eb58d564",
    "0005_alert_rules": "0b771db32173645cb7934f164bea17e885236ae1cfa3bcb0b63db818a6cef6cd",
    "0006_alert_events": "b43e61ba9723dcc036d87659ebb1a6f9f682c08060f55189fb82716d915fa4ea",
    "0007_portfolio_positions": "5138b8a083b5f39bc5327da05599450d50bcc30a66ba270ded57f019f37d582a",
    "0008_alert_engine": "5ebe467b62b3382e9ddcf634a71d396576f66db0b231c657748b2d649a40afbe",
    "0009_password_version": "ac72b3afc9a87036a334024a08cd5e7a7296cc09c4f1cc437f4db87a842c161e",
    "0010_change_notifications": "b942c052c4af75b0a1fd42c17c813c53e6b342a9152fbab35e89e210a5d326ee",
}


def test_no_shipped_migration_is_edited_or_removed():
    current = {migration.name: migration.checksum for migration in available_migrations()}
    assert {name: current.get(name) for name in SHIPPED} == SHIPPED
