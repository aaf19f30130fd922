"""The news feeder's settings, from MARKETDASH_NEWS_* variables (InfluxDB's: MARKETDASH_INFLUX_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from marketdash.core.service import Port, ServiceSettings


class FeedConfig(BaseModel):
    """One custom RSS/Atom feed; MARKETDASH_NEWS_FEEDS is a JSON list of these."""

    # The name becomes the `source` tag of the feed's points: short, stable, low-cardinality.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    url: str = Field(pattern=r"^https?://\S+$")
    interval_s: float = Field(180.0, gt=0)
    # Optional request budget on top of the interval: at most max_requests per window_s.
    max_requests: int | None = Field(None, ge=1)
    window_s: float = Field(3600.0, gt=0)


class NewsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETDASH_NEWS_")

    feeds: list[FeedConfig] = []

    cryptopanic_token: SecretStr | None = None
    cryptopanic_url: str = "https://cryptopanic.com/api/developer/v2/posts/"
    cryptopanic_currencies: str = ""
    cryptopanic_interval_s: float = Field(300.0, gt=0)
    cryptopanic_max_requests: int = Field(300, ge=1)
    cryptopanic_window_s: float = Field(86400.0, gt=0)

    newsapi_key: SecretStr | None = None
    newsapi_url: str = "https://newsapi.org/v2/top-headlines"
    newsapi_query: dict[str, str] = {"category": "business", "language": "en", "pageSize": "50"}
    # NewsAPI's free plan allows 100 requests a day: one every 15 minutes stays inside it.
    newsapi_interval_s: float = Field(900.0, gt=0)
    newsapi_max_requests: int = Field(100, ge=1)
    newsapi_window_s: float = Field(86400.0, gt=0)

    data_dir: Path = Path("/var/lib/marketdash/news")
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)
    total_timeout_s: float = Field(60.0, gt=0)
    max_backoff_s: float = Field(3600.0, gt=0)
    # Older items are not written: InfluxDB refuses points beyond the bucket's 7-day retention, and would
    # refuse the whole batch with them.
    max_item_age_s: float = Field(6 * 86400.0, gt=0)
    # De-duplication keys are kept this long after an item was last seen in any source.
    dedup_retention_s: float = Field(30 * 86400.0, gt=0)

    metrics_port: Port = 9103
