"""Every SQL query of the dashboards runs against PostgreSQL with the API's migrated schema, as Grafana's
read-only login with exactly the privileges the API grants it.

EXPLAIN catches syntax errors, unknown tables and columns, type errors and missing privileges; the
variable and panel queries that decide what a user sees also run on rows, so "my watchlist, not someone
else's" is checked.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from dashboard_fixtures import committed_models
from grafana_sim import FROM_MS, interpolate, queries

from marketdash.api.migrations import migrate

MODELS = committed_models()
SQL = sorted(
    {
        query: where for model in MODELS.values() for where, kind, query in queries(model) if kind == "sql"
    }.items()
)


@pytest.fixture
def config_db(postgres_db: str) -> str:
    """The migrated database; queries go through `as_grafana`, rows are seeded by the superuser."""
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader'").fetchone() is None:
            conn.execute("CREATE ROLE grafana_reader LOGIN")
    migrate(postgres_db)
    return postgres_db


def as_grafana(dsn: str) -> str:
    return dsn.replace("://postgres@", "://grafana_reader@", 1)


def _variable(name: str, filename: str = "portfolio-classic.json") -> str:
    variable = next(v for v in MODELS[filename]["templating"]["list"] if v["name"] == name)
    return interpolate(variable["query"], "sql")


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(as_grafana(dsn)) as conn:
        return conn.execute(query).fetchall()


def test_every_query_plans_on_the_migrated_schema(config_db: str):
    assert SQL, "no SQL found in the dashboards"
    failures = []
    with psycopg.connect(as_grafana(config_db), autocommit=True) as conn:
        for query, where in SQL:
            try:
                conn.execute(f"EXPLAIN {interpolate(query, 'sql')}")
            except psycopg.Error as error:
                failures.append(f"{where}: {error}")
    assert failures == []


def test_a_broken_query_fails_to_plan(config_db: str):
    with_user = next(query for query, _ in SQL if "user_id" in query)
    with psycopg.connect(config_db, autocommit=True) as conn, pytest.raises(psycopg.errors.UndefinedColumn):
        conn.execute(f"EXPLAIN {interpolate(with_user.replace('user_id', 'owner_id'), 'sql')}")


def test_the_tier_variable_picks_the_finest_tier_holding_the_start_of_the_range(config_db: str):
    variable = next(v for v in MODELS["main-classic.json"]["templating"]["list"] if v["name"] == "tier")
    # Hidden, re-run at each change of range, never taken from a URL.
    assert (variable["hide"], variable["refresh"], variable["skipUrlSync"]) == (2, 2, True)
    now_ms, hour_ms = int(time.time() * 1000), 3_600_000
    started = {  # hours back the range starts -> the tier it reads
        6: "markets",
        7 * 24: "markets",  # "Last 7 days", whichever clock runs ahead
        7 * 24 + 0.5: "markets",
        7 * 24 + 2: "markets_5m",
        30 * 24: "markets_5m",
        30 * 24 + 2: "markets_1h",
        365 * 24: "markets_1h",
        1000 * 24: "markets_1h",
    }
    chosen = {
        hours: _rows(config_db, variable["query"].replace("${__from}", str(int(now_ms - hours * hour_ms))))[
            0
        ][0]
        for hours in started
    }
    assert chosen == started
    # Every dashboard whose queries use $tier defines it the same way.
    for filename, model in MODELS.items():
        if "$tier" in json.dumps(model["panels"]):
            defined = [v for v in model["templating"]["list"] if v["name"] == "tier"]
            assert defined == [variable], filename


def _seed(dsn: str) -> None:
    # grafana_sim plays alice (user 1, Grafana login `alice`), watchlists 1-3 selected (3 since deactivated).
    with psycopg.connect(dsn) as conn:
        for name in ("alice", "admin", "bob"):
            conn.execute("INSERT INTO users (username, password_hash) VALUES (%s, 'x')", (name,))
        for user_id, name, assets, active in (
            (1, "crypto", '["BTC/USDT", "ETH/USDT"]', True),
            (1, "stocks", '["AAPL", "ETH/USDT"]', True),
            (1, "old", '["XAU"]', False),
            (3, "bob", '["DAX"]', True),
        ):
            conn.execute(
                "INSERT INTO watchlists (user_id, name, assets, active) VALUES (%s, %s, %s, %s)",
                (user_id, name, assets, active),
            )
        for user_id, asset, hour, value in ((1, "BTC/USDT", 1, 1), (1, "ETH/USDT", 3, 2), (3, "DAX", 2, 3)):
            conn.execute(
                "INSERT INTO alert_events (user_id, asset, condition, threshold, value, channel,"
                " triggered_at) VALUES (%s, %s, 'above', 0, %s, 'telegram', %s)",
                (user_id, asset, value, datetime.fromtimestamp(FROM_MS / 1000 + hour * 3600, UTC)),
            )
        for user_id, asset, quantity, price in (
            (1, "BTC/USDT", 1, 60000),
            (1, "BTC/USDT", 3, 64000),
            (3, "AAPL", 5, 1),
        ):
            conn.execute(
                "INSERT INTO portfolio_positions (user_id, asset, quantity, avg_price)"
                " VALUES (%s, %s, %s, %s)",
                (user_id, asset, quantity, price),
            )


def test_asset_variable_is_the_users_active_watchlists(config_db: str):
    _seed(config_db)
    assert sorted(row[0] for row in _rows(config_db, _variable("asset"))) == ["AAPL", "BTC/USDT", "ETH/USDT"]
    assert _variable("asset") == _variable("assets")


def test_user_variable_is_only_the_logged_in_user(config_db: str):
    _seed(config_db)
    assert _rows(config_db, _variable("user")) == [(1, "alice")]
    assert [row[1] for row in _rows(config_db, _variable("watchlist"))] == ["crypto", "stocks"]


def test_alerts_table_is_the_users_newest_first(config_db: str):
    _seed(config_db)
    panel = next(p for p in MODELS["main-classic.json"]["panels"] if p.get("title") == "Alerts & events")
    rows = _rows(config_db, interpolate(panel["targets"][0]["rawSql"], "sql"))
    assert [row[1] for row in rows] == ["ETH/USDT", "BTC/USDT"]


def test_positions_merge_lots_at_their_weighted_price(config_db: str):
    _seed(config_db)
    panel = next(p for p in MODELS["portfolio-classic.json"]["panels"] if p.get("title") == "Positions · P&L")
    query = next(t["rawSql"] for t in panel["targets"] if "rawSql" in t)
    assert [tuple(map(float, row[1:])) for row in _rows(config_db, interpolate(query, "sql"))] == [
        (4.0, 63000.0, 252000.0)
    ]
    assert [row[0] for row in _rows(config_db, _variable("held"))] == ["BTC/USDT"]


def _sessions_at(dsn: str, moment: str) -> dict[str, tuple[str, str]]:
    panel = next(p for p in MODELS["main-classic.json"]["panels"] if p.get("title") == "Market sessions")
    query = interpolate(panel["targets"][0]["rawSql"], "sql")
    assert query.count("now()") == 1
    rows = _rows(dsn, query.replace("now()", f"timestamptz '{moment}'"))
    return {market: (local, session) for market, local, session in rows}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # A Monday in winter, 15:00 UTC: Europe and New York trade, Asia has closed for the night.
        (
            "2026-12-07 15:00Z",
            {
                "New York": ("Mon 10:00", "OPEN"),
                "London": ("Mon 15:00", "OPEN"),
                "Frankfurt": ("Mon 16:00", "OPEN"),
                "Tokyo": ("Tue 00:00", "CLOSED"),
                "Hong Kong": ("Mon 23:00", "CLOSED"),
            },
        ),
        # Tuesday 03:30 UTC: Tokyo's lunch ends at 12:30 sharp (bounds are half-open: open at the opening
        # minute, closed at the closing one).
        (
            "2026-12-08 03:30Z",
            {
                "New York": ("Mon 22:30", "CLOSED"),
                "London": ("Tue 03:30", "CLOSED"),
                "Frankfurt": ("Tue 04:30", "CLOSED"),
                "Tokyo": ("Tue 12:30", "OPEN"),
                "Hong Kong": ("Tue 11:30", "OPEN"),
            },
        ),
        # Tuesday 04:15 UTC: Hong Kong at lunch, Tokyo back from its own.
        (
            "2026-12-08 04:15Z",
            {
                "New York": ("Mon 23:15", "CLOSED"),
                "London": ("Tue 04:15", "CLOSED"),
                "Frankfurt": ("Tue 05:15", "CLOSED"),
                "Tokyo": ("Tue 13:15", "OPEN"),
                "Hong Kong": ("Tue 12:15", "LUNCH"),
            },
        ),
        # Summer time: London opens at 07:00 UTC, New York at 13:30 UTC.
        (
            "2026-07-06 13:30Z",
            {
                "New York": ("Mon 09:30", "OPEN"),
                "London": ("Mon 14:30", "OPEN"),
                "Frankfurt": ("Mon 15:30", "OPEN"),
                "Tokyo": ("Mon 22:30", "CLOSED"),
                "Hong Kong": ("Mon 21:30", "CLOSED"),
            },
        ),
        # Hong Kong's lunch begins at 12:00 sharp; Monday 21:00 UTC: New York's close at 16:00 sharp.
        (
            "2026-12-08 04:00Z",
            {
                "New York": ("Mon 23:00", "CLOSED"),
                "London": ("Tue 04:00", "CLOSED"),
                "Frankfurt": ("Tue 05:00", "CLOSED"),
                "Tokyo": ("Tue 13:00", "OPEN"),
                "Hong Kong": ("Tue 12:00", "LUNCH"),
            },
        ),
        (
            "2026-12-07 21:00Z",
            {
                "New York": ("Mon 16:00", "CLOSED"),
                "London": ("Mon 21:00", "CLOSED"),
                "Frankfurt": ("Mon 22:00", "CLOSED"),
                "Tokyo": ("Tue 06:00", "CLOSED"),
                "Hong Kong": ("Tue 05:00", "CLOSED"),
            },
        ),
        # Sunday 00:30 UTC is already Monday morning in Tokyo: its local weekday decides.
        (
            "2026-12-13 00:30Z",
            {
                "New York": ("Sat 19:30", "CLOSED"),
                "London": ("Sun 00:30", "CLOSED"),
                "Frankfurt": ("Sun 01:30", "CLOSED"),
                "Tokyo": ("Sun 09:30", "CLOSED"),
                "Hong Kong": ("Sun 08:30", "CLOSED"),
            },
        ),
        (
            "2026-12-14 00:30Z",
            {
                "New York": ("Sun 19:30", "CLOSED"),
                "London": ("Mon 00:30", "CLOSED"),
                "Frankfurt": ("Mon 01:30", "CLOSED"),
                "Tokyo": ("Mon 09:30", "OPEN"),
                "Hong Kong": ("Mon 08:30", "CLOSED"),
            },
        ),
        # The weeks when New York has moved to summer time and Europe not yet (2026-03-08 to 03-29).
        (
            "2026-03-10 13:30Z",
            {
                "New York": ("Tue 09:30", "OPEN"),
                "London": ("Tue 13:30", "OPEN"),
                "Frankfurt": ("Tue 14:30", "OPEN"),
                "Tokyo": ("Tue 22:30", "CLOSED"),
                "Hong Kong": ("Tue 21:30", "CLOSED"),
            },
        ),
        # Saturday noon everywhere it is Saturday: closed.
        (
            "2026-12-12 12:00Z",
            {
                "New York": ("Sat 07:00", "CLOSED"),
                "London": ("Sat 12:00", "CLOSED"),
                "Frankfurt": ("Sat 13:00", "CLOSED"),
                "Tokyo": ("Sat 21:00", "CLOSED"),
                "Hong Kong": ("Sat 20:00", "CLOSED"),
            },
        ),
    ],
)
def test_market_sessions_follow_each_exchanges_hours_in_its_own_time_zone(config_db: str, moment, expected):
    assert _sessions_at(config_db, moment) == expected
