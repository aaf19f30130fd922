import json

import pytest

from marketdash.core.catalogue import (
    ASSET_CLASSES,
    CatalogueError,
    catalogue_by_symbol,
    load_catalogue,
    parse_catalogue,
)

ROADMAP_SYMBOLS = {
    "BTC/USDT",
    "ETH/USDT",
    "AAPL",
    "SPX",
    "NDX",
    "CAC40",
    "DAX",
    "EUR/USD",
    "XAU",
    "WTI",
    "XAG",
}


def test_catalogue_covers_the_roadmap_assets_in_every_class():
    assets = load_catalogue()
    assert 30 <= len(assets) <= 60
    assert set(catalogue_by_symbol()) >= ROADMAP_SYMBOLS
    assert {asset.asset_class for asset in assets} == set(ASSET_CLASSES)


def test_every_asset_has_a_provider_and_crypto_pairs_are_on_exchanges():
    for asset in load_catalogue():
        assert asset.sources, asset.symbol
        if asset.asset_class == "crypto":
            assert asset.source_symbol("binance") or asset.source_symbol("kraken"), asset.symbol


def test_assets_are_immutable_and_hashable():
    btc = catalogue_by_symbol()["BTC/USDT"]
    assert btc.name == "Bitcoin"
    assert "XBT" in btc.aliases
    assert btc.source_symbol("coingecko") == "bitcoin"
    with pytest.raises(TypeError):
        btc.sources["binance"] = "x"  # type: ignore[index]
    assert btc in {btc}


def _doc(*entries):
    return json.dumps({"assets": list(entries)})


ENTRY = {"symbol": "X", "name": "X", "asset_class": "equity", "sources": {"yahoo": "X"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_doc(ENTRY, ENTRY), "appears twice"),
        (_doc({**ENTRY, "asset_class": "bond"}), "asset_class"),
        (_doc({**ENTRY, "sources": {}}), "no provider"),
        (_doc({"symbol": "X", "name": "X", "sources": {"yahoo": "X"}}), "lacks"),
    ],
)
def test_a_broken_catalogue_is_refused_with_the_reason(text, message):
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(text)
