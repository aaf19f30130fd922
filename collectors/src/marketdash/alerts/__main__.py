"""`python -m marketdash.alerts`: run the alert engine until SIGTERM/SIGINT."""

from marketdash.alerts.engine import AlertEngine
from marketdash.alerts.settings import AlertSettings
from marketdash.core.service import run_service

if __name__ == "__main__":
    run_service(
        "marketdash.alerts",
        "alert-engine",
        AlertSettings,
        AlertEngine,
        "Evaluate the members' alert rules on the markets bucket and deliver them by e-mail, Telegram or "
        "webhook. Settings: MARKETDASH_ALERTS_* and MARKETDASH_INFLUX_* environment variables "
        "(docs/alerts.md).",
    )
