import json

import pytest

from marketdash.core.catalogue import (
    ASSET_CLASSES,
    CatalogueError,
    catalogue_by_symbol,
    catalogue_symbol_spelt,
    load_catalogue,
    parse_catalogue,
    uncatalogued_class,
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


@pytest.mark.parametrize(
    ("symbol", "asset_class"),
    [
        ("DOGE/USDT", "crypto"),
        ("1000PEPE/USDT", "crypto"),
        ("AUD/NZD", "fx"),  # two currencies: a currency pair, not a crypto market
        ("EURCHF=X", "fx"),
        ("TSLA", "equity"),
        ("MC.PA", "equity"),
        ("BRK-B", "equity"),
        ("^HSI", "index"),
        ("PL=F", "commodity"),
        ("doge/usdt", None),  # capitals only: a symbol is spelt one way across the project
        ("DOGE/", None),
        ("BTC USDT", None),
        ("", None),
        ("TSLA; DROP", None),
        ("A" * 16, None),
        ("^", None),
        # A provider's spelling of a catalogue asset: the same market twice, or shadowed on that provider.
        ("BTC/USD", None),  # Kraken's BTC/USDT
        ("^GSPC", None),  # Yahoo's SPX
        ("HG=F", None),  # Yahoo's HG
        ("SPY", None),  # Alpha Vantage's SPX
    ],
)
def test_a_symbol_the_catalogue_lacks_is_taken_in_the_spellings_we_collect(symbol, asset_class):
    assert uncatalogued_class(symbol) == asset_class


def test_a_providers_spelling_names_the_catalogue_asset():
    assert catalogue_symbol_spelt("BTC/USD") == "BTC/USDT"
    assert catalogue_symbol_spelt("^GSPC") == "SPX"
    # A catalogue symbol that is also a provider's own spelling of it (MC.PA on Yahoo) is no other asset.
    assert catalogue_symbol_spelt("MC.PA") is None
    assert catalogue_symbol_spelt("PEPE/USDT") is None
