"""The PostgreSQL connection pool every service opens the same way."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, OperationalError
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


async def open_pool(
    dsn: str, *, name: str, min_size: int = 1, max_size: int = 10, acquire_timeout: float = 10.0
) -> AsyncConnectionPool:
    """An opened pool of autocommit connections returning rows as dicts.

    Autocommit: a read is one round trip, and writers say where their transactions are with
    ``conn.transaction()``. ``wait=False``: a service starts while PostgreSQL is still coming up and
    reports it through its readiness probe instead of crashing. Each connection is tested before it is
    handed out (one round trip, on loopback or the Docker network); one found dead means the server went
    away, so every idle connection is replaced at once. Left to the pool, each dead connection would be
    found by its own check, the second one at once, the next ones after a back-off of ~1 s, then ~2 s…:
    after a PostgreSQL restart the first request would wait seconds or time out (measured: 2 s, then 503).
    """

    async def check(conn: AsyncConnection[Any]) -> None:
        try:
            await AsyncConnectionPool.check_connection(conn)
        except OperationalError:
            await pool.drain()
            raise

    pool = AsyncConnectionPool(
        dsn,
        name=name,
        min_size=min_size,
        max_size=max_size,
        timeout=acquire_timeout,
        kwargs={"autocommit": True, "row_factory": dict_row},
        check=check,
        open=False,
    )
    await pool.open(wait=False)
    return pool


async def open_listener(dsn: str, application_name: str) -> AsyncConnection[Any]:
    """A connection of its own for LISTEN (a pooled one would be handed to others), named for
    pg_stat_activity. It is idle by nature: exempt from an idle_session_timeout the server may set. TCP
    keepalives end it within about 25 s when the server vanishes without closing it, so that its follower
    reconnects."""
    return await AsyncConnection.connect(
        dsn,
        autocommit=True,
        connect_timeout=10,
        application_name=application_name,
        options="-c idle_session_timeout=0",
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )
