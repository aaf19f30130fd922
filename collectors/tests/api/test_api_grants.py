"""What the other logins may read of the API's schema, as the migrations leave it."""

from __future__ import annotations

import psycopg
import pytest

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


def as_login(dsn: str, login: str) -> psycopg.Connection:
    return psycopg.connect(dsn.replace("://postgres@", f"://{login}@", 1), autocommit=True)


def test_grafanas_reader_sees_user_names_and_never_password_hashes(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users (username, password_hash) VALUES ('alice', '$argon2id$secret')")
    with as_login(migrated_db, "grafana_reader") as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("alice",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT password_hash FROM users")
