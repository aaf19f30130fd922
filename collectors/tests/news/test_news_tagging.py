"""Asset tagging with the real catalogue: mentions found, common words left alone."""

from __future__ import annotations

import pytest

from marketdash.core.catalogue import load_catalogue
from marketdash.news.tagging import AssetTagger

TAGGER = AssetTagger(load_catalogue())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bitcoin plunges 10% as exchange hack drains $200M", ("BTC/USDT",)),
        ("BTC and ETH rally while SOL lags", ("BTC/USDT", "ETH/USDT", "SOL/USDT")),
        ("Chainlink's LINK jumps 8%", ("LINK/USDT",)),
        ("Traders pile into $sol and $LINK", ("SOL/USDT", "LINK/USDT")),
        ("Apple beats estimates, raises guidance", ("AAPL",)),
        ("S&P 500 and Nasdaq 100 close at records", ("SPX", "NDX")),
        ("EUR/USD slides as the euro weakens", ("EUR/USD",)),
        ("gold prices climb while crude oil slips", ("XAU", "WTI")),
        ("Bitcoins are scarce", ("BTC/USDT",)),
        ("BITCOIN SOARS TO RECORD", ("BTC/USDT",)),
        ("TotalEnergies profit falls", ("TTE.PA",)),
        ("Dow drops 700 points", ("DJI",)),
    ],
)
def test_mentions_are_found(text, expected):
    assert TAGGER.tag(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Link your wallet to earn rewards",  # LINK as a verb
        "El sol brilla sobre los mercados de Madrid",  # SOL in Spanish
        "Hace sol y calor en Sevilla",
        "ONE MORE THING: WE CONNECT THE DOT AND LINK IT",  # shouted common words
        "One trader's view on the market",  # ONE is no asset, but make sure nothing else fires
        "Total revenue rose 5% in the quarter",  # a generic word that is also an alias
        "apple pie prices surge at the county fair",
        "the dot-com bubble and its lessons",
        "Pressure builds to ETHically source cobalt",
        "ADAPT or die, says fund manager",
        "sterling effort by the team",
    ],
)
def test_common_words_tag_nothing(text):
    assert TAGGER.tag(text) == ()


def test_codes_attached_by_the_source_are_used_when_the_catalogue_knows_them():
    assert TAGGER.tag("Market update", tickers=("ETH", "PEPE")) == ("ETH/USDT",)
