"""The alert engine under load: 10,000 active rules over 200 symbols, prices written every second.

    .venv/bin/python bench/alert_engine.py [--rules 10000] [--symbols 200] [--seconds 60] [--crossings 5]

Starts a throwaway PostgreSQL cluster and the real influxd (the ones the tests use), migrates, writes the
rules straight into alert_rules (100 members; above/below with thresholds the prices never reach,
pct_change over 1 h and 1 d, volume_spike over 15 m), then runs the engine (this process) for
--seconds while a writer stores one ticker per symbol every second, as the feeder does, and makes
--crossings symbols a second cross the threshold of a webhook rule (up, then back down to re-arm).
A webhook receiver on loopback notes when each message arrives.

Prints: the evaluation's mean time per round (every rule, reads included) and its share of one core;
the engine process's CPU per second of market data; the time from the crossing price's timestamp to the
message at the receiver (p50, p99; the writer's own write time is part of it, as the feeder's 1 s flush
would be); notifications sent; peak RSS of the whole process (engine, writer and receiver).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from prometheus_client import CollectorRegistry

from marketdash.alerts.engine import AlertEngine
from marketdash.alerts.settings import AlertSettings
from marketdash.api.migrations import migrate
from marketdash.core.influx import InfluxSettings
from marketdash.core.schema import BUCKET_MARKETS, TICKER
from marketdash.core.service import serve
from marketdash_testing.alert_servers import HttpReceiver
from marketdash_testing.servers import InfluxDB2, free_port, postgres_cluster

MEMBERS = 100
BASE_PRICE = 100.0
CROSSING_THRESHOLD = 101.0


def _symbols(count: int) -> list[str]:
    return [f"S{n:03d}/USDT" for n in range(count)]


def _prepare_rules(dsn: str, symbols: list[str], rules: int, hook: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE ROLE marketdash_alerts LOGIN")
    migrate(dsn)
    random.seed(7)
    with psycopg.connect(dsn) as conn:
        members = [
            conn.execute(
                "INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id", (f"m{n}",)
            ).fetchone()[0]
            for n in range(MEMBERS)
        ]
        rows = []
        # One webhook rule per symbol: the crossings' rules.
        for i, symbol in enumerate(symbols):
            rows.append((members[i % MEMBERS], symbol, "above", CROSSING_THRESHOLD, 60, "webhook", hook))
        kinds = (
            ("above", lambda: BASE_PRICE * 10, 60),
            ("below", lambda: BASE_PRICE / 10, 60),
            ("pct_change", lambda: 50.0, 60),
            ("pct_change", lambda: 50.0, 1440),
            ("volume_spike", lambda: 20.0, 15),
        )
        while len(rows) < rules:
            condition, threshold, window = random.choice(kinds)
            member = random.choice(members)
            rows.append((member, random.choice(symbols), condition, threshold(), window, "email", None))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO alert_rules (user_id, asset, condition, threshold, window_minutes, channel,"
                " target, cooldown_seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, 0)",
                rows,
            )


async def _write_prices(
    influx: InfluxDB2, symbols: list[str], crossings: int, seconds: float, crossed_at: dict[str, list[float]]
) -> None:
    """One ticker per symbol a second. Each second `crossings` symbols go above the threshold and stay
    there for two writes, then come back (re-arming their rule): a crossing lasts longer than one of the
    engine's rounds, which see the newest price only."""
    async with httpx.AsyncClient(headers={"Authorization": f"Token {influx.token}"}, timeout=10) as client:
        url = f"{influx.url}/api/v2/write?org={influx.ORG}&bucket={BUCKET_MARKETS}&precision=ms"
        up: list[list[str]] = [[], []]
        deadline = time.monotonic() + seconds
        series = {s: TICKER.series(source="binance", symbol=s, asset_class="crypto") for s in symbols}
        while time.monotonic() < deadline:
            started = time.monotonic()
            # At a random point of each second: the engine's rounds and the writes must not stay in phase.
            await asyncio.sleep(random.uniform(0.0, 0.8))
            now_ms = int(time.time() * 1000)
            staying = set(up[0]) | set(up[1])
            going_up = random.sample([s for s in symbols if s not in staying], crossings)
            above = set(going_up) | set(up[1])
            lines = []
            for symbol in symbols:
                wobble = BASE_PRICE * (1 + random.uniform(-0.004, 0.004))
                price = BASE_PRICE * 1.02 if symbol in above else wobble
                lines.append(series[symbol].line({"last": price}, now_ms))
            response = await client.post(url, content="\n".join(lines).encode())
            response.raise_for_status()
            for symbol in going_up:
                crossed_at.setdefault(symbol, []).append(now_ms / 1000)
            up = [up[1], going_up]
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (/proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _run(args: argparse.Namespace, dsn: str, influx: InfluxDB2) -> None:
    receiver = HttpReceiver(free_port())
    await receiver.start()
    symbols = _symbols(args.symbols)
    _prepare_rules(dsn, symbols, args.rules, f"{receiver.url}/hook")
    influx.bucket(BUCKET_MARKETS)
    settings = AlertSettings(
        postgres_dsn=dsn.replace("://postgres@", "://marketdash_alerts@", 1),
        webhook_allowed_networks=["127.0.0.1/32"],
        max_notifications_per_user_hour=1_000_000,
        metrics_host="127.0.0.1",
        metrics_port=free_port(),
    )
    registry = CollectorRegistry()
    engine = AlertEngine(settings, InfluxSettings(url=influx.url, token=influx.token), registry)
    crossed_at: dict[str, list[float]] = {}
    stop = asyncio.Event()
    task = asyncio.create_task(serve(engine, settings, stop))
    # A first minute of prices, so that every symbol is fresh before the measured part.
    await _write_prices(influx, symbols, 0, 5, {})
    assert influx.pid is not None
    influxd = influx.pid
    cpu, influx_cpu, wall = time.process_time(), _cpu_seconds(influxd), time.monotonic()
    count0 = registry.get_sample_value("marketdash_alerts_evaluation_seconds_count") or 0.0
    sum0 = registry.get_sample_value("marketdash_alerts_evaluation_seconds_sum") or 0.0
    await _write_prices(influx, symbols, args.crossings, args.seconds, crossed_at)
    await asyncio.sleep(3)
    cpu, influx_cpu = time.process_time() - cpu, _cpu_seconds(influxd) - influx_cpu
    wall = time.monotonic() - wall
    rounds = (registry.get_sample_value("marketdash_alerts_evaluation_seconds_count") or 0.0) - count0
    spent = (registry.get_sample_value("marketdash_alerts_evaluation_seconds_sum") or 0.0) - sum0
    stop.set()
    await task
    await receiver.stop()

    bodies = [body for _, body in receiver.received]
    arrivals = [(body["asset"], at) for body, at in zip(bodies, receiver.arrived_at, strict=True)]
    # Each message answers the newest crossing of its symbol before it arrived.
    lags = [arrived - max(t for t in crossed_at[asset] if t <= arrived) for asset, arrived in arrivals]
    crossings = sum(len(times) for times in crossed_at.values())
    print(f"rules {args.rules} over {args.symbols} symbols, {args.seconds:.0f} s of prices (1/s per symbol)")
    print(
        f"evaluation: {rounds:.0f} rounds, mean {spent / max(rounds, 1) * 1000:.1f} ms per round "
        f"({spent / wall * 100:.0f} % of the wall time, reads included)"
    )
    print(
        f"CPU per second of market data: this process {cpu / wall:.2f} s (engine + writer + receiver),"
        f" influxd {influx_cpu / wall:.2f} s (the engine's reads + the writes)"
    )
    p50, p99, worst = _percentile(lags, 0.5), _percentile(lags, 0.99), max(lags, default=0.0)
    print(
        f"notifications: {len(arrivals)} of {crossings} crossings; crossing -> message"
        f" p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (the whole process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--crossings", type=int, default=5)
    args = parser.parse_args()
    with postgres_cluster() as dsn, tempfile.TemporaryDirectory() as scratch:
        influx = InfluxDB2(Path(scratch), free_port())
        influx.start()
        try:
            asyncio.run(_run(args, dsn, influx))
        finally:
            influx.stop()


if __name__ == "__main__":
    main()
