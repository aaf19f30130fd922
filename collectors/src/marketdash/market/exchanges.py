"""ccxt.pro clients, with every base URL overridable from the settings (tests and proxies), and which
exchanges the feeder can stream."""

from __future__ import annotations

from typing import Any

import ccxt.pro

# Spot markets only: loading derivatives would cost extra requests at every (re)connection, and funding
# rates use their own client (see funding.py). Binance's currency list is a signed request: not asked
# for. (Only ccxt's binance reads that option: Bybit skips its currencies without a key by itself, and
# Kraken's are public and read at every market load.)
_BASE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    "bybit": {"fetchMarkets": {"types": ["spot"]}},
}


# exchange id (the catalogue's source and the `source` tag) -> (ccxt client id, options for perpetuals)
PERPETUALS: dict[str, tuple[str, dict[str, Any]]] = {
    "binance": ("binanceusdm", {"fetchMarkets": {"types": ["linear"]}}),
    "bybit": ("bybit", {"fetchMarkets": {"types": ["linear"]}}),
}

# What the streams call: candles of every followed symbol and their tickers, and the REST candles that
# fill what a stream cannot vouch for.
_STREAMED = ("watchOHLCV", "watchTickers", "fetchOHLCV")


def why_not_streamable(exchange_id: str) -> str | None:
    """Why the feeder cannot stream this exchange id, or None when it can."""
    if exchange_id not in ccxt.pro.exchanges:
        return f"{exchange_id!r} is not a ccxt.pro exchange id (e.g. binance, bybit, kraken, okx)"
    has = getattr(ccxt.pro, exchange_id)().has
    missing = [feature for feature in _STREAMED if not has.get(feature)]
    if missing:
        return f"ccxt.pro's {exchange_id} has no {' nor '.join(missing)}: the feeder cannot stream it"
    return None


def streamable_exchanges() -> list[str]:
    """Every exchange id the feeder can stream with this ccxt (the collectors role keeps a copy)."""
    return [exchange_id for exchange_id in ccxt.pro.exchanges if why_not_streamable(exchange_id) is None]


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
