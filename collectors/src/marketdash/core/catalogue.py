"""The asset catalogue: the assets the dashboard knows by name, with each provider's own symbol for them.

One file (catalogue.json, package data) so the feeders, the news tagger and the API's search agree on the
canonical symbol of an asset. The API copies it into PostgreSQL's ``assets`` table at migrate time.

A symbol the catalogue lacks can still be followed: it is collected under its own spelling, and the
catalogue only ever adds metadata (a name, aliases for the news tagger, another provider's spelling).
`uncatalogued_class` says which spellings are taken and what they are; `uncatalogued_asset` says where such
an asset is collected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Literal, get_args

AssetClass = Literal["crypto", "equity", "index", "fx", "commodity"]
ASSET_CLASSES: tuple[str, ...] = get_args(AssetClass)


class CatalogueError(ValueError):
    """catalogue.json breaks a rule that the rest of the project relies on."""


@dataclass(frozen=True)
class Asset:
    symbol: str
    name: str
    asset_class: AssetClass
    aliases: tuple[str, ...]
    # provider -> that provider's symbol; a read-only mapping so a frozen Asset is really immutable, left
    # out of the hash (mappings are unhashable) so assets still go into sets and dict keys.
    sources: Mapping[str, str] = field(hash=False)

    def source_symbol(self, provider: str) -> str | None:
        return self.sources.get(provider)


def _asset(entry: dict[str, Any]) -> Asset:
    try:
        symbol, name, asset_class = entry["symbol"], entry["name"], entry["asset_class"]
        aliases, sources = entry.get("aliases", []), entry["sources"]
    except KeyError as missing:
        raise CatalogueError(f"asset {entry!r} lacks {missing}") from None
    if asset_class not in ASSET_CLASSES:
        raise CatalogueError(f"{symbol}: asset_class {asset_class!r} is not one of {ASSET_CLASSES}")
    if not sources:
        raise CatalogueError(f"{symbol}: no provider in sources, nothing could collect it")
    return Asset(
        symbol=symbol,
        name=name,
        asset_class=asset_class,
        aliases=tuple(aliases),
        sources=MappingProxyType(dict(sources)),
    )


def parse_catalogue(text: str) -> tuple[Asset, ...]:
    assets = tuple(_asset(entry) for entry in json.loads(text)["assets"])
    seen: set[str] = set()
    for asset in assets:
        if asset.symbol in seen:
            raise CatalogueError(f"symbol {asset.symbol} appears twice")
        seen.add(asset.symbol)
    return assets


@cache
def load_catalogue() -> tuple[Asset, ...]:
    return parse_catalogue(files("marketdash.core").joinpath("catalogue.json").read_text(encoding="utf-8"))


# A crypto pair as ccxt spells it; an exchange that does not list it is told apart by the feeder.
_PAIR = re.compile(r"(?P<base>[A-Z0-9]{2,20})/(?P<quote>[A-Z0-9]{2,10})")
# Yahoo Finance's spelling: AAPL, MC.PA, BRK-B, ^HSI (an index), EURCHF=X (a currency), HG=F (a future).
_YAHOO_TICKER = re.compile(r"\^?[A-Z0-9][A-Z0-9.-]{0,14}(?:=[XF])?")
# A pair of these is a currency pair, quoted by Yahoo as BASEQUOTE=X, not a crypto market.
_FIAT_CODES = "USD EUR GBP JPY CHF CAD AUD NZD SEK NOK DKK PLN CZK HUF CNY HKD SGD KRW INR BRL MXN ZAR TRY"
_FIAT = frozenset(_FIAT_CODES.split())
UNCATALOGUED_SPELLING = (
    "a symbol the catalogue lacks is collected under its own spelling, in capitals: BASE/QUOTE for a "
    "crypto pair on the streamed exchanges (PEPE/USDT) or a pair of two major currencies (AUD/NZD), a "
    "Yahoo Finance ticker otherwise (NFLX, BN.PA, ^HSI, EURCHF=X, PL=F)"
)


def catalogue_symbol_spelt(symbol: str) -> str | None:
    """The catalogue's symbol of an asset one of its providers spells this way (Kraken's BTC/USD is
    BTC/USDT, Yahoo's ^GSPC is SPX), if it is not that symbol itself: a second asset under such a spelling
    would collect the same market twice, or be shadowed by the catalogue's on that provider."""
    return _catalogue_spellings().get(symbol)


@cache
def _catalogue_spellings() -> dict[str, str]:
    catalogue = catalogue_by_symbol()
    return {
        spelling: asset.symbol
        for asset in catalogue.values()
        for spelling in asset.sources.values()
        if spelling not in catalogue
    }


def uncatalogued_class(symbol: str) -> AssetClass | None:
    """The class of an asset known only by this symbol, or None when the spelling is not one we collect
    or is a provider's spelling of a catalogue asset (catalogue_symbol_spelt)."""
    if catalogue_symbol_spelt(symbol):
        return None
    pair = _PAIR.fullmatch(symbol)
    if pair:
        return "fx" if {pair["base"], pair["quote"]} <= _FIAT else "crypto"
    if not _YAHOO_TICKER.fullmatch(symbol):
        return None
    if symbol.startswith("^"):
        return "index"
    if symbol.endswith("=X"):
        return "fx"
    if symbol.endswith("=F"):
        return "commodity"
    return "equity"


def uncatalogued_asset(symbol: str, exchanges: Iterable[str]) -> Asset | None:
    """The asset of a symbol the catalogue lacks: a crypto pair is looked for on each of these exchanges
    under its own spelling, a currency pair and anything else on Yahoo Finance."""
    asset_class = uncatalogued_class(symbol)
    if asset_class is None:
        return None
    if asset_class == "crypto":
        sources = dict.fromkeys(exchanges, symbol)
    else:
        sources = {"yahoo": symbol.replace("/", "") + "=X" if "/" in symbol else symbol}
    return Asset(symbol, symbol, asset_class, (), MappingProxyType(sources))


@cache
def catalogue_by_symbol() -> MappingProxyType[str, Asset]:
    return MappingProxyType({asset.symbol: asset for asset in load_catalogue()})
