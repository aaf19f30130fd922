"""`python -m marketdash.alerts`: run the alert engine until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from marketdash.alerts.engine import AlertEngine
from marketdash.alerts.settings import AlertSettings
from marketdash.core.influx import InfluxSettings
from marketdash.core.logging import configure_logging
from marketdash.core.metrics import serve_metrics

log = logging.getLogger("marketdash.alerts")


async def _main() -> None:
    settings = AlertSettings()
    engine = AlertEngine(settings, InfluxSettings())
    runner = await serve_metrics(engine.registry, engine.health, settings.metrics_host, settings.metrics_port)
    task = asyncio.create_task(engine.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, engine.stop)
    log.info("alert engine started")
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await runner.cleanup()
    log.info("alert engine stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m marketdash.alerts",
        description="Evaluate the members' alert rules on the markets bucket and deliver them by e-mail, "
        "Telegram or webhook. Settings: MARKETDASH_ALERTS_* and MARKETDASH_INFLUX_* environment variables "
        "(docs/alerts.md).",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    configure_logging("alert-engine", args.log_level)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
