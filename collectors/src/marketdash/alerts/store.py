"""The alert engine's PostgreSQL side: the active rules (followed through NOTIFY), their state, the events.

A firing is recorded in one transaction with the rule's new state, so after a restart or a redeploy the
engine neither fires the same crossing again nor forgets one: either both are stored, or neither is and
the next evaluation fires it. Events are the delivery queue: 'triggered' until the channel took them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from marketdash.alerts.message import Firing
from marketdash.alerts.rules import Rule, RuleState
from marketdash.core.backoff import RECONNECT, Backoff
from marketdash.core.notify import follow_channel

log = logging.getLogger(__name__)

CHANNEL = "alert_rules_changed"
_ACTIVE_RULES = """
SELECT r.id, r.user_id, r.asset, r.condition, r.threshold::float8 AS threshold, r.window_minutes,
       r.channel, r.target, r.cooldown_seconds, r.hysteresis_pct::float8 AS hysteresis_pct,
       s.rule_version, s.armed, s.last_fired_at
  FROM alert_rules r LEFT JOIN alert_rule_state s ON s.rule_id = r.id
 WHERE r.active
"""
# Only a rule still active fires: one deactivated or deleted since the last load records nothing.
_INSERT_EVENT = """
INSERT INTO alert_events (rule_id, user_id, asset, condition, threshold, value, channel, target, status,
                          message, triggered_at, observed_at)
SELECT %(rule_id)s, %(user_id)s, %(asset)s, %(condition)s, %(threshold)s, %(value)s, %(channel)s,
       %(target)s, %(status)s, %(message)s, %(triggered_at)s, %(observed_at)s
 WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = %(rule_id)s AND active)
RETURNING id
"""
_UPSERT_STATE = """
INSERT INTO alert_rule_state (rule_id, rule_version, armed, last_fired_at)
SELECT %(rule_id)s, %(version)s, %(armed)s, %(last_fired_at)s
 WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = %(rule_id)s AND active)
ON CONFLICT (rule_id) DO UPDATE SET rule_version = excluded.rule_version, armed = excluded.armed,
       last_fired_at = excluded.last_fired_at, updated_at = now()
"""
_RECENT_NOTIFICATIONS = """
SELECT count(*) FROM alert_events
 WHERE user_id = %s AND status <> 'suppressed' AND triggered_at > now() - interval '1 hour'
"""
_DUE = """
SELECT id, user_id, asset, channel, target, message, attempts, observed_at FROM alert_events
 WHERE status = 'triggered' AND (next_attempt_at IS NULL OR next_attempt_at <= now())
 ORDER BY id LIMIT %s
