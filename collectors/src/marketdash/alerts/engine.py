"""The alert engine: rules followed from PostgreSQL, evaluated every second on the stored market data,
firings recorded with their rule's state, then delivered with retries; /metrics and /healthz.

One instance per stack (its state lives in PostgreSQL; two would race on the same firings). Nothing a
rule, a market datum or a channel holds stops it: an unexpected error fails that delivery or that round,
is logged, and the engine goes on. On SIGTERM it stops evaluating and lets the deliveries under way end
(each bounded by send_timeout_s), so that a redeploy does not send a message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from marketdash.alerts import message
from marketdash.alerts.delivery import Channel, DeliveryError, Notification, build_channels
from marketdash.alerts.market_view import MarketView
from marketdash.alerts.rules import Rule, RuleState, Verdict, evaluate
from marketdash.alerts.settings import AlertSettings
from marketdash.alerts.store import AlertStore, Due, RuleFollower
from marketdash.core.catalogue import catalogue_by_symbol
from marketdash.core.flux import FluxError, FluxReader
from marketdash.core.influx import InfluxSettings

log = logging.getLogger(__name__)

# /healthz fails when no evaluation has completed for this long (PostgreSQL or InfluxDB unreachable).
EVALUATION_GRACE_S = 120.0
# Deliveries under way at once; one slow receiver holds one slot for at most send_timeout_s.
MAX_CONCURRENT_DELIVERIES = 20
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rules = Gauge("marketdash_alerts_rules", "Active alert rules", registry=registry)
        self.stale = Gauge(
            "marketdash_alerts_rules_stale", "Rules whose market data is missing or stale", registry=registry
        )
        self.fired = Counter(
            "marketdash_alerts_fired_total", "Rules fired", ["condition", "status"], registry=registry
        )
        self.deliveries = Counter(
            "marketdash_alerts_deliveries_total",
            "Delivery attempts by outcome (sent, retry, failed)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.pending = Gauge(
            "marketdash_alerts_deliveries_pending", "Events waiting for their channel", registry=registry
        )
        self.evaluation = Histogram(
            "marketdash_alerts_evaluation_seconds",
            "One evaluation of every rule, reads included",
            registry=registry,
        )
        self.evaluated_at = Gauge(
            "marketdash_alerts_last_evaluation_timestamp_seconds",
            "When every rule was last evaluated",
            registry=registry,
        )
        self.lag = Histogram(
            "marketdash_alerts_notification_lag_seconds",
            "From the market data that crossed a threshold to its message handed to the channel",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.read_errors = Counter(
            "marketdash_alerts_read_errors_total", "Failed reads of market data", registry=registry
        )


class AlertEngine:
    def __init__(
        self,
        settings: AlertSettings,
        influx: InfluxSettings,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = AlertMetrics(self.registry)
        self.clock = clock
        self.reader = FluxReader(influx)
        self.view = MarketView(
            self.reader.rows,
            stale_after_s=settings.stale_after_s,
            baseline_hours=settings.volume_baseline_hours,
            clock=clock,
        )
        self.store = AlertStore(settings.postgres_dsn, settings.max_notifications_per_user_hour)
        self.follower = RuleFollower(settings.postgres_dsn, self.set_rules)
        self.channels: dict[str, Channel] = build_channels(settings)
        self.writer = None  # its records go to PostgreSQL (AlertStore)
        self.rules: dict[int, Rule] = {}
        self.states: dict[int, RuleState] = {}
        self.asset_classes = {symbol: asset.asset_class for symbol, asset in catalogue_by_symbol().items()}
        self.evaluated_at: float | None = None
        self.last_error: str | None = None
        self._deliver_now = asyncio.Event()
        self._rules_loaded = asyncio.Event()
        self._stopping = asyncio.Event()
        self._deliveries: dict[int, asyncio.Task[None]] = {}
        self._delivery_slots = asyncio.Semaphore(MAX_CONCURRENT_DELIVERIES)

    async def set_rules(self, rules: dict[int, Rule], stored: dict[int, RuleState]) -> None:
        # The engine's own state is at least as new as what it stored; the database's for rules it lacks.
        merged = {rule_id: self.states.get(rule_id) or stored.get(rule_id) for rule_id in rules}
        self.states = {rule_id: state for rule_id, state in merged.items() if state is not None}
        if rules.keys() != self.rules.keys():
            log.info("alert rules loaded", extra={"rules": len(rules)})
        self.rules = rules
        self.metrics.rules.set(len(rules))
        self._rules_loaded.set()

    async def evaluate_once(self) -> None:
        """Evaluate every rule once; firings and state changes count only once stored.

        The rules and their states are taken together before the reads (the rule set may be replaced
        meanwhile); the results are kept only for rules still there, unchanged."""
        rules, states = dict(self.rules), dict(self.states)
        await self.view.refresh(rules.values())
        now = self.clock()
        firings: list[tuple[message.Firing, str]] = []
        changed: dict[int, RuleState] = {}
        stale = 0
        for rule in rules.values():
            observation = self.view.observe(rule)
            verdict, state = evaluate(
                rule,
                states.get(rule.id),
                observation,
                now,
                stale_after_s=self.settings.stale_after_s,
                hysteresis=self.settings.hysteresis if rule.hysteresis is None else rule.hysteresis,
            )
            if verdict is Verdict.STALE:
                stale += 1
            elif verdict is not Verdict.HOLD:
                changed[rule.id] = state
            if verdict is Verdict.FIRE and observation is not None:
                firing = message.Firing(
                    rule=rule,
                    value=observation.value,
                    price=self.view.price(rule.asset),
                    change_pct=self.view.change_pct(rule.asset, rule.window_minutes),
                    at=now,
                    observed_at=observation.at,
                )
                firings.append((firing, message.render(firing, self.asset_classes.get(rule.asset))))
        self.metrics.stale.set(stale)
        if changed:
            recorded = await self.store.record(firings, changed)
            # A failed write leaves the rules as they were: the next round fires them.
            for rule_id, state in changed.items():
                current = self.rules.get(rule_id)
                if current is not None and current.version == rules[rule_id].version:
                    self.states[rule_id] = state
            for entry in recorded:
                rule = entry.firing.rule
                self.metrics.fired.labels(rule.condition, entry.status).inc()
                log.info(
                    "alert fired",
                    extra={
                        "rule": rule.id,
                        "user": rule.user_id,
                        "asset": rule.asset,
                        "value": entry.firing.value,
                        "status": entry.status,
                    },
                )
            if recorded:
                self._deliver_now.set()
        self.evaluated_at = now
        self.metrics.evaluated_at.set(now)

    async def _evaluate_forever(self) -> None:
        while not self._stopping.is_set():
            started = time.perf_counter()
            try:
                with self.metrics.evaluation.time():
                    await self.evaluate_once()
                self.last_error = None
            except FluxError as exc:
                self.metrics.read_errors.inc()
                self._failed("market data unreadable", exc)
            except (psycopg.Error, OSError) as exc:
                self._failed("alert state not stored", exc)
            except Exception as exc:
                log.exception("alert evaluation failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, self.settings.evaluate_every_s - elapsed)):
                    await self._stopping.wait()

    def _failed(self, what: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if error != self.last_error:
            log.warning(what, extra={"error": error})
        self.last_error = error

    async def deliver_due(self) -> int:
        """Start sending every event that is due and not under way; how many were started."""
        due = [event for event in await self.store.due() if event.id not in self._deliveries]
        self.metrics.pending.set(len(due) + len(self._deliveries))
        for event in due:
            task = asyncio.create_task(self._deliver(event))
            self._deliveries[event.id] = task
            task.add_done_callback(lambda _, event_id=event.id: self._deliveries.pop(event_id, None))
        return len(due)

    async def _deliver(self, event: Due) -> None:
        notification = Notification(
            title=event.message.split("\n", 1)[0],
            text=event.message,
            fields={"event_id": event.id, "asset": event.asset},
        )
        async with self._delivery_slots:
            try:
                channel = self.channels[event.channel]
                async with asyncio.timeout(self.settings.send_timeout_s):
                    await channel.send(event.target, notification)
            except DeliveryError as exc:
                await self._delivery_failed(event, exc)
                return
            except TimeoutError:
                error = f"no answer within {self.settings.send_timeout_s:.0f} s"
                await self._delivery_failed(event, DeliveryError(error, retry=True))
                return
            except Exception as exc:
                log.exception("alert delivery failed unexpectedly", extra={"event": event.id})
                await self._delivery_failed(event, DeliveryError(f"{type(exc).__name__}: {exc}", retry=False))
                return
        self.metrics.deliveries.labels(event.channel, "sent").inc()
        if event.observed_at is not None:
            self.metrics.lag.observe(max(0.0, self.clock() - event.observed_at))
        await self.store.delivered(event.id)

    async def _delivery_failed(self, event: Due, exc: DeliveryError) -> None:
        attempt = event.attempts + 1
        extra = {"event": event.id, "channel": event.channel, "attempt": attempt, "error": str(exc)}
        if exc.retry and attempt < self.settings.delivery_attempts:
            delay = self.settings.retry.delay(event.attempts)
            if exc.retry_after_s is not None:
                # The server's own wish, within the engine's bounds.
                delay = min(max(exc.retry_after_s, self.settings.retry_initial_s), self.settings.retry_max_s)
            self.metrics.deliveries.labels(event.channel, "retry").inc()
            log.warning("alert delivery failed, will retry", extra=extra | {"retry_in_s": round(delay, 1)})
            await self.store.retry(event.id, str(exc), delay)
        else:
            self.metrics.deliveries.labels(event.channel, "failed").inc()
            log.error("alert delivery failed for good", extra=extra)
            await self.store.failed(event.id, str(exc))

    async def _deliver_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._deliver_now.wait()
            self._deliver_now.clear()
            if self._stopping.is_set():
                break
            try:
                await self.deliver_due()
            except (psycopg.Error, OSError) as exc:
                self._failed("alert deliveries unreadable", exc)

    def health(self) -> tuple[bool, dict[str, Any]]:
        age = None if self.evaluated_at is None else round(self.clock() - self.evaluated_at, 1)
        healthy = self.follower.loaded_at is not None and age is not None and age < EVALUATION_GRACE_S
        details = {
            "rules": len(self.rules),
            "last_evaluation_age_s": age,
            "error": self.last_error or self.follower.last_error,
        }
        return healthy, details

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate and deliver until `stop` is set; then start no delivery and return once those under way
        have ended."""
        self._stopping = stop
        log.info("alert engine started")
        follower = asyncio.create_task(self.follower.run())
        try:
            # Nothing to evaluate until the rules are known.
            loaded = asyncio.create_task(self._rules_loaded.wait())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({loaded, stopping}, return_when=asyncio.FIRST_COMPLETED)
            loaded.cancel()
            stopping.cancel()
            await asyncio.gather(self._evaluate_forever(), self._deliver_forever())
            if self._deliveries:
                await asyncio.wait(set(self._deliveries.values()), timeout=self.settings.send_timeout_s + 5)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    async def close(self) -> None:
        for task in list(self._deliveries.values()):
            task.cancel()
        await self.reader.close()
        for channel in self.channels.values():
            await channel.close()
        await self.store.close()
