"""A local exchange speaking Bybit's v5 spot protocol (REST /v5/market + public WebSocket), for the tests.

Its shapes, as Bybit documents them and ccxt 4.5 parses them: `instruments-info?category=spot` with
`baseCoin`, `quoteCoin`, `status: Trading` and the lot and price filters; `kline` rows `[start ms, open, high,
low, close, volume, turnover]` as strings, the `limit` first from `start` sent newest first, the still-open
minute included; WebSocket `{"op": "subscribe", "args": ["kline.1.BTCUSDT", "tickers.BTCUSDT"]}` acknowledged
by `success: true` (more than 10 args refused, `args size >10`, as Bybit does), then `kline.1.<id>` pushes
carrying the minute's running totals (`confirm: false` until it closes) and spot `tickers.<id>` snapshots
(spot tickers carry no bid or ask; `usdIndexPrice` is how ccxt tells them from contracts'). Every `retCode` is
0: the tests that break the exchange use the local Binance.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from aiohttp import web

from marketdash_testing.local_exchange import MINUTE, LocalExchange


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def _answer(result: dict) -> web.Response:
    return web.json_response(
        {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": int(time.time() * 1000)}
    )


@dataclass
class FakeBybit(LocalExchange):
    """Subscriptions are kept as Bybit's topics (kline.1.BTCUSDT, tickers.BTCUSDT)."""

    async def push(self, symbol: str, start: int, event_ms: int) -> None:
        await self.send(f"kline.1.{market_id(symbol)}", self.kline_event(symbol, start, event_ms))
        await self.send(f"tickers.{market_id(symbol)}", self.ticker_event(symbol, event_ms))

    # --- protocol ---------------------------------------------------------------------------------

    def kline_event(self, symbol: str, start: int, event_ms: int) -> dict:
        c = self.candles[symbol][start]
        return {
            "topic": f"kline.1.{market_id(symbol)}",
            "type": "snapshot",
            "ts": event_ms,
            "data": [
                {
                    "start": start,
                    "end": start + MINUTE - 1,
                    "interval": "1",
                    "open": f"{c.open}",
                    "close": f"{c.close}",
                    "high": f"{c.high}",
                    "low": f"{c.low}",
                    "volume": f"{c.volume}",
                    "turnover": f"{c.volume * c.close}",
                    "confirm": False,
                    "timestamp": event_ms,
                }
            ],
        }

    def ticker_event(self, symbol: str, event_ms: int) -> dict:
        day = self.day(symbol)
        return {
            "topic": f"tickers.{market_id(symbol)}",
            "ts": event_ms,
            "type": "snapshot",
            "cs": event_ms,
            "data": {
                "symbol": market_id(symbol),
                "lastPrice": f"{day.last.close}",
                "highPrice24h": f"{day.high}",
                "lowPrice24h": f"{day.low}",
                "prevPrice24h": f"{day.first.open}",
                "volume24h": f"{day.volume}",
                "turnover24h": f"{day.volume * day.last.close}",
                "price24hPcnt": f"{day.change_pct / 100:.4f}",
                "usdIndexPrice": f"{day.last.close}",
            },
        }

    async def _instruments(self, request: web.Request) -> web.Response:
        if request.query.get("category") != "spot":
            return _answer({"category": request.query.get("category"), "list": []})
        instruments = [
            {
                "symbol": market_id(symbol),
                "baseCoin": symbol.split("/")[0],
                "quoteCoin": symbol.split("/")[1],
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "none",
                "lotSizeFilter": {
                    "basePrecision": "0.000001",
                    "quotePrecision": "0.00000001",
                    "minOrderQty": "0.000048",
                    "maxOrderQty": "71.73956243",
                    "minOrderAmt": "1",
                    "maxOrderAmt": "2000000",
                },
                "priceFilter": {"tickSize": "0.01"},
            }
            for symbol in self.symbols
        ]
        return _answer({"category": "spot", "list": instruments, "nextPageCursor": ""})

    async def _kline(self, request: web.Request) -> web.Response:
        query = request.query
        symbol = next((s for s in self.symbols if market_id(s) == query.get("symbol")), None)
        if symbol is None or query.get("interval") != "1":
            return web.json_response({"retCode": 10001, "retMsg": "params error", "result": {}})
        start, end = int(query.get("start", 0)), int(query.get("end", 2**62))
        limit = min(int(query.get("limit", 200)), 1000)
        # The `limit` rows from `start` on (ccxt pages forward by it), sent newest first.
        rows = [
            [f"{ts}", *(f"{v}" for v in (c.open, c.high, c.low, c.close, c.volume, c.volume * c.close))]
            for ts, c in sorted(self.candles[symbol].items())
            if start <= ts <= end
        ][:limit]
        return _answer({"category": "spot", "symbol": market_id(symbol), "list": rows[::-1]})

    async def on_command(self, ws: web.WebSocketResponse, command: dict) -> None:
        op = command.get("op")
        if op == "ping":
            pong = {"success": True, "ret_msg": "pong", "conn_id": str(id(ws)), "op": "ping"}
            await ws.send_str(json.dumps(pong | {"req_id": command.get("req_id")}))
        elif op == "subscribe":
            # "You can input up to 10 args for each subscription request sent to one connection."
            accepted = len(command["args"]) <= 10
            if accepted:
                self.sockets[ws].update(command["args"])
            ack = {
                "success": accepted,
                "ret_msg": "" if accepted else "args size >10",
                "conn_id": str(id(ws)),
                "op": "subscribe",
            }
            await ws.send_str(json.dumps(ack | {"req_id": command.get("req_id")}))

    def subscriptions(self, symbol: str) -> list[str]:
        return [f"kline.1.{market_id(symbol)}", f"tickers.{market_id(symbol)}"]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v5/market/instruments-info", self._instruments),
            web.get("/v5/market/kline", self._kline),
            web.get("/v5/public/spot", self.websocket),
        ]

    def ccxt_urls(self) -> dict:
        """The `urls` override that points an unchanged ccxt.pro.bybit at this server."""
        ws = self.url.replace("http://", "ws://")
        return {"api": {"public": self.url, "ws": {"public": {"spot": f"{ws}/v5/public/spot"}}}}
