"""`python -m marketdash.market`: run the market feeder until SIGTERM/SIGINT (then flush and exit)."""

from marketdash.core.service import run_service
from marketdash.market.feeder import MarketFeeder
from marketdash.market.settings import MarketSettings

if __name__ == "__main__":
    run_service(
        "marketdash.market",
        "market-feeder",
        MarketSettings,
        MarketFeeder,
        "Stream crypto (ccxt.pro), poll Yahoo/Alpha Vantage/CoinGecko, write to InfluxDB. Settings: "
        "MARKETDASH_MARKET_* and MARKETDASH_INFLUX_* environment variables (docs/market.md).",
    )
