"""A local exchange speaking Binance's spot protocol (REST + WebSocket), driven by the test.

It keeps the authoritative 1 m candles: `trade()` updates the candle of that minute and pushes a kline
event (Binance sends the candle's full state on every update) plus a 24hrTicker event to the sockets
subscribed to them; `/api/v3/klines` serves the same candles, the still-open one included, as Binance
does. Tests break it on purpose: `drop_connections()`, `send_raw()` (garbage frames, stale klines).
Run as a script it floods every subscription, for the benchmark (`--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from marketdash_testing.local_exchange import MINUTE, Candle, LocalExchange


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def exchange_info(symbols: list[str]) -> dict:
    entries = []
    for symbol in symbols:
        base, quote = symbol.split("/")
        entries.append(
            {
                "symbol": market_id(symbol),
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.01",
                        "maxPrice": "1000000.00",
                        "tickSize": "0.01",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.00001",
                        "maxQty": "9000.0",
                        "stepSize": "0.00001",
                    },
                ],
                "permissions": ["SPOT"],
                "permissionSets": [["SPOT"]],
            }
        )
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "symbols": entries}


def futures_exchange_info(symbols: list[str]) -> dict:
    """/fapi/v1/exchangeInfo: USDⓈ-M perpetuals."""
    spot = exchange_info(symbols)["symbols"]
    for entry in spot:
        entry |= {
            "pair": entry["symbol"],
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "marginAsset": entry["quoteAsset"],
            "pricePrecision": 2,
            "quantityPrecision": 3,
            "underlyingType": "COIN",
        }
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "symbols": spot}


@dataclass
class FakeBinance(LocalExchange):
    # Perpetuals listed on /fapi: symbol -> (funding rate, mark price, next funding time ms)
    perpetuals: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    flood: int = 0
    # Benchmark pacing: messages per second per flooded subscription (0: as fast as the client reads).
    flood_rate: float = 0.0
    # Benchmark: floods start together once this many subscriptions arrived (client start-up excluded).
    flood_after: int = 1
    # A REST API that holds every klines request until the test opens the gate; how many are held now.
    klines_gate: asyncio.Event | None = None
    klines_in_flight: int = 0
    # Benchmark: seconds each klines request takes (a slow or distant REST API).
    klines_delay_s: float = 0.0
    # symbol -> how many of its next klines requests are refused (503, as Binance under maintenance).
    klines_refused: dict[str, int] = field(default_factory=dict)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    compress = False  # as Binance: no permessage-deflate

    # --- what the test drives -------------------------------------------------------------------

    async def trade_together(self, prices: dict[str, float], volume: float, at_ms: int) -> None:
        """A trade in each symbol at `at_ms`, streamed the way Binance pushes its per-symbol updates: all at
        once, so the client parses them from one read (nothing here yields to the event loop between
        two frames while the socket's buffer has room)."""
        start = at_ms - at_ms % MINUTE
        for symbol, price in prices.items():
            await self.trade(symbol, price, volume, at_ms, push=False)
        for symbol in prices:
            await self.push_kline(symbol, start, event_ms=at_ms)
        for symbol in prices:
            await self.send(f"{market_id(symbol).lower()}@ticker", self.ticker_event(symbol, at_ms))

    async def push_kline(self, symbol: str, start: int, event_ms: int) -> None:
        await self.send(f"{market_id(symbol).lower()}@kline_1m", self.kline_event(symbol, start, event_ms))

    async def send_raw(self, text: str) -> None:
        for ws in list(self.sockets):
            await ws.send_str(text)

    # --- protocol ---------------------------------------------------------------------------------

    async def push(self, symbol: str, start: int, event_ms: int) -> None:
        # Binance sends the candle's full state on every update, and the symbol's 24 h ticker.
        await self.push_kline(symbol, start, event_ms)
        await self.send(f"{market_id(symbol).lower()}@ticker", self.ticker_event(symbol, event_ms))

    def kline_event(self, symbol: str, start: int, event_ms: int) -> dict:
        c = self.candles[symbol][start]
        return {
            "e": "kline",
            "E": event_ms,
            "s": market_id(symbol),
            "k": {
                "t": start,
                "T": start + MINUTE - 1,
                "s": market_id(symbol),
                "i": "1m",
                "f": 1,
                "L": 2,
                "o": f"{c.open}",
                "c": f"{c.close}",
                "h": f"{c.high}",
                "l": f"{c.low}",
                "v": f"{c.volume}",
                "n": 2,
                "x": False,
                "q": "0",
                "V": "0",
                "Q": "0",
                "B": "0",
            },
        }

    def ticker_event(self, symbol: str, event_ms: int) -> dict:
        day = self.day(symbol)
        last, first = day.last, day.first
        return {
            "e": "24hrTicker",
            "E": event_ms,
            "s": market_id(symbol),
            "p": f"{last.close - first.open}",
            "P": f"{day.change_pct:.4f}",
            "w": f"{last.close}",
            "x": f"{first.open}",
            "c": f"{last.close}",
            "Q": "0.1",
            "b": f"{last.close - 0.5}",
            "B": "1.0",
            "a": f"{last.close + 0.5}",
            "A": "1.0",
            "o": f"{first.open}",
            "h": f"{day.high}",
            "l": f"{day.low}",
            "v": f"{day.volume}",
            "q": "0",
            "O": min(self.candles[symbol]),
            "C": event_ms,
            "F": 0,
            "L": 1,
            "n": 2,
        }

    async def _exchange_info(self, _: web.Request) -> web.Response:
        return web.json_response(exchange_info(self.symbols))

    async def _futures_info(self, _: web.Request) -> web.Response:
        return web.json_response(futures_exchange_info(list(self.perpetuals)))

    async def _premium_index(self, _: web.Request) -> web.Response:
        now = int(time.time() * 1000)
        return web.json_response(
            [
                {
                    "symbol": market_id(symbol),
                    "markPrice": f"{mark}",
                    "indexPrice": f"{mark - 1}",
                    "estimatedSettlePrice": f"{mark}",
                    "lastFundingRate": f"{rate}",
                    "interestRate": "0.00010000",
                    "nextFundingTime": next_funding,
                    "time": now,
                }
                for symbol, (rate, mark, next_funding) in self.perpetuals.items()
            ]
        )

    async def _klines(self, request: web.Request) -> web.Response:
        if self.klines_gate is not None:
            self.klines_in_flight += 1
            try:
                await self.klines_gate.wait()
            finally:
                self.klines_in_flight -= 1
        if self.klines_delay_s:
            await asyncio.sleep(self.klines_delay_s)
        query = request.query
        symbol = next(s for s in self.symbols if market_id(s) == query["symbol"])
        if self.klines_refused.get(symbol, 0) > 0:
            self.klines_refused[symbol] -= 1
            return web.Response(status=503, text="Service Unavailable")
        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        limit = min(int(query.get("limit", 500)), 1000)
        rows = []
        for ts in sorted(self.candles[symbol]):
            if start <= ts <= end and len(rows) < limit:
                c = self.candles[symbol][ts]
                prices = [f"{c.open}", f"{c.high}", f"{c.low}", f"{c.close}", f"{c.volume}"]
                rows.append([ts, *prices, ts + MINUTE - 1, "0", 2, "0", "0", "0"])
        return web.json_response(rows)

    async def on_command(self, ws: web.WebSocketResponse, command: dict) -> None:
        if command.get("method") == "SUBSCRIBE":
            self.sockets[ws].update(command["params"])
            await ws.send_str(json.dumps({"result": None, "id": command["id"]}))
            if self.flood:
                self.flood_after -= 1
                if self.flood_after <= 0:
                    self._go.set()
                asyncio.get_running_loop().create_task(self._flood(ws, command["params"]))

    async def _flood(self, ws: web.WebSocketResponse, streams: list[str]) -> None:
        """Benchmark mode: `flood` messages round-robin over the subscribed streams, then sentinels (price
        -1) that tell the reader the flood is over, repeated every 50 ms for a minute: ccxt hands an
        update only to a watch pending when it arrives, so a lone last message could stay unseen.

        Messages come from per-stream templates, so the exchange is not what limits the rate."""
        by_id = {market_id(s).lower(): s for s in self.symbols}
        start = int(time.time() * 1000) // MINUTE * MINUTE
        templates = []
        for stream in streams:
            symbol = by_id[stream.split("@")[0]]
            self.candles[symbol].setdefault(start, Candle(100.0, 100.0, 100.0, 100.0, 1.0))
            if "@kline" in stream:
                event = self.kline_event(symbol, start, 0)
                event["k"] |= {"o": "@P@", "h": "@P@", "l": "@P@", "c": "@P@"}
            else:
                event = self.ticker_event(symbol, 0) | {"c": "@P@", "C": "@E@"}
            event["E"] = "@E@"
            text = json.dumps(event).replace("{", "{{").replace("}", "}}")
            templates.append(text.replace('"@E@"', "{now}").replace("@P@", "{price}"))
        await self._go.wait()
        began = time.monotonic()
        for n in range(self.flood + 1200 * len(streams)):
            price = 100.0 + n % 1000 / 10 if n < self.flood else -1.0
            # The event time is the send time: the benchmark's event-to-write latency starts here.
            text = templates[n % len(templates)].format(now=int(time.time() * 1000), price=price)
            if ws.closed:
                return
            await ws.send_str(text)
            if n >= self.flood and (n - self.flood) % len(streams) == len(streams) - 1:
                await asyncio.sleep(0.05)
            elif self.flood_rate:
                ahead = (n + 1) / self.flood_rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    # --- lifecycle --------------------------------------------------------------------------------

    def subscriptions(self, symbol: str) -> list[str]:
        return [f"{market_id(symbol).lower()}@kline_1m", f"{market_id(symbol).lower()}@ticker"]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v3/exchangeInfo", self._exchange_info),
            web.get("/api/v3/klines", self._klines),
            web.get("/fapi/v1/exchangeInfo", self._futures_info),
            web.get("/fapi/v1/premiumIndex", self._premium_index),
            web.get("/stream/ws/{index}", self.websocket),
            web.get("/stream/ws", self.websocket),
        ]

    def ccxt_futures_urls(self) -> dict:
        """The `urls` override for ccxt's binanceusdm (perpetuals, funding rates)."""
        return {"api": {"fapiPublic": f"{self.url}/fapi/v1"}}

    def ccxt_urls(self) -> dict:
        """The `urls` override that points an unchanged ccxt.pro.binance at this server."""
        ws = self.url.replace("http://", "ws://")
        return {"api": {"public": f"{self.url}/api/v3", "ws": {"spot": f"{ws}/stream/ws"}}}


async def _serve(port: int, symbols: list[str], flood: int, rate: float, together: int) -> None:
    exchange = FakeBinance(symbols, flood=flood, flood_rate=rate, flood_after=together)
    await exchange.start(port)
    print(exchange.url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Local Binance-format exchange that floods subscribers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--symbols", required=True, help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    parser.add_argument("--flood", type=int, default=100_000, help="messages per subscription")
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s per subscription, 0 = unpaced")
    parser.add_argument("--together", type=int, default=2, help="subscriptions awaited before flooding")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.symbols.split(","), args.flood, args.rate, args.together))
