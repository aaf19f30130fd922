"""The read cache: served from memory until the table announces a change, never kept while deaf.

The rules alone first (a clock and loads passed in), then against the real PostgreSQL: changes made
outside the API (psql, the CLI, a cascade) reach the API's answers through NOTIFY, and a listener that
goes away leaves every read to the database until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

import psycopg
from api_fixtures import add_user, api_settings, app_and_client, login

from marketdash.api.app import LISTENER_NAME
from marketdash.api.read_cache import ReadCache
from marketdash.core.backoff import Backoff
from marketdash.core.db import open_listener
from marketdash_testing.servers import eventually

pytest_plugins = ["api_fixtures"]

# Long enough never to expire during a test: what refreshes an entry here is a notification.
FOREVER = 3600.0


class Loads:
    """A load that counts its calls and returns what the test sets."""

    def __init__(self, value: object = "v1") -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        return self.value


def listening_cache(clock: Callable[[], float] = time.monotonic) -> ReadCache:
    cache = ReadCache(["watchlists", "users"], max_age_s=10.0, clock=clock)
    cache.set_listening(True)  # as follow() does once its LISTENs are in place
    return cache


async def test_a_kept_entry_is_served_without_loading_again():
    cache, load = listening_cache(), Loads()
    assert await cache.get("watchlists", 1, load) == "v1"
    load.value = "v2"
    assert await cache.get("watchlists", 1, load) == "v1"
    assert load.calls == 1


async def test_a_change_drops_its_table_only():
    cache, lists, users = listening_cache(), Loads(), Loads("alice")
    await cache.get("watchlists", 1, lists)
    await cache.get("users", 1, users)
    lists.value = "v2"
    cache.changed("watchlists")
    assert await cache.get("watchlists", 1, lists) == "v2"
    assert await cache.get("users", 1, users) == "alice"
    assert (lists.calls, users.calls) == (2, 1)


async def test_a_load_overlapped_by_a_change_is_served_but_not_kept():
    cache = listening_cache()
    calls = 0

    async def load_during_which_the_table_changes() -> str:
        nonlocal calls
        calls += 1
        cache.changed("watchlists")  # committed while the read was under way
        return "read before the change"

    assert await cache.get("watchlists", 1, load_during_which_the_table_changes) == "read before the change"
    await cache.get("watchlists", 1, load_during_which_the_table_changes)
    assert calls == 2


async def test_nothing_is_kept_while_not_listening():
    cache, load = listening_cache(), Loads()
    cache.set_listening(False)
    await cache.get("watchlists", 1, load)
    await cache.get("watchlists", 1, load)
    assert load.calls == 2


async def test_an_entry_older_than_max_age_is_read_again():
    now = [100.0]
    cache, load = listening_cache(lambda: now[0]), Loads()
    await cache.get("watchlists", 1, load)
    now[0] += 9.9
    await cache.get("watchlists", 1, load)
    assert load.calls == 1
    now[0] += 0.2
    await cache.get("watchlists", 1, load)
    assert load.calls == 2


async def test_nothing_found_is_never_kept():
    cache, load = listening_cache(), Loads(None)
    assert await cache.get("users", 7, load) is None
    assert await cache.get("users", 7, load) is None
    assert load.calls == 2


async def test_a_load_begun_before_listening_resumed_is_not_kept():
    # What it read may predate a change nobody was there to hear.
    cache = listening_cache()
    cache.set_listening(False)
    calls = 0

    async def load_during_which_listening_resumes() -> str:
        nonlocal calls
        calls += 1
        cache.set_listening(True)
        return "read while deaf"

    await cache.get("watchlists", 1, load_during_which_listening_resumes)
    await cache.get("watchlists", 1, load_during_which_listening_resumes)
    assert calls == 2


def _sql(dsn: str, statement: str, *params: object) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def _listener_pids(dsn: str) -> list[int]:
    """The API's listening backends on this test's database."""
    rows = _sql(
        dsn,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
        LISTENER_NAME,
    )
    return [pid for (pid,) in rows]


async def test_the_listener_follows_real_notifications_and_is_bypassed_while_down(migrated_db):
    refused = asyncio.Event()

    async def connect() -> psycopg.AsyncConnection:
        if refused.is_set():
            raise OSError("refused by the test")
        return await open_listener(migrated_db, LISTENER_NAME)

    cache, load = ReadCache(["watchlists"], max_age_s=FOREVER), Loads()
    following = asyncio.create_task(cache.follow(connect, backoff=Backoff(0.05, 30.0)))
    try:
        assert await eventually(lambda: cache.listening, within_s=10)
        await cache.get("watchlists", 1, load)
        await cache.get("watchlists", 1, load)
        assert load.calls == 1

        # A commit by another session: the notification drops the entry.
        owner = await add_user(migrated_db, "ann")
        _sql(migrated_db, "INSERT INTO watchlists (user_id, name) VALUES (%s, 'main')", owner)
        calls = load.calls

        async def reloaded() -> bool:
            await cache.get("watchlists", 1, load)
            return load.calls > calls

        assert await eventually(reloaded, within_s=10)

        # The listener's backend goes away and cannot come back: every read goes to the database.
        refused.set()
        (pid,) = _listener_pids(migrated_db)
        _sql(migrated_db, "SELECT pg_terminate_backend(%s)", pid)
        assert await eventually(lambda: not cache.listening, within_s=10)
        calls = load.calls
        await cache.get("watchlists", 1, load)
        await cache.get("watchlists", 1, load)
        assert load.calls == calls + 2

        # Back: listening again, and keeping again.
        refused.clear()
        assert await eventually(lambda: cache.listening, within_s=10)
        calls = load.calls
        await cache.get("watchlists", 1, load)
        await cache.get("watchlists", 1, load)
        assert load.calls == calls + 1
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following


async def test_changes_made_outside_the_api_reach_its_answers(migrated_db):
    # psql stands for anything that writes without the API: its CLI, an operator.
    admin_id = await add_user(migrated_db, "root", "admin")
    alice_id = await add_user(migrated_db, "alice")
    _sql(migrated_db, "INSERT INTO watchlists (user_id, name) VALUES (%s, 'before')", alice_id)
    settings = api_settings(migrated_db, read_cache_max_age_seconds=FOREVER)
    async with app_and_client(settings) as (app, client):
        assert await eventually(lambda: app.state.reads.listening, within_s=10)
        admin = await login(client, "root")
        alice = await login(client, "alice")
        path = f"/api/watchlists/{alice_id}"

        async def names() -> list[str]:
            response = await client.get(path, headers=alice)
            assert response.status_code == 200, response.text
            return [watchlist["name"] for watchlist in response.json()]

        assert await names() == ["before"]
        _sql(migrated_db, "UPDATE watchlists SET name = 'after' WHERE user_id = %s", alice_id)

        async def renamed() -> bool:
            return await names() == ["after"]

        assert await eventually(renamed, within_s=10)

        # A demotion, then a deletion: the caller's role and existence are the database's.
        async def users_list_status() -> int:
            return (await client.get("/api/users", headers=admin)).status_code

        assert await users_list_status() == 200
        _sql(migrated_db, "UPDATE users SET role = 'member' WHERE id = %s", admin_id)

        async def refused_as_member() -> bool:
            return await users_list_status() == 403

        assert await eventually(refused_as_member, within_s=10)
        _sql(migrated_db, "DELETE FROM users WHERE id = %s", alice_id)

        async def refused_as_gone() -> bool:
            response = await client.get(path, headers=alice)
            return response.status_code == 401 and "no longer exists" in response.json()["detail"]

        assert await eventually(refused_as_gone, within_s=10)


@contextlib.contextmanager
def notifications_held(dsn: str) -> Iterator[None]:
    """The API's listening backend stopped (SIGSTOP): it sends no notification until the block ends."""
    (pid,) = _listener_pids(dsn)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_the_apis_own_writes_are_read_back_at_once(migrated_db):
    # Without the notification (held back here): a write drops this process's entries before it answers.
    ids = {
        name: await add_user(migrated_db, name, role)
        for name, role in (("root", "admin"), ("alice", "member"), ("bob", "member"))
    }
    async with app_and_client(api_settings(migrated_db, read_cache_max_age_seconds=FOREVER)) as (app, client):
        assert await eventually(lambda: app.state.reads.listening, within_s=10)
        admin, alice, bob = [await login(client, name) for name in ("root", "alice", "bob")]
        mine = f"/api/watchlists/{ids['alice']}"
        bobs = f"/api/watchlists/{ids['bob']}"
        # Each read once, so that each is cached when the writes come.
        assert (await client.get(mine, headers=alice)).json() == []
        assert (await client.get(bobs, headers=bob)).json() == []
        assert (await client.get(bobs, headers=admin)).json() == []
        search = {"q": "PEPE"}
        assert (await client.get("/api/assets/search", params=search, headers=alice)).json() == []
        with notifications_held(migrated_db):
            # A symbol the catalogue lacks, added by the write that names it: searchable at once.
            added = await client.post(
                "/api/watchlists", json={"name": "m", "assets": ["PEPE/USDT"]}, headers=alice
            )
            assert added.status_code == 201, added.text
            found = (await client.get("/api/assets/search", params=search, headers=alice)).json()
            assert [asset["symbol"] for asset in found] == ["PEPE/USDT"]
            assert (
                await client.delete(f"/api/watchlists/{added.json()['id']}", headers=alice)
            ).status_code == 204
            created = await client.post("/api/watchlists", json={"name": "main"}, headers=alice)
            assert created.status_code == 201, created.text
            assert [w["name"] for w in (await client.get(mine, headers=alice)).json()] == ["main"]
            item = f"/api/watchlists/{created.json()['id']}"
            assert (await client.put(item, json={"name": "renamed"}, headers=alice)).status_code == 200
            assert [w["name"] for w in (await client.get(mine, headers=alice)).json()] == ["renamed"]
            assert (await client.delete(item, headers=alice)).status_code == 204
            assert (await client.get(mine, headers=alice)).json() == []
            # An admin deletes bob: his token and his lists are gone at once.
            assert (await client.delete(f"/api/users/{ids['bob']}", headers=admin)).status_code == 204
            assert (await client.get(bobs, headers=bob)).status_code == 401
            assert (await client.get(bobs, headers=admin)).status_code == 404


async def test_repeated_reads_take_no_connection(migrated_db):
    # What a dashboard polls: the caller, their lists and the catalogue, all from memory once read.
    alice_id = await add_user(migrated_db, "alice")
    async with app_and_client(api_settings(migrated_db)) as (app, client):
        alice = await login(client, "alice")
        assert await eventually(lambda: app.state.reads.listening, within_s=10)
        reads = (
            f"/api/watchlists/{alice_id}",
            f"/api/users/{alice_id}/layouts",
            "/api/assets/search?q=btc",
        )
        for path in reads:
            assert (await client.get(path, headers=alice)).status_code == 200, path

        def connections_taken() -> int:
            return app.state.pool.get_stats().get("requests_num", 0)

        before = connections_taken()
        for path in reads:
            assert (await client.get(path, headers=alice)).status_code == 200, path
        assert connections_taken() == before
