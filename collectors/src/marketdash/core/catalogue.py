"""The asset catalogue: every asset the dashboard knows, with each provider's own symbol for it.

One file (catalogue.json, package data) so the feeders, the news tagger and the API's search agree on the
canonical symbol of an asset. The API copies it into PostgreSQL's ``assets`` table at migrate time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


@cache
def catalogue_by_symbol() -> MappingProxyType[str, Asset]:
    return MappingProxyType({asset.symbol: asset for asset in load_catalogue()})
