"""`/metrics` and `/healthz` for a collector: one small aiohttp server per process.

Each service builds its own CollectorRegistry (so tests can run several services in one process) and a
health function returning (healthy, details); the server renders both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def metrics_app(registry: CollectorRegistry, health: HealthCheck) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        healthy, details = health()
        return web.json_response(
            {"status": "ok" if healthy else "failing", **details}, status=200 if healthy else 503
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve_metrics(
    registry: CollectorRegistry, health: HealthCheck, host: str, port: int
) -> web.AppRunner:
    """Start the server; the caller awaits `runner.cleanup()` on shutdown."""
    runner = web.AppRunner(metrics_app(registry, health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
