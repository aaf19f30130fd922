"""The PostgreSQL connection pool every service opens the same way."""

from __future__ import annotations

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


async def open_pool(
    dsn: str, *, name: str, min_size: int = 1, max_size: int = 10, acquire_timeout: float = 10.0
) -> AsyncConnectionPool:
    """An opened pool of autocommit connections returning rows as dicts.

    Autocommit: a read is one round trip, and writers say where their transactions are with
    ``conn.transaction()``. ``wait=False``: a service starts while PostgreSQL is still coming up and
    reports it through its readiness probe instead of crashing. ``check``: a connection is tested
    before it is handed out, so after a PostgreSQL restart the first requests get fresh connections
    instead of failing one by one on the dead ones (one round trip per checkout, on loopback or the
    Docker network).
    """
    pool = AsyncConnectionPool(
        dsn,
        name=name,
        min_size=min_size,
        max_size=max_size,
        timeout=acquire_timeout,
        kwargs={"autocommit": True, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=False)
    return pool
