"""What the local exchanges share: the authoritative 1 m candles a test trades into, the sockets with what
each subscribed to, and an HTTP server on 127.0.0.1. Each exchange's module (fake_binance, fake_bybit,
fake_kraken) speaks its own protocol over them, for the unmodified ccxt client."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

MINUTE = 60_000


@dataclass
class Candle:
    open: float
    high: float
    low: float
    close: float
    volume: float

    def trade(self, price: float, volume: float) -> None:
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.close = price
        self.volume += volume


@dataclass
class Day:
    """A symbol's figures over every candle the exchange has, for its tickers."""

    first: Candle
    last: Candle
    high: float
    low: float
    volume: float

    @property
    def change_pct(self) -> float:
        return (self.last.close / self.first.open - 1) * 100


@dataclass
class LocalExchange:
    symbols: list[str]
    candles: dict[str, dict[int, Candle]] = field(default_factory=dict)
    # socket -> its subscriptions, as the exchange names them (stream names, topics, channel:symbol)
    sockets: dict[web.WebSocketResponse, set[str]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None
    # permessage-deflate offered to clients
    compress = True

    def __post_init__(self) -> None:
        self.candles = {symbol: {} for symbol in self.symbols}

    # --- what the test drives -------------------------------------------------------------------

    async def trade(self, symbol: str, price: float, volume: float, at_ms: int, *, push: bool = True) -> None:
        """A trade at `at_ms`: updates that minute's candle and, unless push=False, streams it."""
        start = at_ms - at_ms % MINUTE
        book = self.candles[symbol]
        if start in book:
            book[start].trade(price, volume)
        else:
            book[start] = Candle(price, price, price, price, volume)
        if push:
            await self.push(symbol, start, at_ms)

    async def drop_connections(self) -> None:
        # One by one: a client may reconnect meanwhile, and its new socket must stay.
        for ws in list(self.sockets):
            await ws.close()
            self.sockets.pop(ws, None)

    def subscribed_to(self, fragment: str) -> bool:
        """Whether an open socket has a subscription whose name contains `fragment`."""
        return any(fragment in name for ws, names in self.sockets.items() if not ws.closed for name in names)

    # --- for the protocols ------------------------------------------------------------------------

    async def push(self, symbol: str, start: int, event_ms: int) -> None:
        """Stream the update of `symbol`'s candle opened at `start` (the exchange's own messages)."""
        raise NotImplementedError

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def on_open(self, ws: web.WebSocketResponse) -> None:
        """What the exchange sends a socket as soon as it opens (nothing, unless it says otherwise)."""

    async def on_command(self, ws: web.WebSocketResponse, command: dict) -> None:
        """Answer one JSON command a client sent (subscribe, ping)."""
        raise NotImplementedError

    def subscriptions(self, symbol: str) -> list[str]:
        """What a client following `symbol` subscribes to: its candles and its ticker."""
        raise NotImplementedError

    def day(self, symbol: str) -> Day:
        book = self.candles[symbol]
        return Day(
            first=book[min(book)],
            last=book[max(book)],
            high=max(c.high for c in book.values()),
            low=min(c.low for c in book.values()),
            volume=sum(c.volume for c in book.values()),
        )

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, compress=self.compress)
        await ws.prepare(request)
        self.sockets[ws] = set()
        await self.on_open(ws)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await self.on_command(ws, json.loads(message.data))
        self.sockets.pop(ws, None)
        return ws

    async def send(self, subscription: str, payload: dict) -> None:
        text = json.dumps(payload)
        for ws, names in list(self.sockets.items()):
            if subscription in names and not ws.closed:
                await ws.send_str(text)

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
