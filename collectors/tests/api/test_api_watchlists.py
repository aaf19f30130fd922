import asyncio

import psycopg
from api_fixtures import search_symbols

from marketdash.api.migrations import migrate

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


async def test_watchlist_lifecycle_through_the_roadmap_endpoints(api_team):
    client, alice = api_team.client, api_team.alice
    created = await client.post(
        "/api/watchlists",
        json={"name": "Crypto", "assets": ["BTC/USDT", "ETH/USDT", "BTC/USDT"]},
        headers=alice.headers,
    )
    assert created.status_code == 201
    watchlist = created.json()
    assert watchlist["assets"] == ["BTC/USDT", "ETH/USDT"]  # order kept, repeat dropped
    assert watchlist["active"] is True

    updated = await client.put(
        f"/api/watchlists/{watchlist['id']}",
        json={"assets": ["SPX", "XAU"], "active": False},
        headers=alice.headers,
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "Crypto"
    assert updated.json()["assets"] == ["SPX", "XAU"]
    assert updated.json()["updated_at"] > watchlist["updated_at"]

    # R2.4's original paths answer the same as R4.2's.
    legacy = await client.post(
        "/watchlist", json={"name": "Legacy", "assets": ["AAPL"]}, headers=alice.headers
    )
    assert legacy.status_code == 201
    listed = await client.get(f"/api/watchlists/{alice.id}", headers=alice.headers)
    assert listed.json() == (await client.get(f"/watchlist/{alice.id}", headers=alice.headers)).json()
    assert [w["name"] for w in listed.json()] == ["Crypto", "Legacy"]

    assert (
        await client.delete(f"/api/watchlists/{watchlist['id']}", headers=alice.headers)
    ).status_code == 204
    assert [
        w["name"] for w in (await client.get(f"/api/watchlists/{alice.id}", headers=alice.headers)).json()
    ] == ["Legacy"]


async def test_a_symbol_the_catalogue_lacks_is_added_under_its_own_spelling(api_team):
    client, headers = api_team.client, api_team.alice.headers
    assert await search_symbols(api_team, "PEPE") == []
    created = await client.post(
        "/api/watchlists", json={"name": "more", "assets": ["PEPE/USDT", "NFLX", "AUD/NZD"]}, headers=headers
    )
    assert created.status_code == 201
    # Searchable at once (the write drops this worker's cached catalogue), and a second list may name it.
    assert await search_symbols(api_team, "PEPE") == ["PEPE/USDT"]
    again = await client.post("/api/watchlists", json={"name": "m", "assets": ["PEPE/USDT"]}, headers=headers)
    assert again.status_code == 201
    migrate(api_team.dsn)  # a deploy's migrate keeps what users added
    with psycopg.connect(api_team.dsn) as conn:
        rows = conn.execute(
            "SELECT symbol, name, asset_class, sources FROM assets WHERE symbol = ANY(%s) ORDER BY symbol",
            (["PEPE/USDT", "NFLX", "AUD/NZD"],),
        ).fetchall()
    assert rows == [
        ("AUD/NZD", "AUD/NZD", "fx", {}),
        ("NFLX", "NFLX", "equity", {}),
        ("PEPE/USDT", "PEPE/USDT", "crypto", {}),
    ]


async def test_the_feeder_query_follows_active_watchlists(api_team):
    client = api_team.client
    await client.post(
        "/api/watchlists", json={"name": "a", "assets": ["BTC/USDT", "AAPL"]}, headers=api_team.alice.headers
    )
    await client.post(
        "/api/watchlists", json={"name": "b", "assets": ["AAPL", "XAU"]}, headers=api_team.bob.headers
    )
    await client.post(
        "/api/watchlists",
        json={"name": "c", "assets": ["WTI"], "active": False},
        headers=api_team.bob.headers,
    )
    with psycopg.connect(api_team.dsn) as conn:
        rows = conn.execute("SELECT DISTINCT jsonb_array_elements_text(assets) FROM watchlists WHERE active")
        assert {row[0] for row in rows} == {"BTC/USDT", "AAPL", "XAU"}


async def test_a_change_through_the_api_notifies_the_feeder(api_team):
    listener = await psycopg.AsyncConnection.connect(api_team.dsn, autocommit=True)
    async with listener:
        await listener.execute("LISTEN watchlists_changed")
        created = await api_team.client.post(
            "/api/watchlists", json={"name": "n", "assets": ["ETH/USDT"]}, headers=api_team.alice.headers
        )
        await api_team.client.put(
            f"/api/watchlists/{created.json()['id']}", json={"active": False}, headers=api_team.alice.headers
        )

        async def two_notifications():
            return [n.payload async for n in listener.notifies(stop_after=2)]

        assert await asyncio.wait_for(two_notifications(), timeout=5) == ["INSERT", "UPDATE"]


BAD_WATCHLISTS = [
    (
        # PEPE/USDT alone would be added to the assets: with the others, nothing is.
        {"name": "x", "assets": ["BTC/USDT", "PEPE/USDT", "nope", "ALSO'; DROP TABLE assets;--"]},
        422,
        "unknown asset symbol(s): nope, ALSO",
    ),
    ({"name": "", "assets": []}, 422, "at least 1 character"),
    ({"name": " padded ", "assets": []}, 422, "String should match pattern"),
    ({"name": "x" * 101, "assets": []}, 422, "at most 100 characters"),
    ({"name": "nul\x00", "assets": []}, 422, "String should match pattern"),
    ({"name": "x", "assets": "BTC/USDT"}, 422, "valid list"),
    ({"name": "x", "assets": ["BTC/USDT"] * 201}, 422, "at most 200 items"),
    ({"name": "x", "colour": "red"}, 422, "Extra inputs are not permitted"),
    ({"assets": []}, 422, "Field required"),
    ({"name": "x", "user_id": 2**31}, 422, "less than or equal to 2147483647"),
    ({"name": "x", "user_id": 999_999}, 422, "user_id names no user"),
]


async def test_bad_watchlists_are_refused_with_a_message_and_nothing_is_stored(api_team):
    for body, status, message in BAD_WATCHLISTS:
        # As admin, so that user_id reaches the database (a member naming another user gets 403 first).
        response = await api_team.client.post("/api/watchlists", json=body, headers=api_team.admin.headers)
        assert response.status_code == status, body
        assert message in str(response.json()["detail"]), body
        # The API's own words: nothing of the schema (tables, constraints, stored values).
        assert "table" not in str(response.json()["detail"]), body
    with psycopg.connect(api_team.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM watchlists").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM assets WHERE sources = '{}'").fetchone() == (0,)


async def test_bad_updates_are_refused_and_leave_the_watchlist_as_it_was(api_team):
    client, headers = api_team.client, api_team.alice.headers
    watchlist = (
        await client.post("/api/watchlists", json={"name": "w", "assets": ["XAU"]}, headers=headers)
    ).json()
    path = f"/api/watchlists/{watchlist['id']}"
    for body, message in (
        ({}, "nothing to update"),
        ({"name": None}, "name may not be null"),
        ({"assets": ["XAU", "GOLD?"]}, "unknown asset symbol(s): GOLD?; a symbol the catalogue lacks"),
        ({"assets": ["BTC/USD"]}, "the catalogue's spelling: BTC/USD is BTC/USDT"),
        ({"active": "sometimes"}, "valid boolean"),
        ({"user_id": api_team.bob.id}, "Extra inputs are not permitted"),
    ):
        response = await client.put(path, json=body, headers=headers)
        assert response.status_code == 422, body
        assert message in str(response.json()["detail"]), body
    assert (await client.get(f"/api/watchlists/{api_team.alice.id}", headers=headers)).json() == [watchlist]


async def test_sql_looking_input_is_stored_as_text(api_team):
    name = "x'); DROP TABLE watchlists; --"
    created = await api_team.client.post(
        "/api/watchlists", json={"name": name}, headers=api_team.alice.headers
    )
    assert created.status_code == 201
    layout_name = "Robert'); DELETE FROM users WHERE ('1'='1"
    layout = await api_team.client.post(
        "/api/layouts",
        json={"layout_name": layout_name, "panels_config": {"q": "1 OR 1=1; --"}},
        headers=api_team.alice.headers,
    )
    assert layout.status_code == 201
    with psycopg.connect(api_team.dsn) as conn:
        assert conn.execute("SELECT name FROM watchlists").fetchone() == (name,)
        assert conn.execute("SELECT layout_name, panels_config FROM user_layouts").fetchone() == (
            layout_name,
            {"q": "1 OR 1=1; --"},
        )
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
    found = await api_team.client.get(
        "/api/assets/search", params={"q": "' OR '1'='1"}, headers=api_team.alice.headers
    )
    assert found.status_code == 200
    assert found.json() == []


BAD_PATHS = [
    ("GET", "/api/watchlists/0", 422),
    ("GET", "/api/watchlists/abc", 422),
    ("GET", "/api/watchlists/99999999999", 422),
    ("PUT", "/api/watchlists/2147483647", 404),
    ("DELETE", "/api/watchlists/2147483647", 404),
    ("GET", "/api/watchlists/2147483647", 404),  # admin: no such user
    ("PATCH", "/api/watchlists/1", 405),
    ("GET", "/api/nothing-here", 404),
]


async def test_bad_paths_get_4xx(api_team):
    for method, path, status in BAD_PATHS:
        response = await api_team.client.request(
            method, path, json={"name": "x"}, headers=api_team.admin.headers
        )
        assert response.status_code == status, (method, path)
        assert response.json()["detail"], (method, path)
