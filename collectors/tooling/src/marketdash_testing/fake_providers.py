"""Local stand-ins for Yahoo Finance, Alpha Vantage and CoinGecko, in their documented response formats.

`ScriptedHttp` answers each GET path with a handler's body, unless the test queued a scripted answer for
that path first (a 429, a malformed body): queued answers are served once each, in order.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Any]


class ScriptedHttp:
    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.queued: dict[str, deque[web.Response]] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def queue(self, prefix: str, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self.queued[prefix].append(web.Response(status=status, text=body, headers=headers))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.query)))
        for prefix, handler in self.routes.items():
            if request.path.startswith(prefix):
                if self.queued[prefix]:
                    return self.queued[prefix].popleft()
                return web.json_response(handler(request))
        return web.json_response({"error": "not found"}, status=404)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def yahoo_chart(symbol: str, price: float, previous_close: float, at_s: int, bars: list[tuple]) -> dict:
    """/v8/finance/chart/{symbol}: bars are (timestamp_s, open, high, low, close, volume), None allowed."""
    return {
        "chart": {
            "result": [
                {
                    "meta": {
                        "currency": "USD",
                        "symbol": symbol,
                        "exchangeName": "SNP",
                        "instrumentType": "INDEX",
                        "regularMarketTime": at_s,
                        "regularMarketPrice": price,
                        "chartPreviousClose": previous_close,
                        "previousClose": previous_close,
                        "dataGranularity": "1m",
                        "range": "1d",
                    },
                    "timestamp": [bar[0] for bar in bars],
                    "indicators": {
                        "quote": [
                            {
                                key: [bar[i + 1] for bar in bars]
                                for i, key in enumerate(("open", "high", "low", "close", "volume"))
                            }
                        ]
                    },
                }
            ],
            "error": None,
        }
    }


YAHOO_NOT_FOUND = json.dumps(
    {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
)
