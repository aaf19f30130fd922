"""Template variables of R3.3, shared by every dashboard so `includeVars` links carry them across."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models.dashboard import (
    VariableHide,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from marketdash.core.schema import CANDLE, MARKET_TIERS

from .datasources import INFLUXDB, POSTGRES
from .queries import TIER_VARIABLE, Built, name

TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")
DEFAULT_TIMEFRAME = "5m"

# Only the logged-in Grafana user (Grafana logins = API usernames, both created from the inventory): team
# members see their own watchlists, alerts and P&L, not each other's. The API's username rule
# (^[A-Za-z0-9_.@-]+$) keeps quotes out of the interpolated login.
USER_SQL = "SELECT id AS __value, username AS __text FROM users WHERE username = '${__user.login}'"
WATCHLIST_SQL = (
    "SELECT id AS __value, name AS __text FROM watchlists WHERE active AND user_id = $user ORDER BY name"
)
# The set the market feeder collects, narrowed to this user's chosen watchlists.
ASSET_SQL = (
    "SELECT DISTINCT jsonb_array_elements_text(assets) AS asset FROM watchlists"
    " WHERE active AND user_id = $user AND id IN ($watchlist) ORDER BY 1"
)


def user() -> dash.QueryVariable:
    return (
        dash.QueryVariable("user")
        .label("User")
        .datasource(POSTGRES.ref())
        .query(USER_SQL)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .allow_custom_value(False)
    )


def watchlist() -> dash.QueryVariable:
    return (
        dash.QueryVariable("watchlist")
        .label("Watchlist")
        .datasource(POSTGRES.ref())
        .query(WATCHLIST_SQL)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def asset() -> dash.QueryVariable:
    """The one asset the charts focus on. Re-read on time-range change so an edited watchlist shows up."""
    return (
        dash.QueryVariable("asset")
        .label("Asset")
        .datasource(POSTGRES.ref())
        .query(ASSET_SQL)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def assets() -> dash.QueryVariable:
    """Every asset of the chosen watchlists at once, for the ticker band and the market grid (hidden)."""
    return (
        dash.QueryVariable("assets")
        .label("Assets")
        .datasource(POSTGRES.ref())
        .query(ASSET_SQL)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
        .hide(VariableHide.HIDE_VARIABLE)
    )


def exchange() -> dash.QueryVariable:
    """Where `$asset`'s candles come from (binance, bybit, kraken, yahoo…): the `source` tag's values."""
    return (
        dash.QueryVariable("exchange")
        .label("Exchange")
        .datasource(INFLUXDB.ref())
        .query(
            f'SHOW TAG VALUES ON "{CANDLE.bucket}" FROM "{CANDLE.name}" WITH KEY = {name(CANDLE, "source")}'
            f" WHERE {name(CANDLE, 'symbol')} = '$asset'"
        )
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


# A range starting this much further back than a tier's reach still reads it: "Last 7 days" must not
# depend on whether the browser's clock or PostgreSQL's runs ahead. The data is there: InfluxDB drops whole
# shard groups (a day each here) only once all of a group is past the retention.
TIER_SLACK_S = 3600


def _tier_sql() -> str:
    """The finest tier that still holds the start of the range (Grafana's ${__from}, epoch ms)."""
    *finer, coarsest = MARKET_TIERS
    cases = " ".join(
        f"WHEN ${{__from}} >= (extract(epoch FROM now()) - {tier.reach_s + TIER_SLACK_S}) * 1000"
        f" THEN '{tier.bucket}'"
        for tier in finer
    )
    return f"SELECT CASE {cases} ELSE '{coarsest.bucket}' END AS tier"


TIER_SQL = _tier_sql()


def tier() -> Built[VariableModel]:
    """Which markets bucket the range's charts read (hidden): raw 1 m data within its 7 days, then the 5 m
    tier within 30 days, then the 1 h tier; re-chosen whenever the time range changes, and never taken
    from a URL (a shared link must not pin a tier the range does not fit). It follows the dashboard's
    range: a panel with a range of its own reads the raw bucket (market_panels.price_chart)."""
    model = (
        dash.QueryVariable(TIER_VARIABLE)
        .label("Data tier")
        .datasource(POSTGRES.ref())
        .query(TIER_SQL)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .hide(VariableHide.HIDE_VARIABLE)
        .build()
    )
    model.skip_url_sync = True  # the SDK's builder has no setter for it
    return Built(model)


def timeframe() -> dash.CustomVariable:
    return (
        dash.CustomVariable("timeframe")
        .label("Timeframe")
        .values(",".join(TIMEFRAMES))
        .current(VariableOption(selected=True, text=DEFAULT_TIMEFRAME, value=DEFAULT_TIMEFRAME))
    )


def standard() -> list[dash.QueryVariable | dash.CustomVariable | Built[VariableModel]]:
    """In dependency order: Grafana resolves each variable after those it refers to."""
    return [user(), watchlist(), asset(), assets(), exchange(), timeframe(), tier()]