"""


def rule_version(row: dict[str, Any]) -> str:
    """What the rule tests; an edit of any of it starts the rule afresh (armed, no cooldown)."""
    return (
        f"{row['asset']}|{row['condition']}|{row['threshold']!r}|{row['window_minutes']}"
        f"|{row['hysteresis_pct']!r}"
    )


def _unix(stamp: datetime | None) -> float | None:
    return stamp.timestamp() if stamp is not None else None


def _stamp(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None


def rules_from_rows(rows: Iterable[dict[str, Any]]) -> tuple[dict[int, Rule], dict[int, RuleState]]:
    rules: dict[int, Rule] = {}
    states: dict[int, RuleState] = {}
    for row in rows:
        rule = Rule(
            id=row["id"],
            user_id=row["user_id"],
            asset=row["asset"],
            condition=row["condition"],
            threshold=row["threshold"],
            window_minutes=row["window_minutes"],
            channel=row["channel"],
            target=row["target"],
            cooldown_seconds=row["cooldown_seconds"],
            version=rule_version(row),
            hysteresis=None if row["hysteresis_pct"] is None else row["hysteresis_pct"] / 100.0,
        )
        rules[rule.id] = rule
        if row["rule_version"] is not None:
            states[rule.id] = RuleState(row["rule_version"], row["armed"], _unix(row["last_fired_at"]))
    return rules, states


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: int
    firing: Firing
    status: str


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    user_id: int
    asset: str
    channel: str
    target: str | None
    message: str
    attempts: int
    observed_at: float | None


class AlertStore:
    def __init__(self, dsn: str, max_per_user_hour: int) -> None:
        self.dsn = dsn
        self.max_per_user_hour = max_per_user_hour
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, row_factory=dict_row, connect_timeout=10
            )
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def record(self, firings: list[tuple[Firing, str]], states: dict[int, RuleState]) -> list[Recorded]:
        """Store the firings (with their message) and the changed states, all or nothing. A rule
        deactivated or deleted since it was read records neither: its firing did not happen."""
        conn = await self._connection()
        recorded = []
        async with conn.transaction():
            for firing, message in firings:
                rule = firing.rule
                cursor = await conn.execute(_RECENT_NOTIFICATIONS, (rule.user_id,))
                sent = (await cursor.fetchone() or {"count": 0})["count"]
                status = "triggered" if sent < self.max_per_user_hour else "suppressed"
                cursor = await conn.execute(
                    _INSERT_EVENT,
                    {
                        "rule_id": rule.id,
                        "user_id": rule.user_id,
                        "asset": rule.asset,
                        "condition": rule.condition,
                        "threshold": rule.threshold,
                        "value": firing.value,
                        "channel": rule.channel,
                        "target": rule.target,
                        "status": status,
                        "message": message,
                        "triggered_at": _stamp(firing.at),
                        "observed_at": _stamp(firing.observed_at),
                    },
                )
                row = await cursor.fetchone()
                if row is not None:
                    recorded.append(Recorded(row["id"], firing, status))
            unrecorded = {firing.rule.id for firing, _ in firings} - {
                entry.firing.rule.id for entry in recorded
            }
            for rule_id, state in states.items():
                if rule_id in unrecorded:
                    continue
                await conn.execute(
                    _UPSERT_STATE,
                    {
                        "rule_id": rule_id,
                        "version": state.version,
                        "armed": state.armed,
                        "last_fired_at": _stamp(state.last_fired_at),
                    },
                )
        return recorded

    async def due(self, limit: int = 100) -> list[Due]:
        conn = await self._connection()
        cursor = await conn.execute(_DUE, (limit,))
        return [
            Due(
                id=row["id"],
                user_id=row["user_id"],
                asset=row["asset"],
                channel=row["channel"],
                target=row["target"],
                message=row["message"],
                attempts=row["attempts"],
                observed_at=_unix(row["observed_at"]),
            )
            for row in await cursor.fetchall()
        ]

    async def delivered(self, event_id: int) -> None:
        await self._finish(
            "UPDATE alert_events SET status = 'sent', delivered_at = now(), attempts = attempts + 1,"
            " next_attempt_at = NULL WHERE id = %s AND status = 'triggered'",
            (event_id,),
        )

    async def retry(self, event_id: int, error: str, delay_s: float) -> None:
        await self._finish(
            "UPDATE alert_events SET attempts = attempts + 1, last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s AND status = 'triggered'",
            (error, delay_s, event_id),
        )

    async def failed(self, event_id: int, error: str) -> None:
        await self._finish(
            "UPDATE alert_events SET status = 'failed', attempts = attempts + 1, last_error = %s,"
            " next_attempt_at = NULL WHERE id = %s AND status = 'triggered'",
            (error, event_id),
        )

    async def _finish(self, statement: str, params: tuple[Any, ...]) -> None:
        conn = await self._connection()
        await conn.execute(statement, params)


class RuleFollower:
    """Loads the active rules at start, again on every NOTIFY (bursts coalesce), and every `recheck_s`."""

    def __init__(
        self,
        dsn: str,
        on_rules: Callable[[dict[int, Rule], dict[int, RuleState]], Awaitable[None]],
        *,
        recheck_s: float = 60.0,
        backoff: Backoff = RECONNECT,
    ) -> None:
        self.dsn = dsn
        self.on_rules = on_rules
        self.recheck_s = recheck_s
        self.backoff = backoff
        self.loaded_at: float | None = None
        self.last_error: str | None = None
        self._attempt = 0

    async def run(self) -> None:
        self._attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, row_factory=dict_row, connect_timeout=10
                ) as conn:
                    await follow_channel(conn, CHANNEL, lambda: self._load(conn), recheck_s=self.recheck_s)
            except (psycopg.Error, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert rules unreadable", extra={"error": self.last_error})
            await asyncio.sleep(self.backoff.delay(self._attempt))
            self._attempt += 1

    async def _load(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
        cursor = await conn.execute(_ACTIVE_RULES)
        rules, states = rules_from_rows(await cursor.fetchall())
        self.loaded_at = asyncio.get_running_loop().time()
        self.last_error = None
        self._attempt = 0
        await self.on_rules(rules, states)
