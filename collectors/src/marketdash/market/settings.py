"""The market feeder's settings, all from the environment (prefix MARKETDASH_MARKET_)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from marketdash.core.backoff import Backoff
from marketdash.core.service import Port, ServiceSettings
from marketdash.market.exchanges import PERPETUALS, why_not_streamable


class MarketSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETDASH_MARKET_")

    # ccxt exchange ids streamed over websockets.
    exchanges: list[str] = ["binance", "bybit", "kraken"]
    # Exchanges whose perpetuals' funding rates are polled (ccxt REST).
    funding_exchanges: list[str] = ["binance", "bybit"]
    # Per ccxt client id (binance, bybit, kraken; binanceusdm for Binance's perpetuals), merged into
    # ccxt's `urls` (JSON), e.g. for a proxy or a local exchange:
    # {"binance": {"api": {"public": "http://127.0.0.1:9000/api/v3", "ws": {"spot": "ws://127.0.0.1:9000/stream/ws"}}}}
    exchange_urls: dict[str, dict[str, Any]] = {}
    # Extra ccxt options per exchange (JSON), merged over the feeder's own.
    exchange_options: dict[str, dict[str, Any]] = {}
    # Symbols collected when PostgreSQL cannot be read (spelt as in a watchlist).
    fallback_symbols: list[str] = ["BTC/USDT", "ETH/USDT", "SPX", "NDX", "CAC40", "DAX", "XAU", "WTI", "XAG"]
    postgres_dsn: str = ""
    # A stream that delivers nothing for this long is torn down and reopened (ccxt can hang silently).
    stale_after_s: float = Field(30.0, gt=0)
    # Reconnect on our terms before the exchange's forced disconnect (Binance: every 24 h).
    planned_reconnect_s: float = Field(23 * 3600.0, gt=0)
    # A stream may keep failing this long (an exchange's outage or maintenance) before /healthz says so.
    stream_failing_grace_s: float = Field(120.0, gt=0)
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    # Pause between opening two streams, so a restart does not burst the exchanges' connection limits.
    stagger_s: float = Field(0.5, ge=0)
    # How far back the 1 m candles are filled when a symbol starts streaming.
    initial_backfill_min: int = Field(120, ge=1)
    # REST backfills running at once per exchange (ccxt spaces their requests by the exchange's rate limit).
    backfill_slots: int = Field(4, ge=1)
    # Changes over 1 h / 24 h / 7 d and funding rates are recomputed this often.
    changes_every_s: float = Field(300.0, gt=0)
    funding_every_s: float = Field(300.0, gt=0)
    yahoo_url: str = "https://query1.finance.yahoo.com"
    yahoo_every_s: float = Field(30.0, ge=15, le=60)
    alphavantage_url: str = "https://www.alphavantage.co"
    alphavantage_key: str = ""
    # The free tier allows 25 requests a day: one symbol refreshed every hour or so is what it affords.
    alphavantage_every_s: float = Field(3600.0, gt=0)
    coingecko_url: str = "https://api.coingecko.com"
    coingecko_every_s: float = Field(60.0, gt=0)
    metrics_port: Port = 9108

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial_s, self.backoff_max_s)

    @field_validator("exchanges")
    @classmethod
    def _streamable(cls, exchange_ids: list[str]) -> list[str]:
        problems = [problem for problem in map(why_not_streamable, exchange_ids) if problem]
        repeated = sorted(
            {exchange_id for exchange_id in exchange_ids if exchange_ids.count(exchange_id) > 1}
        )
        if repeated:
            problems.append(f"{repeated} named twice (each is streamed once)")
        if problems:
            raise ValueError("; ".join(problems))
        return exchange_ids

    @field_validator("funding_exchanges")
    @classmethod
    def _with_perpetuals(cls, exchange_ids: list[str]) -> list[str]:
        unknown = [exchange_id for exchange_id in exchange_ids if exchange_id not in PERPETUALS]
        if unknown:
            raise ValueError(
                f"no funding rates for {unknown}: the feeder reads those of {sorted(PERPETUALS)}"
            )
        return exchange_ids
