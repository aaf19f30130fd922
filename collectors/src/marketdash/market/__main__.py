"""`python -m marketdash.market`: run the market feeder until SIGTERM/SIGINT (then flush and exit)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from pydantic import ValidationError
from pydantic_settings import SettingsError

from marketdash.core.influx import InfluxSettings
from marketdash.core.logging import configure_logging
from marketdash.market.feeder import MarketFeeder
from marketdash.market.settings import MarketSettings

log = logging.getLogger("marketdash.market")


async def _main(settings: MarketSettings) -> None:
    feeder = MarketFeeder(settings, InfluxSettings())
    task = asyncio.create_task(feeder.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    log.info("market feeder started", extra={"exchanges": feeder.settings.exchanges})
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log.info("market feeder stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m marketdash.market",
        description="Stream crypto (ccxt.pro), poll Yahoo/Alpha Vantage/CoinGecko, write to InfluxDB. "
        "Settings: MARKETDASH_MARKET_* and MARKETDASH_INFLUX_* environment variables (docs/market.md).",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    configure_logging("market-feeder", args.log_level)
    try:
        settings = MarketSettings()
    except ValidationError as error:
        # One line per bad value, named as the operator sets it (a typo in an exchange id, say).
        for problem in error.errors():
            setting = f"MARKETDASH_MARKET_{str(problem['loc'][0]).upper()}"
            log.error("setting refused", extra={"setting": setting, "error": problem["msg"]})
        raise SystemExit(2) from None
    except SettingsError as error:  # a value that is not even JSON
        log.error("setting refused", extra={"error": str(error)})
        raise SystemExit(2) from None
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
