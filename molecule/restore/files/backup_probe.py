#!/usr/bin/env python3
"""The backup test's view of the stack's data, run on the target by side_effect_backup.yml.

seed     write three days of 1-minute candles (two symbols) into InfluxDB's markets bucket and every
         fifth into markets_5m, and make Grafana's volume hold a SQLite database (Grafana itself never
         runs on these targets: this stands for its database file, not for Grafana)
digest   every InfluxDB value of those buckets, every PostgreSQL row and Grafana's database, as digests
         and counts (JSON), to compare before the data is damaged or lost and after the restore
damage   a bad day on a running host: every PostgreSQL table emptied, the markets_5m bucket dropped, the
         candles and ticks of markets deleted, Grafana's users removed
write    ticks into InfluxDB for N seconds (a feeder writing while the backup runs)
ticks    the ticks as restored: how many, and how many lack a field
"""

import csv
import functools
import hashlib
import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SECRETS = Path("/opt/bloomberg/secrets")
PROJECT = "bloomberg"
BUCKETS = ("markets", "markets_5m")
TICKS = "backup_test_tick"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def psql(sql: str) -> str:
    return docker(
        "exec", "-u", "postgres", f"{PROJECT}-postgres-1", "psql", "-At", "-d", "bloomberg_config", "-c", sql
    )


@functools.cache
def influx_endpoint() -> tuple[str, str]:
    """InfluxDB's address and operator token, looked up once: the tick writer must not load the Docker
    engine with a lookup every 20 ms while the backup under test uses it."""
    address = docker(
        "inspect",
        "-f",
        '{{(index .NetworkSettings.Networks "bloomberg-net").IPAddress}}',
        f"{PROJECT}-influxdb-1",
    )
    return address, (SECRETS / "influxdb-admin-token").read_text().strip()


def influx(path: str, body: bytes | None, content_type: str, method: str = "POST") -> bytes:
    address, token = influx_endpoint()
    request = urllib.request.Request(
        f"http://{address}:8086{path}",
        data=body,
        method=method,
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": content_type,
            "Accept": "application/csv",
        },
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def grafana_volume() -> Path:
    name = f"{PROJECT}_grafana-data"
    if subprocess.run(["docker", "volume", "inspect", name], capture_output=True).returncode != 0:
        docker(
            "volume",
            "create",
            "--label",
            f"com.docker.compose.project={PROJECT}",
            "--label",
            "com.docker.compose.volume=grafana-data",
            name,
        )
    return Path(docker("volume", "inspect", "-f", "{{.Mountpoint}}", name))


def seed() -> dict:
    # Two hours before now: InfluxDB's downsampling tasks, which read the last minutes, never see them.
    end = int(time.time()) // 60 * 60 - 7200
    start = end - 3 * 86400
    lines = [
        f"candles,symbol={symbol},interval=1m,source=binance open={t % 997 + 0.5},close={t % 991 + 0.25},"
        f"volume={t % 89}i,closed=true {t}"
        for symbol in ("BTC/USDT", "ETH/USDT")
        for t in range(start, end, 60)
    ]
    for bucket, points in (("markets", lines), ("markets_5m", lines[::5])):
        for i in range(0, len(points), 5000):
            influx(
                f"/api/v2/write?org=bloomberg&bucket={bucket}&precision=s",
                "\n".join(points[i : i + 5000]).encode(),
                "text/plain",
            )
    database = grafana_volume() / "grafana.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE IF NOT EXISTS dashboard (id INTEGER PRIMARY KEY, uid TEXT, title TEXT)")
        db.execute('CREATE TABLE IF NOT EXISTS "user" (id INTEGER PRIMARY KEY, login TEXT)')
        db.executemany(
            "INSERT INTO dashboard (uid, title) VALUES (?, ?)", [("main", "Main"), ("deep", "Deep")]
        )
        db.execute('INSERT INTO "user" (login) VALUES (?)', ("alice",))
    subprocess.run(["chown", "472:0", str(database)], check=True)
    return {"influxdb_lines": len(lines), "start": start, "end": end}


def write_ticks(seconds: float) -> dict:
    written, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = time.time_ns()
        line = f"{TICKS},symbol=BTC/USDT bid={now % 1000},ask={now % 1000 + 1},last={now % 1000 + 0.5} {now}"
        try:
            influx("/api/v2/write?org=bloomberg&bucket=markets&precision=ns", line.encode(), "text/plain")
            written += 1
        except OSError:
            pass
        time.sleep(0.02)
    return {"ticks_written": written}


def ticks() -> dict:
    query = json.dumps(
        {
            "type": "flux",
            "query": f'from(bucket: "markets") |> range(start: 0)'
            f' |> filter(fn: (r) => r._measurement == "{TICKS}")'
            ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
        }
    )
    rows = list(
        csv.DictReader(
            line
            for line in influx("/api/v2/query?org=bloomberg", query.encode(), "application/json")
            .decode()
            .splitlines()
            if line
        )
    )
    torn = [row for row in rows if not all(row.get(field) for field in ("bid", "ask", "last"))]
    return {"ticks": len(rows), "torn": len(torn)}


def user_tables() -> list[str]:
    return psql(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
    ).split()


def damage() -> dict:
    psql(f"TRUNCATE {', '.join(user_tables())} CASCADE")
    listing = influx("/api/v2/buckets?org=bloomberg&name=markets_5m", None, "application/json", "GET")
    found = json.loads(listing)
    for bucket in found["buckets"]:
        influx(f"/api/v2/buckets/{bucket['id']}", None, "application/json", "DELETE")
    stop = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # One measurement per call: InfluxDB's delete predicates have no OR.
    for measurement in ("candles", TICKS):
        body = {"start": "1970-01-01T00:00:00Z", "stop": stop, "predicate": f'_measurement="{measurement}"'}
        influx("/api/v2/delete?org=bloomberg&bucket=markets", json.dumps(body).encode(), "application/json")
    with sqlite3.connect(grafana_volume() / "grafana.db") as db:
        db.execute('DELETE FROM "user"')
    return {"dropped_buckets": len(found["buckets"])}


def digest() -> dict:
    result: dict = {}
    for bucket in BUCKETS:
        query = json.dumps(
            {
                "type": "flux",
                "query": f'from(bucket: "{bucket}") |> range(start: 0)'
                ' |> filter(fn: (r) => r._measurement == "candles") |> drop(columns: ["_start", "_stop"])',
            }
        )
        try:
            answer = influx("/api/v2/query?org=bloomberg", query.encode(), "application/json")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            result[bucket] = "no such bucket"
            continue
        rows = [line for line in answer.decode().splitlines() if line.strip()]
        # Table numbers depend on the order of the series in the answer: compare the values, not them.
        values = sorted(",".join(line.split(",")[3:]) for line in rows if not line.startswith(",result"))
        result[bucket] = {
            "values": len(values),
            "sha256": hashlib.sha256("\n".join(values).encode()).hexdigest(),
        }
    for table in user_tables():
        rows = psql(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')), count(*) FROM {table} t"
        )
        result[f"postgres {table}"] = rows
    database = grafana_volume() / "grafana.db"
    if database.exists():
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            result["grafana.db"] = hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    return result


if __name__ == "__main__":
    commands = {
        "seed": seed,
        "digest": digest,
        "ticks": ticks,
        "damage": damage,
        "write": lambda: write_ticks(float(sys.argv[2])),
    }
    print(json.dumps(commands[sys.argv[1]](), sort_keys=True))
