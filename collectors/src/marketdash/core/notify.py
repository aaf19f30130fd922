"""Following a PostgreSQL NOTIFY channel: what the services do to keep up with tables the API changes.

The rule: LISTEN first, then read (a change between the two is then seen either way); read again on
every notification, a burst of them (one statement per edit) drained before reading once; and read again
every `recheck_s` even without one, as a safety net. A connection error ends the follow: the caller
reconnects with its own back-off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

# How long a burst of notifications may keep arriving before the one read it causes.
BURST_S = 0.2


async def follow_channel(
    conn: psycopg.AsyncConnection[Any], channel: str, read: Callable[[], Awaitable[None]], *, recheck_s: float
) -> None:
    """Call `read` now and after each change notified on `channel` (a constant identifier), forever."""
    await conn.execute(f"LISTEN {channel}")
    while True:
        await read()
        changed = False
        async for _ in conn.notifies(timeout=recheck_s, stop_after=1):
            changed = True
        if changed:
            async for _ in conn.notifies(timeout=BURST_S):
                pass
