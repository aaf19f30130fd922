"""The four kinds of data a user owns, their routes, and the alert events the alert engine records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from psycopg import AsyncConnection

from marketdash.api.deps import Conn, CurrentUser, UserIdPath, check_owner
from marketdash.api.models import (
    AlertEventOut,
    AlertRuleIn,
    AlertRuleOut,
    AlertRuleUpdate,
    LayoutIn,
    LayoutOut,
    LayoutUpdate,
    PositionIn,
    PositionOut,
    PositionUpdate,
    WatchlistIn,
    WatchlistOut,
    WatchlistUpdate,
    check_rule,
)
from marketdash.api.routes import AUTHENTICATED_ERRORS
from marketdash.api.routes.owned import OwnedResource, register
from marketdash.core.addresses import resolve_allowed


async def _one_default_layout(
    conn: AsyncConnection, layout_id: int | None, owner: int | None, values: dict[str, Any]
) -> None:
    """Setting a layout as default unsets the user's previous default (same transaction)."""
    if not values.get("is_default"):
        return
    if layout_id is None:
        await conn.execute(
            "UPDATE user_layouts SET is_default = false WHERE user_id = %s AND is_default", (owner,)
        )
    else:
        await conn.execute(
            """UPDATE user_layouts SET is_default = false
               WHERE is_default AND id <> %(id)s
                 AND user_id = (SELECT user_id FROM user_layouts WHERE id = %(id)s)""",
            {"id": layout_id},
        )


async def _webhook_reachable(request: Request, rule: dict[str, Any]) -> None:
    """A webhook must point at an address the alert engine may call (core/addresses.py's policy)."""
    if rule["channel"] == "webhook" and rule["target"]:
        await resolve_allowed(rule["target"], request.app.state.webhook_networks)


WATCHLISTS = OwnedResource(
    label="watchlist",
    table="watchlists",
    create_model=WatchlistIn,
    update_model=WatchlistUpdate,
    out_model=WatchlistOut,
    json_columns=frozenset({"assets"}),
    asset_fields=("assets",),
)
LAYOUTS = OwnedResource(
    label="layout",
    table="user_layouts",
    create_model=LayoutIn,
    update_model=LayoutUpdate,
    out_model=LayoutOut,
    json_columns=frozenset({"panels_config"}),
    before_write=_one_default_layout,
)
ALERT_RULES = OwnedResource(
    label="alert rule",
    table="alert_rules",
    create_model=AlertRuleIn,
    update_model=AlertRuleUpdate,
    out_model=AlertRuleOut,
    nullable=frozenset({"target", "hysteresis_pct"}),
    asset_fields=("asset",),
    check_row=check_rule,
    check_written=_webhook_reachable,
)
POSITIONS = OwnedResource(
    label="position",
    table="portfolio_positions",
    create_model=PositionIn,
    update_model=PositionUpdate,
    out_model=PositionOut,
    asset_fields=("asset",),
)

# The tables of what users own: a user's deletion empties them by cascade.
OWNED_TABLES = tuple(resource.table for resource in (WATCHLISTS, LAYOUTS, ALERT_RULES, POSITIONS))

router = APIRouter(responses=AUTHENTICATED_ERRORS)

watchlists = APIRouter(tags=["watchlists"])
register(
    watchlists,
    WATCHLISTS,
    collection="/api/watchlists",
    list_path="/api/watchlists/{id}",
    item="/api/watchlists/{id}",
    # R2.4's original endpoints, kept as aliases.
    extra_list_paths=("/watchlist/{user_id}",),
    extra_create_paths=("/watchlist",),
)
layouts = APIRouter(tags=["layouts"])
register(
    layouts,
    LAYOUTS,
    collection="/api/layouts",
    list_path="/api/users/{user_id}/layouts",
    item="/api/layouts/{id}",
)
rules = APIRouter(tags=["alert rules"])
register(
    rules,
    ALERT_RULES,
    collection="/api/alert-rules",
    list_path="/api/users/{user_id}/alert-rules",
    item="/api/alert-rules/{id}",
)
positions = APIRouter(tags=["portfolio positions"])
register(
    positions,
    POSITIONS,
    collection="/api/positions",
    list_path="/api/users/{user_id}/positions",
    item="/api/positions/{id}",
)


@rules.get("/api/users/{user_id}/alert-events", response_model=list[AlertEventOut])
async def alert_events(
    user_id: UserIdPath,
    caller: CurrentUser,
    conn: Conn,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    """The user's alert events, newest first (written by the alert engine)."""
    check_owner(caller, user_id)
    cur = await conn.execute(
        "SELECT * FROM alert_events WHERE user_id = %s ORDER BY triggered_at DESC, id DESC LIMIT %s",
        (user_id, limit),
    )
    return await cur.fetchall()


for _sub in (watchlists, layouts, rules, positions):
    router.include_router(_sub)
