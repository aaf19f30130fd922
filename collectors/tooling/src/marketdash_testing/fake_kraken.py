"""A local exchange speaking Kraken's spot protocol (REST /0/public + WebSocket v2), driven by the test.

Kraken is the default exchange that streams one symbol per watch (ccxt has no watchOHLCVForSymbols for it), so
it exercises the feeder's other candle path. Its shapes, as Kraken documents them and ccxt 4.5 parses them:
`Assets` (ccxt reads it at every market load) and `AssetPairs` keyed by Kraken's pair ids (XXBTZUSD, base
XXBT, wsname XBT/USD); `OHLC` rows `[time in s, open, high, low, close, vwap, volume, count]` as strings, the
still-open minute last, with `since` in seconds; WebSocket v2 JSON with `{"method": "subscribe", "params":
{"channel": "ohlc" | "ticker", "symbol": [...]}}` acknowledged by `success: true`, then `ohlc` and `ticker`
messages naming the pair as `BTC/USD`. On subscribing, Kraken sends a snapshot of the channel: here the
symbol's last three candles (Kraken's holds its recent ones) or its ticker; and a heartbeat about every
second. `trade()` updates the minute's candle and pushes it (each update carries the candle's running totals)
with the ticker.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from marketdash_testing.local_exchange import MINUTE, LocalExchange

# Kraken's own ids of the assets whose codes it spells differently (the others are the code itself).
_KRAKEN_IDS = {"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD", "EUR": "ZEUR"}


def _asset_id(code: str) -> str:
    return _KRAKEN_IDS.get(code, code)


def pair_id(symbol: str) -> str:
    base, quote = symbol.split("/")
    return _asset_id(base) + _asset_id(quote)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def asset_pairs(symbols: list[str]) -> dict:
    result = {}
    for symbol in symbols:
        base, quote = symbol.split("/")
        ws_base = "XBT" if base == "BTC" else base
        result[pair_id(symbol)] = {
            "altname": f"{ws_base}{quote}",
            "wsname": f"{ws_base}/{quote}",
            "aclass_base": "currency",
            "base": _asset_id(base),
            "aclass_quote": "currency",
            "quote": _asset_id(quote),
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": 1,
            "lot_decimals": 8,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": [[0, 0.4]],
            "fees_maker": [[0, 0.25]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": "0.0001",
            "costmin": "0.5",
            "tick_size": "0.1",
            "status": "online",
        }
    return {"error": [], "result": result}


def assets(symbols: list[str]) -> dict:
    codes = sorted({code for symbol in symbols for code in symbol.split("/")})
    result = {
        _asset_id(code): {
            "aclass": "currency",
            "altname": "XBT" if code == "BTC" else code,
            "decimals": 10,
            "display_decimals": 5,
            "status": "enabled",
        }
        for code in codes
    }
    return {"error": [], "result": result}


@dataclass
class FakeKraken(LocalExchange):
    """Subscriptions are kept as `<channel>:<symbol>` (ohlc:BTC/USD, ticker:BTC/USD)."""

    _last_trade_ms: dict[str, int] = field(default_factory=dict)
    heartbeat_s: float = 1.0

    async def push(self, symbol: str, start: int, event_ms: int) -> None:
        self._last_trade_ms[symbol] = event_ms
        await self.send(f"ohlc:{symbol}", self.ohlc_event(symbol, start, "update"))
        await self.send(f"ticker:{symbol}", self.ticker_event(symbol, "update"))

    # --- protocol ---------------------------------------------------------------------------------

    def ohlc_event(self, symbol: str, start: int, kind: str) -> dict:
        c = self.candles[symbol][start]
        return {
            "channel": "ohlc",
            "type": kind,
            "timestamp": _iso(self._last_trade_ms.get(symbol, start)),
            "data": [
                {
                    "symbol": symbol,
                    "open": c.open,
                    "high": c.high,
                    "low": c.low,
                    "close": c.close,
                    "trades": 1,
                    "volume": c.volume,
                    "vwap": c.close,
                    "interval_begin": _iso(start),
                    "interval": 1,
                    "timestamp": _iso(start + MINUTE),
                }
            ],
        }

    def ohlc_snapshot(self, symbol: str) -> dict:
        """The recent candles, as Kraken sends them on subscribing (its last few; here the last three)."""
        recent = sorted(self.candles[symbol])[-3:]
        snapshot = self.ohlc_event(symbol, recent[-1], "snapshot")
        snapshot["data"] = [self.ohlc_event(symbol, start, "snapshot")["data"][0] for start in recent]
        return snapshot

    def ticker_event(self, symbol: str, kind: str) -> dict:
        day = self.day(symbol)
        return {
            "channel": "ticker",
            "type": kind,
            "data": [
                {
                    "symbol": symbol,
                    "bid": day.last.close - 0.5,
                    "bid_qty": 1.0,
                    "ask": day.last.close + 0.5,
                    "ask_qty": 1.0,
                    "last": day.last.close,
                    "volume": day.volume,
                    "vwap": day.last.close,
                    "low": day.low,
                    "high": day.high,
                    "change": day.last.close - day.first.open,
                    "change_pct": round(day.change_pct, 2),
                }
            ],
        }

    async def _assets(self, _: web.Request) -> web.Response:
        return web.json_response(assets(self.symbols))

    async def _asset_pairs(self, _: web.Request) -> web.Response:
        return web.json_response(asset_pairs(self.symbols))

    async def _ohlc(self, request: web.Request) -> web.Response:
        query = request.query
        symbol = next((s for s in self.symbols if pair_id(s) == query.get("pair")), None)
        if symbol is None or query.get("interval", "1") != "1":
            return web.json_response({"error": ["EQuery:Unknown asset pair"]})
        # The candles after `since` (Kraken: "return up to 720 OHLC data points since given timestamp",
        # exclusive), the last 720 at most; `last` is the newest committed one, not the open minute.
        since_ms = int(query.get("since", 0)) * 1000
        rows = [
            [ts // 1000, *(f"{v}" for v in (c.open, c.high, c.low, c.close, c.close, c.volume)), 1]
            for ts, c in sorted(self.candles[symbol].items())
            if ts > since_ms
        ][-720:]
        last = rows[-2][0] if len(rows) > 1 else since_ms // 1000
        return web.json_response({"error": [], "result": {pair_id(symbol): rows, "last": last}})

    async def on_open(self, ws: web.WebSocketResponse) -> None:
        status = {"api_version": "v2", "connection_id": id(ws), "system": "online", "version": "2.0.10"}
        await ws.send_str(json.dumps({"channel": "status", "type": "update", "data": [status]}))
        asyncio.get_running_loop().create_task(self._heartbeats(ws))

    async def _heartbeats(self, ws: web.WebSocketResponse) -> None:
        # Kraken sends one about every second once a socket subscribed, trades or not.
        while not ws.closed:
            await asyncio.sleep(self.heartbeat_s)
            if self.sockets.get(ws) and not ws.closed:
                await ws.send_str(json.dumps({"channel": "heartbeat"}))

    async def on_command(self, ws: web.WebSocketResponse, command: dict) -> None:
        if command.get("method") == "ping":
            await ws.send_str(json.dumps({"method": "pong", "req_id": command.get("req_id")}))
        if command.get("method") != "subscribe":
            return
        params = command["params"]
        channel = params["channel"]
        for symbol in params["symbol"]:
            self.sockets[ws].add(f"{channel}:{symbol}")
            result = {"channel": channel, "symbol": symbol, "snapshot": True}
            if channel == "ohlc":
                result["interval"] = params.get("interval", 1)
            ack = {"method": "subscribe", "req_id": command.get("req_id"), "result": result, "success": True}
            await ws.send_str(json.dumps(ack))
            book = self.candles[symbol]
            if book and channel == "ohlc":
                await ws.send_str(json.dumps(self.ohlc_snapshot(symbol)))
            elif book and channel == "ticker":
                await ws.send_str(json.dumps(self.ticker_event(symbol, "snapshot")))

    # --- lifecycle --------------------------------------------------------------------------------

    def subscriptions(self, symbol: str) -> list[str]:
        return [f"ohlc:{symbol}", f"ticker:{symbol}"]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/0/public/Assets", self._assets),
            web.get("/0/public/AssetPairs", self._asset_pairs),
            web.get("/0/public/OHLC", self._ohlc),
            web.get("/v2", self.websocket),
        ]

    def ccxt_urls(self) -> dict:
        """The `urls` override that points an unchanged ccxt.pro.kraken at this server."""
        ws = self.url.replace("http://", "ws://")
        return {"api": {"public": self.url, "ws": {"publicV2": f"{ws}/v2"}}}
