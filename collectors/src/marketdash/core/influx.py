"""Asyncio writer to the InfluxDB v2 write API: batched, gzipped, retried, bounded, and never silent.

Callers hand it lines already encoded by `marketdash.core.schema` (`write` is O(1) and never blocks the
event loop on the network). One task sends batches of up to `batch_size` lines, as soon as that many are
waiting or at most `flush_interval_s` after the oldest one arrived. A failed batch is retried with capped,
jittered exponential back-off for as long as it takes (an outage of InfluxDB), while new points keep
queueing; the queue is bounded, and every point it must give up (queue full, rejected by the server as
malformed, still queued at shutdown) is counted in `marketdash_influx_points_dropped_total{reason}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketdash.core.backoff import Backoff
from marketdash.core.schema import BUCKETS, ORG, PRECISION

log = logging.getLogger(__name__)

# Statuses that will fail the same way however often they are retried: the batch itself is bad.
_REJECTED = frozenset({400, 422})
_TOO_LARGE = 413
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class InfluxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETDASH_INFLUX_")

    url: str = "http://influxdb:8086"
    token: str = ""
    org: str = ORG
    batch_size: int = Field(5000, ge=1)
    flush_interval_s: float = Field(1.0, gt=0)
    # About 100 bytes a line: 200k lines hold minutes of a busy feed in ~20-40 MB during an outage.
    max_buffered_points: int = Field(200_000, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    # While InfluxDB cannot be reached, its /health is asked this often: writes resume as soon as it
    # answers, not at the end of a back-off that has grown to backoff_max_s.
    probe_every_s: float = Field(1.0, gt=0)
    gzip: bool = True
    # Level 1 compresses line protocol ~8x at a fraction of level 6's CPU.
    gzip_level: int = Field(1, ge=1, le=9)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial_s, self.backoff_max_s)


class InfluxWriter:
    def __init__(
        self,
        settings: InfluxSettings,
        registry: CollectorRegistry | None = None,
        lag_observer: Callable[[list[float]], None] | None = None,
    ) -> None:
        self.settings = settings
        self._endpoint = settings.url.rstrip("/") + "/api/v2/write"
        self._health = settings.url.rstrip("/") + "/health"
        self._probe_timeout = aiohttp.ClientTimeout(total=max(1.0, settings.probe_every_s))
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if settings.token:
            self._headers["Authorization"] = f"Token {settings.token}"
        if settings.gzip:
            self._headers["Content-Encoding"] = "gzip"
        # (bucket, line, event time as a Unix timestamp): the event time gives the event-to-write lag.
        self._queue: deque[tuple[str, str, float]] = deque()
        self._inflight = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lag_observer = lag_observer
        self.last_success: float | None = None
        self.last_error: str | None = None

        self.registry = registry = registry if registry is not None else CollectorRegistry()
        self._written = Counter(
            "marketdash_influx_points_written",
            "Points acknowledged by InfluxDB",
            ["bucket"],
            registry=registry,
        )
        self._dropped = Counter(
            "marketdash_influx_points_dropped",
            "Points given up: buffer_full, rejected (malformed batch), shutdown",
            ["reason"],
            registry=registry,
        )
        self._retries = Counter(
            "marketdash_influx_write_retries", "Failed write attempts retried", registry=registry
        )
        self._latency = Histogram(
            "marketdash_influx_write_latency_seconds", "Duration of one write request", registry=registry
        )
        self._lag = Histogram(
            "marketdash_influx_event_to_write_lag_seconds",
            "From the event (exchange timestamp or receipt) to InfluxDB's acknowledgement",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        Gauge(
            "marketdash_influx_queue_points", "Points waiting to be written", registry=registry
        ).set_function(lambda: len(self._queue) + self._inflight)
        for reason in ("buffer_full", "rejected", "shutdown"):
            self._dropped.labels(reason)

    # --- producer side ----------------------------------------------------------------------------

    def write(self, bucket: str, line: str, event_time: float | None = None) -> None:
        """Queue one line; if the buffer is full the oldest point makes room (and is counted)."""
        if bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}; the schema's buckets are {BUCKETS}")
        queue = self._queue
        if len(queue) >= self.settings.max_buffered_points:
            queue.popleft()
            self._dropped.labels("buffer_full").inc()
        queue.append((bucket, line, time.time() if event_time is None else event_time))
        if len(queue) >= self.settings.batch_size:
            self._wakeup.set()

    def write_many(self, bucket: str, lines: Iterable[str], event_time: float | None = None) -> None:
        for line in lines:
            self.write(bucket, line, event_time)

    @property
    def pending(self) -> int:
        return len(self._queue) + self._inflight

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s))
        self._task = asyncio.create_task(self._run(), name="influx-writer")

    async def flush(self, within_s: float) -> bool:
        """Wait until everything queued so far is written; False if it could not be done in time."""
        deadline = time.monotonic() + within_s
        while self.pending and time.monotonic() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        return not self.pending

    async def close(self, within_s: float = 5.0) -> None:
        """Write what is queued within `within_s`, then stop; whatever is left is counted as dropped."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), within_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        left = self.pending
        if left:
            self._dropped.labels("shutdown").inc(left)
            log.error("influx writer stopped with points unwritten", extra={"points_dropped": left})
        self._queue.clear()
        self._inflight = 0
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> InfluxWriter:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # --- sender side ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.settings.flush_interval_s)
            self._wakeup.clear()
            # Drain whole batches back to back (what piled up during an outage goes out at full speed),
            # then the remainder, which has waited at most one flush interval.
            while self._queue:
                await self._send_next_batch()
            if self._closing:
                return

    async def _send_next_batch(self) -> None:
        queue, size = self._queue, self.settings.batch_size
        bucket = queue[0][0]
        lines: list[str] = []
        events: list[float] = []
        # One request per bucket: take the run of consecutive points of the head's bucket.
        while queue and len(lines) < size and queue[0][0] == bucket:
            _, line, event_time = queue.popleft()
            lines.append(line)
            events.append(event_time)
        # Still counted as pending if close() cancels the delivery, so it is counted as dropped.
        self._inflight = len(lines)
        await self._deliver(bucket, lines)
        self._inflight = 0
        now = time.time()
        lags = [now - event for event in events]
        observe = self._lag.observe
        for lag in lags:
            observe(lag)
        if self._lag_observer is not None:
            self._lag_observer(lags)

    async def _deliver(self, bucket: str, lines: list[str]) -> None:
        """Send until InfluxDB accepts or definitively rejects the batch; retries have no limit."""
        body = "\n".join(lines).encode()
        if self.settings.gzip:
            body = gzip.compress(body, compresslevel=self.settings.gzip_level)
        params = {"org": self.settings.org, "bucket": bucket, "precision": PRECISION}
        attempt = 0
        while True:
            retry_after: float | None = None
            started = time.monotonic()
            try:
                assert self._session is not None, "start() the writer before writing"
                async with self._session.post(
                    self._endpoint, params=params, data=body, headers=self._headers
                ) as resp:
                    status, text = resp.status, (await resp.text())[:500]
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status, text = None, f"{type(exc).__name__}: {exc}"
            self._latency.observe(time.monotonic() - started)
            if status is not None and 200 <= status < 300:
                self._written.labels(bucket).inc(len(lines))
                self.last_success, self.last_error = time.time(), None
                if attempt:
                    log.info("influx writes resumed", extra={"bucket": bucket, "attempts": attempt + 1})
                return
            if status == _TOO_LARGE and len(lines) > 1:
                half = len(lines) // 2
                await self._deliver(bucket, lines[:half])
                await self._deliver(bucket, lines[half:])
                return
            if status in _REJECTED or status == _TOO_LARGE:
                self._dropped.labels("rejected").inc(len(lines))
                log.error(
                    "influx rejected a batch",
                    extra={"bucket": bucket, "status": status, "points_dropped": len(lines), "body": text},
                )
                return
            self.last_error = f"HTTP {status}: {text}" if status else text
            self._retries.inc()
            delay = self.settings.backoff.delay(attempt)
            if retry_after is not None:
                delay = min(max(delay, retry_after), self.settings.backoff_max_s)
            if attempt == 0 or attempt % 10 == 0:
                log.warning(
                    "influx write failed, retrying",
                    extra={"bucket": bucket, "error": self.last_error, "retry_in_s": round(delay, 2)},
                )
            attempt += 1
            if status is None:
                await self._reachable_within(delay)
            else:  # it answered, with an error: the back-off spares it
                await asyncio.sleep(delay)

    async def _reachable_within(self, seconds: float) -> None:
        """Wait `seconds`, or only until InfluxDB answers its /health: a probe costs it next to nothing,
        where a retried batch can be megabytes."""
        assert self._session is not None
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(self.settings.probe_every_s, left))
            try:
                async with self._session.get(self._health, timeout=self._probe_timeout) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError, OSError):
                continue


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
