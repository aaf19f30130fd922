"""The service shell: what every collector does between its start and its exit, in order."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.schema import BUCKET_MARKETS, TICKER
from marketdash.core.service import PartEndedError, ServiceSettings, serve, until_stopped
from marketdash_testing.servers import VictoriaMetrics, eventually, free_port


class Ticking:
    """A service that queues one ticker point every 10 ms until it is stopped, and notes what happened."""

    def __init__(self, influx: InfluxSettings) -> None:
        self.registry = CollectorRegistry()
        self.writer = InfluxWriter(influx, self.registry)
        self.written = 0
        self.events: list[str] = []
        self.series = TICKER.series(source="shell", symbol="BTC/USDT", asset_class="crypto")

    def health(self) -> tuple[bool, dict[str, Any]]:
        return True, {"written": self.written}

    async def run(self, stop: asyncio.Event) -> None:
        self.events.append("run")
        while not stop.is_set():
            self.written += 1
            self.writer.write(
                BUCKET_MARKETS, self.series.line({"last": float(self.written)}, int(time.time() * 1000))
            )
            await asyncio.sleep(0.01)
        self.events.append("stopped")

    async def close(self) -> None:
        # The writer has not been closed yet: everything the service wrote is still queued.
        self.events.append(f"close, {self.writer.pending} of {self.written} queued")


async def test_a_stopped_service_closes_then_its_writer_writes_everything_it_queued(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    # A flush interval longer than the run: every point is still queued when the stop comes.
    influx = InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=30)
    service = Ticking(influx)
    settings = ServiceSettings(metrics_host="127.0.0.1", metrics_port=free_port())
    stop = asyncio.Event()
    task = asyncio.create_task(serve(service, settings, stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.metrics_port}") as client:
        assert await eventually(lambda: service.written >= 20, 10)
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
        stop.set()
        await asyncio.wait_for(task, 15)
        with pytest.raises(httpx.ConnectError):
            await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["written"] >= 20
    assert "marketdash_influx_queue_points" in metrics.text
    assert service.events == ["run", "stopped", f"close, {service.written} of {service.written} queued"]
    stored = victoria_metrics_server.export('{__name__="ticker_last",source="shell"}')
    assert sum(len(samples) for samples in stored.values()) == service.written


class BrokenClose(Ticking):
    async def close(self) -> None:
        raise OSError("the exchange client would not close")


async def test_the_writer_still_writes_what_was_queued_when_closing_the_service_fails(
    victoria_metrics_server: VictoriaMetrics,
) -> None:
    service = BrokenClose(InfluxSettings(url=victoria_metrics_server.url, flush_interval_s=30))
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(service, ServiceSettings(metrics_host="127.0.0.1", metrics_port=free_port()), stop)
    )
    assert await eventually(lambda: service.written >= 20, 10)
    stop.set()
    with pytest.raises(OSError, match="would not close"):
        await asyncio.wait_for(task, 15)
    stored = victoria_metrics_server.export('{__name__="ticker_last",source="shell"}')
    assert sum(len(samples) for samples in stored.values()) == service.written


async def test_a_part_that_fails_stops_the_others_and_its_error_is_raised() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def failing() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("the exchange client broke")

    with pytest.raises(RuntimeError, match="the exchange client broke"):
        await until_stopped(asyncio.Event(), [asyncio.create_task(forever()), asyncio.create_task(failing())])
    assert cancelled.is_set()


async def test_a_part_that_ends_without_an_error_before_the_stop_is_a_failure_too() -> None:
    async def gives_up() -> None:
        await asyncio.sleep(0.01)

    with pytest.raises(PartEndedError, match="watchlists ended"):
        await asyncio.wait_for(
            until_stopped(asyncio.Event(), [asyncio.create_task(gives_up(), name="watchlists")]), 5
        )


async def test_the_stop_event_cancels_the_parts_and_returns() -> None:
    stop = asyncio.Event()
    part = asyncio.create_task(asyncio.Event().wait())
    asyncio.get_running_loop().call_later(0.05, stop.set)
    await asyncio.wait_for(until_stopped(stop, [part]), 5)
    assert part.cancelled()


def test_a_service_that_cannot_start_logs_why_and_exits_1(tmp_path) -> None:
    """Its metrics port is taken: the process says so in its JSON log and exits 1, for Docker to restart."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **os.environ,
            "MARKETDASH_NEWS_METRICS_HOST": "127.0.0.1",
            "MARKETDASH_NEWS_METRICS_PORT": str(taken.getsockname()[1]),
            "MARKETDASH_NEWS_DATA_DIR": str(tmp_path),
            "MARKETDASH_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
        }
        run = subprocess.run(
            [sys.executable, "-m", "marketdash.news"], env=env, capture_output=True, text=True, timeout=60
        )
    assert run.returncode == 1, run.stderr[-2000:]
    logs = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    failed = [entry for entry in logs if entry["event"] == "service failed"]
    assert len(failed) == 1
    assert failed[0]["service"] == "news"
    assert "address already in use" in failed[0]["exception"].lower()


def test_an_unknown_log_level_is_refused_by_name() -> None:
    env = {**os.environ, "MARKETDASH_ALERTS_LOG_LEVEL": "verbose"}
    run = subprocess.run(
        [sys.executable, "-m", "marketdash.alerts"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, run.stderr[-2000:]
    refused = [json.loads(line) for line in run.stderr.splitlines() if "setting refused" in line]
    assert [entry["setting"] for entry in refused] == ["MARKETDASH_ALERTS_LOG_LEVEL"]
    assert "'verbose' is not a log level" in refused[0]["error"]


def test_help_names_the_settings_and_starts_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "marketdash.alerts", "--help"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0
    assert "MARKETDASH_ALERTS_*" in run.stdout
