"""Logging in: what a password check may hold while it runs, and the limit per account."""

from __future__ import annotations

import asyncio

import psycopg
from api_fixtures import add_user, api_settings, app_clients, login, running_app
from argon2 import PasswordHasher

from marketdash.api.settings import ApiSettings
from marketdash_testing.api_server import PASSWORD

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


async def test_one_address_cannot_lock_a_member_out(migrated_db):
    """With the shipped limits, the per-account budget of failed guesses outlasts one address's."""
    defaults = ApiSettings.model_fields
    settings = api_settings(
        migrated_db,
        rate_limit_login_per_minute=defaults["rate_limit_login_per_minute"].default,
        rate_limit_login_per_username_per_minute=defaults["rate_limit_login_per_username_per_minute"].default,
    )
    async with app_clients(settings, "203.0.113.9", "198.51.100.20") as (guesser, alices_laptop):
        await add_user(migrated_db, "alice")
        for _ in range(10):
            wrong = await guesser.post("/api/auth/token", json={"username": "alice", "password": "guess1234"})
            assert wrong.status_code == 401
        spent = await guesser.post("/api/auth/token", json={"username": "alice", "password": "guess1234"})
        assert spent.status_code == 429
        # The guessing address is spent; alice, from hers, still logs in.
        assert await login(alices_laptop, "alice")


async def test_only_failed_logins_count_against_the_account(migrated_db):
    settings = api_settings(migrated_db, rate_limit_login_per_username_per_minute=2)
    async with running_app(settings) as client:
        await add_user(migrated_db, "alice")
        for _ in range(5):
            assert await login(client, "alice")


async def test_a_login_body_larger_than_a_login_is_refused_unread(api_team):
    padding = "x" * 8192
    response = await api_team.client.post(
        "/api/auth/token", json={"username": "alice", "password": "guess1234", "pad": padding}
    )
    assert response.status_code == 413


async def test_wrong_current_passwords_count_against_the_account(migrated_db):
    settings = api_settings(migrated_db, rate_limit_login_per_username_per_minute=3)
    async with running_app(settings) as client:
        alice = await add_user(migrated_db, "alice")
        headers = await login(client, "alice")
        path = f"/api/users/{alice}/password"
        for _ in range(3):
            body = {"password": "a new long password", "current_password": "guess1234"}
            assert (await client.put(path, json=body, headers=headers)).status_code == 403
        body = {"password": "a new long password", "current_password": PASSWORD}
        assert (await client.put(path, json=body, headers=headers)).status_code == 429
