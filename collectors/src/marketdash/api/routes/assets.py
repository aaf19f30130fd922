"""The assets: listing and search, served from memory (the read cache drops it when `migrate` runs or a write
adds a symbol the catalogue lacks)."""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from psycopg_pool import AsyncConnectionPool
from pydantic import TypeAdapter

from marketdash.api.asset_search import Catalogue
from marketdash.api.deps import CurrentUser
from marketdash.api.models import AssetOut
from marketdash.api.routes import AUTHENTICATED_ERRORS

router = APIRouter(tags=["assets"], responses=AUTHENTICATED_ERRORS)

# Exact symbol or alias first, then prefixes, then anywhere in the symbol, name or an alias.
# The LIKE pattern is escaped by the caller so '%' and '_' in q are searched literally.
_SEARCH = """
SELECT symbol, name, asset_class, aliases, sources FROM (
    SELECT a.*,
           CASE
             WHEN upper(symbol) = upper(%(q)s) OR upper(replace(symbol, '/', '')) = upper(%(q)s)
                  OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(aliases) al
                             WHERE upper(al) = upper(%(q)s))
               THEN 0
             WHEN symbol ILIKE %(prefix)s OR name ILIKE %(prefix)s
                  OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(aliases) al WHERE al ILIKE %(prefix)s)
               THEN 1
             WHEN symbol ILIKE %(anywhere)s OR replace(symbol, '/', '') ILIKE %(anywhere)s
                  OR name ILIKE %(anywhere)s
                  OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(aliases) al WHERE al ILIKE %(anywhere)s)
               THEN 2
           END AS rank
    FROM assets a
) ranked
WHERE rank IS NOT NULL
ORDER BY rank, symbol
LIMIT %(limit)s
"""


_ASSET = TypeAdapter(AssetOut)
_ASSETS = TypeAdapter(list[AssetOut])


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json(rows: Any) -> Response:
    return Response(_ASSETS.dump_json(_ASSETS.validate_python(rows)), media_type="application/json")


# Whether the database folds ASCII letters as Python does (a Turkic locale lowers 'I' to a dotless i).
_FOLDS_ASCII = "SELECT lower(%(upper)s) = %(lower)s AND upper(%(lower)s) = %(upper)s AS folds"


async def _load_catalogue(pool: AsyncConnectionPool) -> Catalogue:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT symbol, name, asset_class, aliases, sources FROM assets ORDER BY symbol"
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            _FOLDS_ASCII, {"upper": string.ascii_uppercase, "lower": string.ascii_lowercase}
        )
        folds = (await cur.fetchone())["folds"]
    return Catalogue(rows, lambda row: _ASSET.dump_json(_ASSET.validate_python(row)), folds_ascii=folds)


async def _catalogue(request: Request) -> Catalogue:
    state = request.app.state
    return await state.reads.get("assets", "catalogue", lambda: _load_catalogue(state.pool))


@router.get("/api/assets", response_model=list[AssetOut])
async def list_assets(
    _caller: CurrentUser,
    request: Request,
    asset_class: Annotated[Literal["crypto", "equity", "index", "fx", "commodity"] | None, Query()] = None,
) -> Response:
    catalogue = await _catalogue(request)
    return Response(catalogue.listing(asset_class), media_type="application/json")


@router.get("/api/assets/search", response_model=list[AssetOut])
async def search_assets(
    _caller: CurrentUser,
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]*$", description="e.g. bitcoin")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Assets whose symbol, name or alias matches q (case-insensitive), best matches first."""
    found = (await _catalogue(request)).search(q, limit)
    if found is not None:
        return Response(found, media_type="application/json")
    escaped = _like_escaped(q)
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            _SEARCH, {"q": q, "prefix": f"{escaped}%", "anywhere": f"%{escaped}%", "limit": limit}
        )
        return _json(await cur.fetchall())
