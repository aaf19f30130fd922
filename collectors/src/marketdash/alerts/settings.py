"""The alert engine's settings, all from the environment (prefix MARKETDASH_ALERTS_; docs/alerts.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from marketdash.core.addresses import parse_networks
from marketdash.core.backoff import Backoff
from marketdash.core.service import Port, ServiceSettings


class AlertSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETDASH_ALERTS_")

    postgres_dsn: str = ""
    # Rules are evaluated this often, on the prices stored since the last evaluation.
    evaluate_every_s: float = Field(1.0, gt=0)
    # Market data older than this decides nothing (a stopped feed, a closed market): the rule is stale.
    stale_after_s: float = Field(180.0, gt=0)
    # Re-arming needs the value back past the threshold by this fraction of it (0.005 = 0.5 %).
    hysteresis: float = Field(0.005, ge=0, lt=1)
    # The usual volume a volume_spike rule compares with: the mean over this many hours before its window.
    volume_baseline_hours: float = Field(24.0, gt=0, le=144)
    # A member's rules notify at most this many times an hour; further firings are recorded as suppressed.
    max_notifications_per_user_hour: int = Field(30, ge=1)
    # A delivery is retried with exponential back-off (jittered) up to this many attempts, then failed.
    delivery_attempts: int = Field(10, ge=1)
    retry_initial_s: float = Field(5.0, gt=0)
    retry_max_s: float = Field(600.0, gt=0)
    send_timeout_s: float = Field(15.0, gt=0)

    # E-mail: the operator's SMTP relay. security: starttls (port 587), tls (465) or none (a local relay).
    smtp_host: str = ""
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    email_from: str = ""
    email_default_to: str = ""
    # Telegram: the Bot API's base URL (a self-hosted Bot API server is another), the bot's token.
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_default_chat: str = ""
    webhook_default_url: str = ""
    # Networks a webhook may reach besides public addresses (CIDR list, JSON): a team's receiver on its LAN.
    webhook_allowed_networks: list[str] = []

    metrics_port: Port = 9110

    @property
    def retry(self) -> Backoff:
        return Backoff(self.retry_initial_s, self.retry_max_s)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value
