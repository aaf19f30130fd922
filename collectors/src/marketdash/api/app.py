"""The FastAPI application: ``create_app()`` is what uvicorn serves (``--factory``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from marketdash.api import errors
from marketdash.api.body_guard import BodyGuardMiddleware
from marketdash.api.deps import too_many_requests
from marketdash.api.metrics import MetricsMiddleware
from marketdash.api.ratelimit import RateLimiter
from marketdash.api.read_cache import ReadCache
from marketdash.api.routes import assets, auth, health, owned_data
from marketdash.api.routes.owned_data import OWNED_TABLES
from marketdash.api.settings import ApiSettings
from marketdash.api.tokens import TokenIssuer
from marketdash.core.addresses import parse_networks
from marketdash.core.db import open_listener, open_pool

# What the API reads on every request and serves from memory; each announces its changes (migration 0010).
CACHED_TABLES = ("users", "assets", *OWNED_TABLES)
# The read cache's connection, as pg_stat_activity shows it.
LISTENER_NAME = "marketdash-api-reads"

# A login is a username and a password: 4 KiB is ample, and it is all an anonymous caller may send.
LOGIN_MAX_BODY_BYTES = 4096


class IpRateLimitMiddleware:
    """Per client address, before any work is done for the request (routing, auth, database)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in health.UNRATED_PATHS:
            # Behind nginx, uvicorn's proxy-headers support has already put the real client here.
            client = scope.get("client")
            wait = self.limiter.hit(client[0] if client else "unknown")
            if wait:
                refusal = too_many_requests(wait, "ip")
                response = JSONResponse({"detail": refusal.detail}, refusal.status_code, refusal.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    tokens = TokenIssuer(settings.require_jwt_secret(), settings.jwt_issuer, settings.jwt_ttl_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await open_pool(
            settings.postgres_dsn,
            name="api",
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            acquire_timeout=settings.pool_timeout_seconds,
        )
        following = asyncio.create_task(
            app.state.reads.follow(lambda: open_listener(settings.postgres_dsn, LISTENER_NAME)),
            name="read cache",
        )
        try:
            yield
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            await app.state.pool.close()

    app = FastAPI(
        title="marketdash API",
        version="1.0.0",
        summary="Watchlists, layouts, alert rules and portfolio positions of the market dashboard's team.",
        lifespan=lifespan,
    )
    app.state.tokens = tokens
    app.state.reads = ReadCache(CACHED_TABLES, max_age_s=settings.read_cache_max_age_seconds)
    app.state.webhook_networks = parse_networks(settings.webhook_allowed_networks)
    app.state.user_limiter = RateLimiter(settings.rate_limit_user_per_minute)
    app.state.login_limiter = RateLimiter(settings.rate_limit_login_per_minute)
    app.state.username_limiter = RateLimiter(settings.rate_limit_login_per_username_per_minute)
    app.state.hashing_slots = asyncio.Semaphore(settings.argon2_max_concurrent)
    # A password check waits this long for a slot, then the caller gets 503.
    app.state.hashing_wait_s = settings.pool_timeout_seconds
    errors.install(app)
    for module in (health, auth, assets, owned_data):
        app.include_router(module.router)
    app.add_middleware(
        BodyGuardMiddleware,
        tokens=tokens,
        max_body_bytes=settings.max_body_bytes,
        open_paths={"/api/auth/token": LOGIN_MAX_BODY_BYTES},
    )
    # Outside the body guard: a flood is limited before even its headers are looked at.
    app.add_middleware(IpRateLimitMiddleware, limiter=RateLimiter(settings.rate_limit_ip_per_minute))
    # Added last, so outermost: it sees the 429s of the IP limiter too.
    app.add_middleware(MetricsMiddleware)
    return app
