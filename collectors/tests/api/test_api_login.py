"""Logging in: what a password check may hold while it runs, and the limit per account."""

from __future__ import annotations

import asyncio

import psycopg
from api_fixtures import add_user, api_settings, login, running_app
from argon2 import PasswordHasher

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


async def test_a_password_check_under_way_holds_no_database_connection(migrated_db):
    # One pooled connection, and a user whose stored hash takes about a second to check (argon2 checks
    # with the parameters stored in the hash): a login that kept its connection while checking would
    # make the next request wait for the pool past its timeout (503).
    settings = api_settings(migrated_db, pool_min_size=1, pool_max_size=1, pool_timeout_seconds=0.3)
    async with running_app(settings) as client:
        await add_user(migrated_db, "alice")
        alice = await login(client, "alice")
        slow = PasswordHasher(time_cost=60, memory_cost=32768, parallelism=1).hash("the right one")
        with psycopg.connect(migrated_db) as conn:
            conn.execute("INSERT INTO users (username, password_hash) VALUES ('bob', %s)", (slow,))
        guess = asyncio.create_task(
            client.post("/api/auth/token", json={"username": "bob", "password": "a wrong guess"})
        )
        await asyncio.sleep(0.2)  # the guess is being checked now
        me = await client.get("/api/me", headers=alice)
        assert not guess.done()
        assert me.status_code == 200
        assert (await guess).status_code == 401


async def test_guesses_at_one_account_meet_a_limit_of_their_own(migrated_db):
    settings = api_settings(migrated_db, rate_limit_login_per_username_per_minute=3)
    async with running_app(settings) as client:
        await add_user(migrated_db, "alice")
        await add_user(migrated_db, "bob")
        for _ in range(3):
            wrong = await client.post("/api/auth/token", json={"username": "alice", "password": "guess1234"})
            assert wrong.status_code == 401
        locked = await client.post("/api/auth/token", json={"username": "ALICE", "password": "guess1234"})
        assert locked.status_code == 429
        assert "username" in locked.json()["detail"]
        assert await login(client, "bob")
