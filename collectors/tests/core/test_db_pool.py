"""The shared PostgreSQL pool survives a server that drops its connections (as a restart does)."""

from __future__ import annotations

import psycopg

from marketdash.core.db import open_pool


async def test_connections_dropped_by_the_server_are_replaced_before_use(postgres_db):
    pool = await open_pool(postgres_db, name="test", min_size=3, max_size=3)
    try:
        await pool.wait()
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert killed == (3,)
        # The readiness probe's timeout: three dead connections found one by one, with the pool's
        # back-off between checks, would take longer than that.
        for _ in range(3):
            async with pool.connection(timeout=2.0) as conn:
                row = await (await conn.execute("SELECT 1 AS one")).fetchone()
            assert row == {"one": 1}
    finally:
        await pool.close()
