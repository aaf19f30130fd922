"""The assets table's rule: every symbol a user's data names is a row of it.

A symbol the catalogue lacks, spelt as the market feeder collects it (core/catalogue.py), becomes a row
the first time something names it; any other spelling is refused with the rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from marketdash.core.catalogue import UNCATALOGUED_SPELLING, catalogue_symbol_spelt, uncatalogued_class


class UnknownAssetError(ValueError):
    """Symbols that name no asset and are not spelt as one the feeder could collect."""


async def known_or_added(conn: AsyncConnection, symbols: Iterable[str]) -> bool:
    """Checks that each symbol names an asset. One the catalogue lacks, spelt as the feeder can collect it,
    is added to the assets table (in the caller's transaction, so a refused write adds nothing), with no
    sources: collected under its own spelling. Returns whether one was added."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return False
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT EXISTS (SELECT 1 FROM assets WHERE symbol = s)",
        (wanted,),
    )
    unknown = [symbol for (symbol,) in await cur.fetchall()]
    classes = [uncatalogued_class(symbol) for symbol in unknown]
    refused = [symbol for symbol, asset_class in zip(unknown, classes, strict=True) if asset_class is None]
    if refused:
        spelt = [
            f"{symbol} is {catalogue_symbol_spelt(symbol)}"
            for symbol in refused
            if catalogue_symbol_spelt(symbol)
        ]
        raise UnknownAssetError(
            f"unknown asset symbol(s): {', '.join(refused)}; "
            + (f"the catalogue's spelling: {', '.join(spelt)}; " if spelt else "")
            + f"{UNCATALOGUED_SPELLING}; find the catalogue's symbols with GET /api/assets/search?q="
        )
    if unknown:
        await conn.execute(
            """INSERT INTO assets (symbol, name, asset_class)
               SELECT symbol, symbol, class FROM unnest(%s::text[], %s::text[]) AS added(symbol, class)
               ON CONFLICT (symbol) DO NOTHING""",
            (unknown, classes),
        )
    return bool(unknown)
