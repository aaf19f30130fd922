"""The asset catalogue: listing and search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from marketdash.api.deps import Conn, CurrentUser
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


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/api/assets", response_model=list[AssetOut])
async def list_assets(
    _caller: CurrentUser,
    conn: Conn,
    asset_class: Annotated[Literal["crypto", "equity", "index", "fx", "commodity"] | None, Query()] = None,
) -> list[dict]:
    cur = await conn.execute(
        "SELECT symbol, name, asset_class, aliases, sources FROM assets"
        " WHERE %(c)s::text IS NULL OR asset_class = %(c)s ORDER BY symbol",
        {"c": asset_class},
    )
    return await cur.fetchall()


@router.get("/api/assets/search", response_model=list[AssetOut])
async def search_assets(
    _caller: CurrentUser,
    conn: Conn,
    q: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]*$", description="e.g. bitcoin")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict]:
    """Assets whose symbol, name or alias matches q (case-insensitive), best matches first."""
    escaped = _like_escaped(q)
    cur = await conn.execute(
        _SEARCH, {"q": q, "prefix": f"{escaped}%", "anywhere": f"%{escaped}%", "limit": limit}
    )
    return await cur.fetchall()
