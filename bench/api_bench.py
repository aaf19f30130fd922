"""Throughput and latency of the watchlist API: real uvicorn, real PostgreSQL, 50 concurrent clients.

    .venv/bin/python bench/api_bench.py [--seconds 10] [--concurrency 50] [--workers 1]

Starts a throwaway PostgreSQL cluster (the one the tests use), migrates it, creates 50 users with three
watchlists each, serves the API with `python -m marketdash.api serve`, then drives, one after the other:
GET /healthz (trivial: no auth, no database), GET /api/watchlists/{user_id} and
GET /api/assets/search?q=, each for --seconds with --concurrency keep-alive clients (aiohttp, this
process). Prints requests/s, p50/p99 latency, the ratio to the trivial endpoint, the server's CPU time per
request (its processes' user and system time over the measured seconds) and its peak RSS per process.
The client shares the machine's cores with the server: the ratio and the CPU per request are the
comparable figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

import aiohttp
import psycopg
from psycopg.types.json import Jsonb

from marketdash.api.migrations import migrate
from marketdash_testing.api_server import PASSWORD, cli_env, run_cli, served_api
from marketdash_testing.servers import postgres_cluster

USERS = 50
WATCHLISTS = (
    ("Crypto", ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT"]),
    ("US tech", ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"]),
    ("Macro", ["SPX", "NDX", "DAX", "CAC40", "XAU", "WTI", "EUR/USD", "DXY"]),
)
QUERIES = ("bitcoin", "eth", "S&P", "gold", "usd", "apple", "oil", "dax")


def _prepare(dsn: str) -> None:
    migrate(dsn)
    env = cli_env(dsn)
    created = run_cli("ensure-user", "bench-0", "--password-stdin", env=env, stdin=PASSWORD)
    if created.returncode != 0:
        raise SystemExit(created.stderr)
    with psycopg.connect(dsn) as conn:
        password_hash = conn.execute("SELECT password_hash FROM users WHERE username = 'bench-0'").fetchone()[
            0
        ]
        for n in range(1, USERS):
            conn.execute(
                "INSERT INTO users (username, password_hash) VALUES (%s, %s)", (f"bench-{n}", password_hash)
            )
        for user_id in [row[0] for row in conn.execute("SELECT id FROM users")]:
            for name, assets in WATCHLISTS:
                conn.execute(
                    "INSERT INTO watchlists (user_id, name, assets) VALUES (%s, %s, %s)",
                    (user_id, name, Jsonb(assets)),
                )


async def _tokens(base_url: str) -> list[tuple[int, str]]:
    async with aiohttp.ClientSession() as session:
        tokens = []
        for n in range(USERS):
            async with session.post(
                f"{base_url}/api/auth/token", json={"username": f"bench-{n}", "password": PASSWORD}
            ) as response:
                token = (await response.json())["access_token"]
            async with session.get(f"{base_url}/api/me", headers={"Authorization": f"Bearer {token}"}) as me:
                tokens.append(((await me.json())["id"], token))
        return tokens


async def _drive(base_url: str, requests, seconds: float, concurrency: int, server_cpu) -> dict:
    """requests(i) -> (path, headers) for the i-th request of a client; server_cpu() -> the server's CPU
    seconds so far; returns the figures."""
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:

        async def client(index: int, deadline: float, record: bool) -> None:
            nonlocal failures
            i = index
            while time.perf_counter() < deadline:
                path, headers = requests(i)
                started = time.perf_counter()
                async with session.get(path, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                if record:
                    latencies.append(time.perf_counter() - started)
                    failures += not ok
                i += concurrency

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(client(c, warm, False) for c in range(concurrency)))
        cpu_before, started = server_cpu(), time.perf_counter()
        await asyncio.gather(*(client(c, started + seconds, True) for c in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, server_cpu() - cpu_before
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "rps": round(len(latencies) / elapsed, 1),
        "server_cpu_us": round(cpu / len(latencies) * 1e6),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


def _server_pids(pid: int) -> list[int]:
    """The server process and its worker processes (uvicorn forks them with --workers > 1)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return pids


def _server_cpu_seconds(pid: int) -> float:
    """User and system CPU time of the server's processes so far (utime and stime in /proc/<pid>/stat)."""
    ticks = 0
    for each in _server_pids(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> dict[int, float]:
    """VmHWM of the server's processes."""
    peaks = {}
    for each in _server_pids(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[each] = round(int(line.split()[1]) / 1024, 1)
    return peaks


async def _bench(base_url: str, seconds: float, concurrency: int, pid: int) -> dict[str, dict]:
    tokens = await _tokens(base_url)

    def auth(i: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[i % len(tokens)][1]}"}

    scenarios = {
        "GET /healthz": lambda i: ("/healthz", {}),
        "GET /api/watchlists/{user_id}": lambda i: (f"/api/watchlists/{tokens[i % len(tokens)][0]}", auth(i)),
        "GET /api/assets/search?q=": lambda i: (f"/api/assets/search?q={QUERIES[i % len(QUERIES)]}", auth(i)),
    }
    return {
        name: await _drive(base_url, make, seconds, concurrency, lambda: _server_cpu_seconds(pid))
        for name, make in scenarios.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    with postgres_cluster() as server_dsn:
        dsn = server_dsn.rsplit("/", 1)[0] + "/bloomberg_config"
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bloomberg_config")
        _prepare(dsn)
        env = cli_env(
            dsn,
            jwt_secret=os.urandom(32).hex(),
            workers=str(args.workers),
            # A pool opened at its full size, as a busy server's is: the run measures requests, not the
            # pool growing one connection at a time during the first seconds.
            pool_min_size="20",
            pool_max_size="20",
            rate_limit_user_per_minute="1000000000",
            rate_limit_ip_per_minute="1000000000",
            rate_limit_login_per_minute="1000000000",
            log_level="WARNING",
        )
        with served_api(env) as served:
            results = asyncio.run(_bench(served.base_url, args.seconds, args.concurrency, served.pid))
            peaks = _peak_rss_mib(served.pid)
    trivial = results["GET /healthz"]["rps"]
    print(
        f"{'endpoint':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs trivial':>10} {'failures':>8}"
        f" {'server CPU µs/req':>17}"
    )
    for name, figures in results.items():
        print(
            f"{name:32} {figures['rps']:>9} {figures['p50_ms']:>8} {figures['p99_ms']:>8}"
            f" {figures['rps'] / trivial:>10.2f} {figures['failures']:>8} {figures['server_cpu_us']:>17}"
        )
    print(f"peak RSS (MiB) by server process: {peaks}")
    # The latencies mean little without it: the client and the server share this machine's cores.
    print("load average (1, 5, 15 min) after the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(
        json.dumps(
            {
                "concurrency": args.concurrency,
                "seconds": args.seconds,
                "workers": args.workers,
                "results": results,
                "peak_rss_mib": peaks,
            }
        )
    )


if __name__ == "__main__":
    main()
