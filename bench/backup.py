#!/usr/bin/env python3
"""Backup size and duration of a month of market data, and of one more day (the incremental cost).

Writes N days of 1-minute candles for S symbols (open, high, low, close, volume: five values a minute, as
the feeder writes them) into a real influxd, then runs the backup role's own code path for InfluxDB
(roles/backup/files/bloomberg-backup.py: the backup API, one file per shard) and restic into a
repository on disk (S3 adds the network, not the work). Then one more day is written and backed up
again. Then the month's backup is restored into a second, fresh influxd (the restore API) and the values
counted there. Prints: candles written, backup API time and size, restic time, what the repository
stores (compressed) and what each run added, and the restore time.

    python bench/backup.py [--days 30] [--symbols 50]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from marketdash_testing.servers import InfluxDB2, free_port

ROOT = Path(__file__).resolve().parents[1]

SPEC = importlib.util.spec_from_file_location(
    "bloomberg_backup", ROOT / "roles/backup/files/bloomberg-backup.py"
)
assert SPEC is not None
assert SPEC.loader is not None
backup = sys.modules["bloomberg_backup"] = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(backup)


def write_days(server: InfluxDB2, symbols: int, first_day: int, days: int, start: int) -> int:
    """Random-walk candles (seeded per symbol and day): TSM compresses regular series to almost nothing,
    so a regular synthetic market would understate what a real one costs."""
    written = 0
    with httpx.Client(timeout=120) as client:
        for day in range(first_day, first_day + days):
            for s in range(symbols):
                walk = random.Random(day * 100_003 + s)
                price = 100.0 + 37 * s
                lines = []
                for minute in range(1440):
                    t = start + (day * 1440 + minute) * 60
                    open_ = price
                    price = round(price * math.exp(walk.gauss(0, 0.0008)), 2)
                    high = round(max(open_, price) * (1 + abs(walk.gauss(0, 0.0003))), 2)
                    low = round(min(open_, price) * (1 - abs(walk.gauss(0, 0.0003))), 2)
                    volume = round(walk.lognormvariate(3, 1), 4)
                    lines.append(
                        f"candles,symbol=SYM{s}/USDT,source=binance,interval=1m open={open_},"
                        f"high={high},low={low},close={price},volume={volume} {t}"
                    )
                response = client.post(
                    f"{server.url}/api/v2/write",
                    params={"org": InfluxDB2.ORG, "bucket": "markets", "precision": "s"},
                    headers={"Authorization": f"Token {server.token}"},
                    content="\n".join(lines),
                )
                response.raise_for_status()
                written += len(lines)
    return written


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stored(repo: Path) -> int:
    """What the repository holds on its storage (restic's raw-data statistics: packs as written)."""
    return json.loads(restic(repo, "stats", "--json", "--mode", "raw-data"))["total_size"]


def restic(repo: Path, *args: str) -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": "bench-password-16chars"}
    return subprocess.run(["restic", *args], env=env, check=True, capture_output=True, text=True).stdout


def restore_round(staging: Path, work: Path, expected: dict) -> None:
    fresh = InfluxDB2(work / "fresh", free_port())
    (work / "fresh").mkdir()
    fresh.start()
    try:
        started = time.perf_counter()
        restoring = backup.Influx(fresh.url, fresh.token)
        restoring.restore(staging)
        restore_s = time.perf_counter() - started
        restored = backup.Influx(fresh.url, restoring.token).describe()["buckets"]["markets"]
        same = (
            "identical counts and range" if restored == expected else f"DIFFERENT: {restored} vs {expected}"
        )
        print(f"restore API into a fresh influxd: {restore_s:.1f} s, {restored['values']:,} values ({same})")
    finally:
        fresh.stop()


def backup_round(server: InfluxDB2, work: Path, repo: Path, label: str) -> None:
    staging = work / "staging"
    subprocess.run(["rm", "-rf", str(staging)], check=True)
    started = time.perf_counter()
    backup.Influx(server.url, server.token).describe()
    describe_s = time.perf_counter() - started
    started = time.perf_counter()
    shards = backup.Influx(server.url, server.token).backup(staging)["shards"]
    api_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = backup.summary_of(restic(repo, "backup", "--json", str(staging)))
    restic_s = time.perf_counter() - started
    print(
        f"{label}: manifest counts {describe_s:.1f} s, backup API {api_s:.1f} s, {len(shards)} shards, "
        f"{size_of(staging) / 1e6:.1f} MB staged; "
        f"restic {restic_s:.1f} s, added {summary['data_added'] / 1e6:.2f} MB, "
        f"repository {stored(repo) / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        server = InfluxDB2(work / "influxd", free_port())
        (work / "influxd").mkdir()
        server.start()
        try:
            # A 1-year bucket as the 5 m tier has; the raw bucket's 7 days would drop most of a month.
            httpx.post(
                f"{server.url}/api/v2/buckets",
                headers={"Authorization": f"Token {server.token}"},
                json={
                    "orgID": server.org_id,
                    "name": "markets",
                    "retentionRules": [{"type": "expire", "everySeconds": 365 * 86400}],
                },
            ).raise_for_status()
            start = (int(time.time()) // 86400 - args.days - 1) * 86400
            started = time.perf_counter()
            written = write_days(server, args.symbols, 0, args.days, start)
            print(
                f"wrote {written:,} candles ({written * 5:,} values) in {time.perf_counter() - started:.0f} s"
            )
            repo = work / "repo"
            restic(repo, "init")
            backup_round(server, work, repo, f"{args.days} days")
            restore_round(
                work / "staging",
                work,
                backup.Influx(server.url, server.token).describe()["buckets"]["markets"],
            )
            write_days(server, args.symbols, args.days, 1, start)
            backup_round(server, work, repo, "one more day")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
