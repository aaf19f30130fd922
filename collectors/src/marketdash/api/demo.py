"""A demo team (``seed-demo``): users with watchlists, layouts, alert rules, positions and a few events.

Idempotent per user: a user that already exists is left as it is, with whatever data it has.
"""

from __future__ import annotations

import secrets
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from marketdash.api import users

TEAM: dict[str, dict[str, Any]] = {
    "demo-admin": {
        "role": "admin",
        "watchlists": [("Macro", ["SPX", "NDX", "DXY", "XAU", "WTI", "EUR/USD"])],
        "rules": [("SPX", "pct_change", 2, "email", "ops@example.org")],
        "positions": [],
    },
    "alice": {
        "role": "member",
        "watchlists": [
            ("Crypto majors", ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT"]),
            ("Altcoins", ["ADA/USDT", "AVAX/USDT", "DOT/USDT", "LINK/USDT"]),
        ],
        "rules": [
            ("BTC/USDT", "above", 70000, "telegram", None),
            ("ETH/USDT", "below", 3000, "telegram", None),
            ("BTC/USDT", "volume_spike", 3, "webhook", "https://hooks.example.org/alice"),
        ],
        "positions": [("BTC/USDT", 0.5, 61000), ("ETH/USDT", 4, 3100), ("SOL/USDT", 50, 140)],
    },
    "bob": {
        "role": "member",
        "watchlists": [("US tech", ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"])],
        "rules": [
            ("NVDA", "pct_change", 5, "email", "bob@example.org"),
            ("AAPL", "below", 180, "email", None),
        ],
        "positions": [("AAPL", 40, 182.5), ("NVDA", 25, 870), ("MSFT", 15, 402)],
    },
    "carol": {
        "role": "member",
        "watchlists": [
            ("Europe", ["CAC40", "DAX", "FTSE", "MC.PA", "TTE.PA", "ASML", "SAP"]),
            ("Commodities", ["XAU", "XAG", "WTI", "BRENT", "NG", "HG"]),
        ],
        "rules": [("XAU", "above", 2500, "telegram", None), ("WTI", "below", 70, "webhook", None)],
        "positions": [("XAU", 10, 2300), ("MC.PA", 12, 690)],
    },
}


async def _seed_user(conn: AsyncConnection, user_id: int, plan: dict[str, Any]) -> None:
    for index, (name, assets) in enumerate(plan["watchlists"]):
        await conn.execute(
            "INSERT INTO watchlists (user_id, name, assets) VALUES (%s, %s, %s)",
            (user_id, name, Jsonb(assets)),
        )
        await conn.execute(
            """INSERT INTO user_layouts (user_id, layout_name, panels_config, is_default)
               VALUES (%s, %s, %s, %s)""",
            (user_id, name, Jsonb({"watchlist": name, "timeframe": "1h", "theme": "gloom"}), index == 0),
        )
    for asset, condition, threshold, channel, target in plan["rules"]:
        cur = await conn.execute(
            """INSERT INTO alert_rules (user_id, asset, condition, threshold, channel, target)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
            (user_id, asset, condition, threshold, channel, target),
        )
        rule = await cur.fetchone()
        assert rule is not None
        await conn.execute(
            """INSERT INTO alert_events (rule_id, user_id, asset, condition, threshold, value, channel,
                                         status, message, triggered_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 'sent', %s, now() - interval '2 hours')""",
            (
                rule["id"],
                user_id,
                asset,
                condition,
                threshold,
                threshold,
                channel,
                f"demo event: {asset} {condition}",
            ),
        )
    for asset, quantity, avg_price in plan["positions"]:
        await conn.execute(
            "INSERT INTO portfolio_positions (user_id, asset, quantity, avg_price) VALUES (%s, %s, %s, %s)",
            (user_id, asset, quantity, avg_price),
        )


async def seed(conn: AsyncConnection, password: str | None) -> dict[str, Any]:
    """Create the demo users that do not exist yet, with their data; report who was created."""
    generated = not password
    password = password or secrets.token_urlsafe(12)
    created = []
    for username, plan in TEAM.items():
        async with conn.transaction():
            try:
                user = await users.create_user(conn, username, password, plan["role"])
            except users.UserExistsError:
                continue
            await _seed_user(conn, user["id"], plan)
        created.append(username)
    result: dict[str, Any] = {"created": created, "changed": bool(created)}
    if generated and created:
        result["password"] = password
    return result
