from marketdash.core.catalogue import load_catalogue

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


async def _search(api_team, q, **params):
    response = await api_team.client.get(
        "/api/assets/search", params={"q": q, **params}, headers=api_team.alice.headers
    )
    assert response.status_code == 200, response.text
    return [asset["symbol"] for asset in response.json()]


async def test_search_finds_by_name_symbol_and_alias_best_match_first(api_team):
    assert (await _search(api_team, "bitcoin"))[0] == "BTC/USDT"
    assert (await _search(api_team, "XBT")) == ["BTC/USDT"]
    assert (await _search(api_team, "btcusdt")) == ["BTC/USDT"]
    assert (await _search(api_team, "S&P")) == ["SPX"]
    assert (await _search(api_team, "gold")) == ["XAU"]
    eth = await _search(api_team, "eth")
    assert eth[0] == "ETH/USDT"
    assert "ETH/USDT" in eth
    assert set(await _search(api_team, "/usdt")) == {
        a.symbol for a in load_catalogue() if a.asset_class == "crypto"
    }
    assert len(await _search(api_team, "a", limit=3)) == 3


async def test_search_treats_like_wildcards_literally(api_team):
    assert await _search(api_team, "%") == []
    assert await _search(api_team, "_") == []
    assert await _search(api_team, "\\") == []


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
