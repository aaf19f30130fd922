"""Following the active watchlists in a real PostgreSQL with the API's own migrations."""

from __future__ import annotations

import asyncio
import json

import psycopg

from marketdash.api.migrations import migrate
from marketdash.core.backoff import Backoff
from marketdash.core.catalogue import Asset
from marketdash.market.watchlist import WatchlistFollower, resolve
from marketdash_testing.servers import eventually, free_port


def symbols(assets: list[Asset]) -> list[str]:
    return [asset.symbol for asset in assets]


async def test_follows_watchlist_changes_without_restart(postgres_db: str) -> None:
    await asyncio.to_thread(migrate, postgres_db)
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id"
        ).fetchone()
        first = conn.execute(
            "INSERT INTO watchlists (user_id, name, assets) VALUES (%s, 'main', %s) RETURNING id",
            (user[0], json.dumps(["BTC/USDT", "SPX", "not an asset"])),
        ).fetchone()[0]
    seen: list[list[str]] = []

    async def on_change(assets: list[Asset]) -> None:
        seen.append(symbols(assets))

    follower = WatchlistFollower(postgres_db, ["XAU"], on_change, exchanges=["binance"], recheck_s=30)
    task = asyncio.create_task(follower.run())
    try:
        assert await eventually(lambda: seen == [["BTC/USDT", "SPX"]], 10), seen
        assert follower.origin == "database"
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO watchlists (user_id, name, assets) VALUES (%s, 'fx', %s)",
                (user[0], json.dumps(["EUR/USD", "BTC/USDT"])),
            )
        assert await eventually(lambda: seen[-1] == ["BTC/USDT", "EUR/USD", "SPX"], 5), seen
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            conn.execute("UPDATE watchlists SET active = false WHERE id = %s", (first,))
        assert await eventually(lambda: seen[-1] == ["BTC/USDT", "EUR/USD"], 5), seen
    finally:
        task.cancel()
    assert len(seen) == 3  # no spurious re-subscription between changes


async def test_unreachable_database_means_the_fallback_list() -> None:
    seen: list[list[str]] = []

    async def on_change(assets: list[Asset]) -> None:
        seen.append(symbols(assets))

    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    follower = WatchlistFollower(
        dsn, ["XAU", "BTC/USDT"], on_change, exchanges=["binance"], backoff=Backoff(0.05, 0.1)
    )
    task = asyncio.create_task(follower.run())
    try:
        assert await eventually(lambda: seen == [["BTC/USDT", "XAU"]], 5), seen
        assert follower.origin == "fallback"
    finally:
        task.cancel()


def test_a_symbol_the_catalogue_lacks_is_collected_under_its_own_spelling(caplog) -> None:
    assets = resolve(["PEPE/USDT", "NFLX", "AUD/NZD", "BTC/USDT", "pepe/usdt"], ["binance", "kraken"])
    by_symbol = {asset.symbol: asset for asset in assets}
    assert list(by_symbol) == ["AUD/NZD", "BTC/USDT", "NFLX", "PEPE/USDT"]
    assert dict(by_symbol["PEPE/USDT"].sources) == {"binance": "PEPE/USDT", "kraken": "PEPE/USDT"}
    assert by_symbol["PEPE/USDT"].asset_class == "crypto"
    assert dict(by_symbol["NFLX"].sources) == {"yahoo": "NFLX"}
    assert dict(by_symbol["AUD/NZD"].sources) == {"yahoo": "AUDNZD=X"}
    # The catalogue's own entry wins: its metadata and each exchange's own spelling (Kraken's BTC/USD).
    assert by_symbol["BTC/USDT"].name == "Bitcoin"
    assert by_symbol["BTC/USDT"].source_symbol("kraken") == "BTC/USD"
    assert [record.symbol for record in caplog.records if record.msg == "symbol left out"] == ["pepe/usdt"]
