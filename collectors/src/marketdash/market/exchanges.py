"""ccxt.pro clients, with every base URL overridable from the settings (tests and proxies)."""

from __future__ import annotations

from typing import Any

import ccxt.pro

# Spot markets only: loading derivatives would cost extra requests at every (re)connection, and funding
# rates use their own client (see funding.py).
_BASE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    "bybit": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    "kraken": {"fetchCurrencies": False},
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_exchange(
    exchange_id: str, urls: dict[str, Any] | None = None, options: dict[str, Any] | None = None
) -> ccxt.pro.Exchange:
    cls = getattr(ccxt.pro, exchange_id, None)
    if cls is None:
        raise ValueError(f"ccxt.pro has no exchange {exchange_id!r}")
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "options": deep_merge(_BASE_OPTIONS.get(exchange_id, {}), options or {}),
    }
    if urls:
        # ccxt deep-merges its config over the exchange's description: only the overridden URLs change.
        config["urls"] = urls
    return cls(config)
