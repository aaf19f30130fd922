import json
import random

import psycopg
from api_fixtures import search_symbols
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from marketdash.api.asset_search import Catalogue
from marketdash.api.routes.assets import _SEARCH, _like_escaped
from marketdash.core.catalogue import load_catalogue

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


async def test_search_finds_by_name_symbol_and_alias_best_match_first(api_team):
    assert (await search_symbols(api_team, "bitcoin"))[0] == "BTC/USDT"
    assert (await search_symbols(api_team, "XBT")) == ["BTC/USDT"]
    assert (await search_symbols(api_team, "btcusdt")) == ["BTC/USDT"]
    assert (await search_symbols(api_team, "S&P")) == ["SPX"]
    assert (await search_symbols(api_team, "gold")) == ["XAU"]
    eth = await search_symbols(api_team, "eth")
    assert eth[0] == "ETH/USDT"
    assert "ETH/USDT" in eth
    assert set(await search_symbols(api_team, "/usdt")) == {
        a.symbol for a in load_catalogue() if a.asset_class == "crypto"
    }
    assert len(await search_symbols(api_team, "a", limit=3)) == 3


async def test_search_treats_like_wildcards_literally(api_team):
    assert await search_symbols(api_team, "%") == []
    assert await search_symbols(api_team, "_") == []
    assert await search_symbols(api_team, "\\") == []


async def test_search_returns_the_catalogue_entry(api_team):
    response = await api_team.client.get(
        "/api/assets/search", params={"q": "SPX"}, headers=api_team.alice.headers
    )
    assert response.json()[0] == {
        "symbol": "SPX",
        "name": "S&P 500",
        "asset_class": "index",
        "aliases": ["S&P", "S&P 500", "SP500"],
        "sources": {"yahoo": "^GSPC", "alphavantage": "SPY"},
    }


async def test_bad_searches_get_422_and_anonymous_ones_401(api_team):
    for params in ({}, {"q": ""}, {"q": "x" * 101}, {"q": "x", "limit": 0}, {"q": "x", "limit": 101}):
        response = await api_team.client.get(
            "/api/assets/search", params=params, headers=api_team.alice.headers
        )
        assert response.status_code == 422, params
    assert (await api_team.client.get("/api/assets/search", params={"q": "btc"})).status_code == 401


async def test_assets_are_listed_by_class(api_team):
    response = await api_team.client.get(
        "/api/assets", params={"asset_class": "index"}, headers=api_team.alice.headers
    )
    assert {a["symbol"] for a in response.json()} == {
        a.symbol for a in load_catalogue() if a.asset_class == "index"
    }
    everything = await api_team.client.get("/api/assets", headers=api_team.alice.headers)
    assert len(everything.json()) == len(load_catalogue())
    bad = await api_team.client.get(
        "/api/assets", params={"asset_class": "bond"}, headers=api_team.alice.headers
    )
    assert bad.status_code == 422


def _sql_search(conn: psycopg.Connection, q: str, limit: int) -> list[str]:
    escaped = _like_escaped(q)
    params = {"q": q, "prefix": f"{escaped}%", "anywhere": f"%{escaped}%", "limit": limit}
    return [row["symbol"] for row in conn.execute(_SEARCH, params)]


def _queries(rows: list[dict]) -> set[str]:
    """Every text of the catalogue in three cases, without its '/', and each of its 1-3 letter pieces,
    plus LIKE's wildcards and a few that match nothing."""
    found = {"%", "_", "\\", "/", " ", "a%", "%a", "b_c", "zzz", "0"}
    for row in rows:
        for text in (row["symbol"], row["name"], *row["aliases"]):
            found |= {text, text.lower(), text.upper(), text.replace("/", "")}
            found |= {text[i : i + n] for n in (1, 2, 3) for i in range(len(text) - n + 1)}
    return found


def _add_look_alikes(conn: psycopg.Connection) -> None:
    """Assets spelt with a, b, '/' and a space, in both cases: names and aliases equal to other assets'
    symbols, symbols whose '/' hides a match, prefixes shared between ranks. Every rule then decides the
    order of some answer; the real catalogue's 40 assets seldom put two of them in one."""
    rng = random.Random(20261204)

    def spelt(letters: str, longest: int) -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(1, longest)))

    symbols = {spelt("aAbB/", 4) for _ in range(120)}
    for symbol in sorted(symbols):
        aliases = [spelt("aAbB", 3) for _ in range(rng.randint(0, 2))]
        conn.execute(
            "INSERT INTO assets (symbol, name, asset_class, aliases) VALUES (%s, %s, 'crypto', %s)",
            (symbol, spelt("aAbB/ ", 5), Jsonb(aliases)),
        )


def test_the_in_memory_search_answers_as_the_database_does(migrated_db):
    with psycopg.connect(migrated_db, row_factory=dict_row, autocommit=True) as conn:
        _add_look_alikes(conn)
        rows = conn.execute("SELECT * FROM assets ORDER BY symbol").fetchall()
        catalogue = Catalogue(rows, lambda row: json.dumps(row["symbol"]).encode(), folds_ascii=True)
        queries = sorted(_queries(rows))
        assert len(queries) > 1000
        for q in queries:
            for limit in (3, 100):
                assert json.loads(catalogue.search(q, limit)) == _sql_search(conn, q, limit), (q, limit)


async def test_a_search_beyond_ascii_is_answered_by_the_database(api_team):
    # Case folding beyond ASCII is the database's locale's: the Kelvin sign, the dotless i, the sharp s.
    with psycopg.connect(api_team.dsn, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM assets ORDER BY symbol").fetchall()
        for q in ("\u212a", "\u0131", "\u00df", "\u00e9th", "bitcoin\u00e9"):
            assert Catalogue(rows, lambda row: b"{}", folds_ascii=True).search(q, 20) is None
            assert await search_symbols(api_team, q) == _sql_search(conn, q, 20), q
    beyond = [{**rows[0], "name": "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale"}, *rows[1:]]
    assert Catalogue(beyond, lambda row: b"{}", folds_ascii=True).search("btc", 20) is None
    # A database that folds even ASCII its own way (a Turkic locale): all of it is left to SQL.
    assert Catalogue(rows, lambda row: b"{}", folds_ascii=False).search("btc", 20) is None
