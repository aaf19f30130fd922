"""What the other logins may read of the API's schema (grants.sql, made so at every migrate)."""

from __future__ import annotations

import psycopg
import pytest

from marketdash.market.watchlist import ACTIVE_SYMBOLS

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


def as_login(dsn: str, login: str) -> psycopg.Connection:
    return psycopg.connect(dsn.replace("://postgres@", f"://{login}@", 1), autocommit=True)


def test_grafanas_reader_sees_user_names_and_never_password_hashes(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users (username, password_hash) VALUES ('alice', '$argon2id$secret')")
    with as_login(migrated_db, "grafana_reader") as conn:
        assert conn.execute("SELECT id, username FROM users").fetchall() == [(1, "alice")]
        for statement in ("SELECT password_hash FROM users", "SELECT * FROM users"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT target FROM alert_rules",
        "SELECT target FROM alert_events",
        "SELECT last_error FROM alert_events",
        "SELECT * FROM user_layouts",
        "SELECT * FROM alert_rule_state",
        "INSERT INTO watchlists (user_id, name) VALUES (1, 'x')",
        "DELETE FROM alert_events",
    ],
)
def test_grafanas_reader_reads_what_the_dashboards_query_and_nothing_else(migrated_db, statement):
    with as_login(migrated_db, "grafana_reader") as conn:
        for allowed in (
            "SELECT count(*) FROM watchlists",
            "SELECT count(*) FROM portfolio_positions",
            "SELECT triggered_at, asset, condition, threshold, value, status, channel FROM alert_events",
        ):
            conn.execute(allowed)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT user_id FROM watchlists",
        "SELECT name FROM watchlists",
        "SELECT * FROM watchlists",
        "SELECT username FROM users",
        "SELECT count(*) FROM portfolio_positions",
        "SELECT count(*) FROM alert_rules",
        "UPDATE watchlists SET active = false",
    ],
)
def test_the_feeders_login_reads_the_followed_symbols_and_not_whose_they_are(migrated_db, statement):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        user_id = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO watchlists (user_id, name, assets, active) VALUES (%s, 'a', '[\"XAU\"]', true),"
            " (%s, 'b', '[\"DAX\"]', false)",
            (user_id, user_id),
        )
    with as_login(migrated_db, "marketdash_feeder") as conn:
        followed = conn.execute(ACTIVE_SYMBOLS).fetchall()
        assert followed == [("XAU",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_a_login_that_lost_its_privileges_gets_them_back_at_the_next_migrate(migrated_db):
    from marketdash.api.migrations import migrate

    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM grafana_reader")
    with as_login(migrated_db, "grafana_reader") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM watchlists")
    assert migrate(migrated_db) == []
    with as_login(migrated_db, "grafana_reader") as conn:
        conn.execute("SELECT count(*) FROM watchlists")
