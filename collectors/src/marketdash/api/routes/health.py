"""Liveness, readiness and metrics: unauthenticated, exempt from rate limits, not for the public edge."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from psycopg import Error as PsycopgError
from psycopg_pool import PoolTimeout

from marketdash.api import metrics
from marketdash.api.migrations import MigrationError, pending_from

router = APIRouter(tags=["operations"])

UNRATED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (no dependency checked: a database outage must not get the API restarted)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database unreachable or schema not current"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when PostgreSQL answers and every migration shipped with this code is applied."""
    try:
        pool = request.app.state.pool
        async with pool.connection(timeout=min(2.0, pool.timeout)) as conn:
            cur = await conn.execute("SELECT name, checksum FROM schema_migrations")
            applied = {row["name"]: row["checksum"] for row in await cur.fetchall()}
        pending = pending_from(applied)
    except (PsycopgError, PoolTimeout, MigrationError) as error:
        return JSONResponse({"status": "unavailable", "reason": str(error)}, status_code=503)
    if pending:
        return JSONResponse(
            {"status": "unavailable", "reason": f"migrations pending: {pending}"}, status_code=503
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
