#!/usr/bin/env python3
"""Back the stack up into restic repositories, and put it back: the host side of the backup role.

Run by bloomberg-backup@config.timer (PostgreSQL and Grafana's database, hourly by default) and
bloomberg-backup@full.timer (the same plus InfluxDB, daily), and step by step by playbooks/restore.yml.

What makes each part consistent while the stack runs: PostgreSQL is dumped by pg_dump (one snapshot of
the database), Grafana's SQLite file is copied by SQLite's online backup, InfluxDB is read through its own
backup API (the metadata, then each shard as a snapshot). The stack's home directory (Compose files,
configuration, secrets) goes in every snapshot; restic encrypts and de-duplicates all of it. A manifest
written beside the dumps says what was backed up (rows per table, points and time range per bucket),
so that a restore can say what it restored.

Standard library only: it runs with the host's python3, the one Ansible already needs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import email.parser
import email.policy
import fcntl
import gzip
import http.client
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DOCKER = "/usr/bin/docker"
RESTIC = "/usr/bin/restic"
KINDS = ("config", "full")
# Staging sub-directories, one per component; a restore reads the same names.
POSTGRES_DUMP = "postgres/database.dump"
GRAFANA_DB = "grafana/grafana.db"
INFLUXDB_DIR = "influxdb"
MANIFEST = "manifest.json"
HTTP_TIMEOUT_S = 600
# A restored InfluxDB loads every shard before it reports healthy.
HEALTH_WAIT_S = 900
LOCK_WAIT_S = 6 * 3600
# Written into a restore target by `fetch`: only such a directory is ever emptied by a later fetch.
RESTORE_MARKER = ".bloomberg-backup-restore"
CHUNK = 1 << 20
ALL_TIME = "range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)"


class BackupError(Exception):
    """A step failed; the message says which and why, for the journal and the operator."""


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    password_file: str
    env_file: str | None

    def environment(self, cache_dir: Path) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(cache_dir),
            "RESTIC_REPOSITORY": self.url,
            "RESTIC_PASSWORD_FILE": self.password_file,
            "RESTIC_CACHE_DIR": str(cache_dir / self.name),
        }
        if self.env_file:
            for line in Path(self.env_file).read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() and not key.lstrip().startswith("#"):
                    env[key.strip()] = value.strip()
        return env


@dataclass(frozen=True)
class Config:
    project: str
    network: str
    home: str
    state_dir: Path
    textfile_dir: Path | None
    postgres: dict[str, str]
    influxdb: dict[str, str]
    grafana: dict[str, str]
    repositories: list[Repository]
    retention: dict[str, dict[str, int]]
    max_age_seconds: dict[str, int]
    exclude: list[str]

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = json.loads(path.read_text())
            repositories = [Repository(**repo) for repo in raw["repositories"]]
            config = cls(
                project=raw["project"],
                network=raw["network"],
                home=raw["home"],
                state_dir=Path(raw["state_dir"]),
                textfile_dir=Path(raw["textfile_dir"]) if raw.get("textfile_dir") else None,
                postgres=raw["postgres"],
                influxdb=raw["influxdb"],
                grafana=raw["grafana"],
                repositories=repositories,
                retention=raw["retention"],
                max_age_seconds=raw["max_age_seconds"],
                exclude=raw.get("exclude", []),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BackupError(f"{path}: not a valid backup configuration ({error!r})") from error
        if not repositories:
            raise BackupError(f"{path}: no repository")
        if len({repo.name for repo in repositories}) != len(repositories):
            raise BackupError(f"{path}: two repositories have the same name")
        for kind in KINDS:
            if kind not in config.retention or kind not in config.max_age_seconds:
                raise BackupError(f"{path}: retention and max_age_seconds need an entry for {kind}")
        return config

    def repository(self, name: str | None) -> Repository:
        if name is None:
            return self.repositories[0]
        for repo in self.repositories:
            if repo.name == name:
                return repo
        raise BackupError(f"no repository named {name!r}; known: {[r.name for r in self.repositories]}")


# --- the outside tools ------------------------------------------------------------------------------


def run(
    argv: list[str],
    *,
    stdin: Any = None,
    stdout: Any = subprocess.PIPE,
    env: dict | None = None,
    timeout: float | None = None,
) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackupError(f"{argv[0]} {argv[1]}: {error}") from error
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise BackupError(f"{' '.join(argv[:3])}: exit {done.returncode}: {' / '.join(message)}")
    return done.stdout.decode(errors="replace") if stdout is subprocess.PIPE else ""


def container(config: Config, service: str) -> str | None:
    """The running container of a Compose service, None when it does not run."""
    ids = run(
        [
            DOCKER,
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={config.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ]
    ).split()
    return ids[0] if ids else None


def required_container(config: Config, service: str) -> str:
    found = container(config, service)
    if not found:
        raise BackupError(f"the {service} container is not running")
    return found


def restic(config: Config, repo: Repository, *args: str, stdout: Any = subprocess.PIPE) -> str:
    return run([RESTIC, *args], env=repo.environment(config.state_dir / "cache"), stdout=stdout)


# --- PostgreSQL -------------------------------------------------------------------------------------


def in_postgres(config: Config, *command: str) -> list[str]:
    """A PostgreSQL client command run in the postgres container as the superuser, by peer
    authentication on its socket: no password on any command line."""
    pg = config.postgres
    return [
        DOCKER, "exec", "-i", "-u", pg["os_user"], required_container(config, pg["service"]),
        *command, "-U", pg["user"], "-d", pg["database"],
    ]  # fmt: skip


def psql(config: Config, script: str) -> str:
    """Run a psql script (backslash commands allowed)."""
    with tempfile.TemporaryFile() as source:
        source.write(script.encode())
        source.seek(0)
        return run(in_postgres(config, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-"), stdin=source)


# One count query per table, built and run by the server itself (\gexec): no name is quoted here.
COUNT_ROWS = r"""
SELECT format('SELECT %L, count(*) FROM %I.%I', format('%I.%I', schemaname, tablename), schemaname, tablename)
FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
\gexec
"""


def postgres_rows(config: Config) -> dict[str, int]:
    rows = {}
    for line in psql(config, COUNT_ROWS).splitlines():
        table, _, count = line.rpartition("|")
        rows[table] = int(count)
    return rows


COPY_LINE = re.compile(r"^COPY (?P<table>.+?)(?: \(.*\))? FROM stdin;$")


def dump_rows(config: Config, dump: Path) -> dict[str, int]:
    """Rows per table in a pg_dump archive, read from its COPY blocks (one line a row in COPY's text
    format): exactly what a restore of it must bring back, whatever was written while it was taken."""
    with dump.open("rb") as source:
        text = run(
            [
                DOCKER,
                "exec",
                "-i",
                required_container(config, config.postgres["service"]),
                "pg_restore",
                "--data-only",
                "-f",
                "-",
            ],
            stdin=source,
        )
    rows: dict[str, int] = {}
    table = None
    for line in text.splitlines():
        if table is None:
            if copy := COPY_LINE.match(line):
                table = copy["table"]
                rows[table] = 0
        elif line == "\\.":
            table = None
        else:
            rows[table] += 1
    return rows


def postgres_dump(config: Config, target: Path) -> dict[str, Any]:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        run(in_postgres(config, "pg_dump", "-Fc"), stdout=out)
    return {
        "database": config.postgres["database"],
        "rows": dump_rows(config, target),
        "bytes": target.stat().st_size,
    }


def postgres_restore(config: Config, dump: Path) -> dict[str, Any]:
    # One transaction: a dump that does not apply leaves the database as it was.
    with dump.open("rb") as source:
        run(
            in_postgres(
                config, "pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error"
            ),
            stdin=source,
        )
    return {"database": config.postgres["database"], "rows": postgres_rows(config)}


# --- Grafana's SQLite database ------------------------------------------------------------------------


def volume_path(config: Config, volume: str) -> Path | None:
    try:
        mountpoint = run([DOCKER, "volume", "inspect", "-f", "{{.Mountpoint}}", f"{config.project}_{volume}"])
    except BackupError:
        return None
    return Path(mountpoint.strip())


def sqlite_rows(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
        ]
        quoted = {table: '"' + table.replace('"', '""') + '"' for table in tables}
        return {table: db.execute(f"SELECT count(*) FROM {quoted[table]}").fetchone()[0] for table in tables}  # noqa: S608


def grafana_database(config: Config) -> Path | None:
    volume = volume_path(config, config.grafana["volume"])
    database = volume / "grafana.db" if volume else None
    return database if database and database.is_file() else None


def grafana_copy(config: Config, target: Path) -> dict[str, Any]:
    source = grafana_database(config)
    if source is None:
        return {"present": False}
    target.parent.mkdir(parents=True, exist_ok=True)
    # SQLite's online backup: a consistent copy while Grafana writes.
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as live,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)
    return {"present": True, "rows": sqlite_rows(target)}


def grafana_restore(config: Config, database: Path) -> dict[str, Any]:
    if container(config, config.grafana["service"]):
        raise BackupError("stop Grafana before its database is replaced")
    volume = volume_path(config, config.grafana["volume"])
    if volume is None:
        # Grafana never started on this host: make its volume as Compose would, so that Compose adopts it.
        name = config.grafana["volume"]
        run(
            [
                DOCKER,
                "volume",
                "create",
                "--label",
                f"com.docker.compose.project={config.project}",
                "--label",
                f"com.docker.compose.volume={name}",
                f"{config.project}_{name}",
            ]
        )
        volume = volume_path(config, name)
        if volume is None:
            raise BackupError(f"the volume {config.project}_{name} could not be made")
    destination = volume / "grafana.db"
    for stale in (volume / "grafana.db-wal", volume / "grafana.db-shm", volume / "grafana.db-journal"):
        stale.unlink(missing_ok=True)
    temporary = volume / ".grafana.db.restoring"
    shutil.copyfile(database, temporary)
    os.chown(temporary, int(config.grafana["uid"]), int(config.grafana["gid"]))
    temporary.chmod(0o640)
    temporary.replace(destination)
    return {"present": True, "rows": sqlite_rows(destination)}


# --- InfluxDB, through its backup and restore API ----------------------------------------------------


class Influx:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    @classmethod
    def of(cls, config: Config) -> Influx:
        inspect = json.loads(run([DOCKER, "inspect", required_container(config, config.influxdb["service"])]))
        # Published nowhere: the host routes to the container's address on the stack's network.
        address = inspect[0]["NetworkSettings"]["Networks"][config.network]["IPAddress"]
        return cls(f"http://{address}:8086", Path(config.influxdb["token_file"]).read_text().strip())

    @contextlib.contextmanager
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[Any]:
        request = urllib.request.Request(  # noqa: S310 - http to the container's fixed address
            self.base + path,
            data=body,
            method=method,
            headers={"Authorization": f"Token {self.token}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                yield response
        except urllib.error.HTTPError as error:
            detail = error.read(2000).decode(errors="replace")
            raise BackupError(f"InfluxDB {method} {path}: HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise BackupError(f"InfluxDB {method} {path}: {error!r}") from error

    def json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        with self.request(method, path, data, {"Content-Type": "application/json"}) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def flux(self, query: str) -> list[dict[str, str]]:
        body = json.dumps({"query": query, "type": "flux", "dialect": {"annotations": []}}).encode()
        with self.request(
            "POST",
            f"/api/v2/query?orgID={self.org_id()}",
            body,
            {"Content-Type": "application/json", "Accept": "application/csv"},
        ) as response:
            text = response.read().decode()
        rows = [row for row in csv.DictReader(io.StringIO(text)) if row.get("result") is not None]
        # Flux reports an error met while streaming as a table of its own, with a 200.
        failed = [row for row in csv.DictReader(io.StringIO(text)) if row.get("error")]
        if failed:
            raise BackupError(f"InfluxDB query failed: {failed[0]['error']}")
        return rows

    def org_id(self) -> str:
        orgs = self.json("GET", "/api/v2/orgs")["orgs"]
        if not orgs:
            raise BackupError("InfluxDB has no organisation")
        return orgs[0]["id"]

    def bucket_names(self) -> list[str]:
        buckets = self.json("GET", "/api/v2/buckets?limit=100")["buckets"]
        return sorted(b["name"] for b in buckets if not b["name"].startswith("_"))

    def describe(self) -> dict[str, Any]:
        """Field values and time range of every user bucket: what a restore must bring back. Counted per
        series first (InfluxDB answers those from its index and TSM blocks), then added up."""
        buckets = {}
        for name in self.bucket_names():
            source = f"from(bucket: {json.dumps(name)}) |> {ALL_TIME}"
            values = self.flux(f'{source} |> count() |> keep(columns: ["_value"]) |> group() |> sum()')
            first = self.flux(
                f'{source} |> first() |> keep(columns: ["_time"]) |> group()'
                ' |> sort(columns: ["_time"]) |> limit(n: 1)'
            )
            last = self.flux(
                f'{source} |> last() |> keep(columns: ["_time"]) |> group()'
                ' |> sort(columns: ["_time"], desc: true) |> limit(n: 1)'
            )
            buckets[name] = {
                "values": int(values[0]["_value"]) if values else 0,
                "first": first[0]["_time"] if first else None,
                "last": last[0]["_time"] if last else None,
            }
        return {"buckets": buckets}

    def backup(self, target: Path) -> dict[str, Any]:
        """The key-value store, the SQL metadata, the bucket list and every live shard, as files."""
        target.mkdir(parents=True, exist_ok=True)
        with self.request("GET", "/api/v2/backup/metadata", headers={"Accept-Encoding": "gzip"}) as response:
            content_type = response.headers["Content-Type"]
            raw = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + raw
        )
        parts = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
        missing = {"kv", "sql", "buckets"} - parts.keys()
        if missing:
            raise BackupError(f"InfluxDB's backup metadata lacks {sorted(missing)}")
        (target / "kv.bolt").write_bytes(parts["kv"])
        (target / "sql.sqlite").write_bytes(parts["sql"])
        (target / "buckets.json").write_bytes(parts["buckets"])
        shards = sorted(
            {
                shard["id"]
                for bucket in json.loads(parts["buckets"])
                for policy in bucket.get("retentionPolicies") or []
                for group in policy.get("shardGroups") or []
                if not group.get("deletedAt")
                for shard in group.get("shards") or []
            }
        )
        (target / "shards").mkdir(exist_ok=True)
        written = []
        for shard in shards:
            path = target / "shards" / f"{shard}.tar.gz"
            try:
                with (
                    self.request(
                        "GET", f"/api/v2/backup/shards/{shard}", headers={"Accept-Encoding": "gzip"}
                    ) as response,
                    path.open("wb") as out,
                ):
                    if response.headers.get("Content-Encoding") != "gzip":
                        raise BackupError(f"InfluxDB sent shard {shard} uncompressed")
                    shutil.copyfileobj(response, out, CHUNK)
                written.append(shard)
            except BackupError as error:
                path.unlink(missing_ok=True)
                # A shard dropped by retention between the metadata and its turn is not an error.
                if "HTTP 404" not in str(error):
                    raise
        return {"shards": written}

    def restore(self, source: Path) -> dict[str, Any]:
        """A full restore: the key-value store first (it empties every shard and re-creates them under their
        backed-up ids, and brings back the backed-up tokens), then the SQL metadata, then each shard.
        The caller restarts influxd afterwards: its task scheduler only sees the restored tasks then."""
        gzipped = {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}
        with self.request(
            "POST", "/api/v2/restore/kv", gzip.compress((source / "kv.bolt").read_bytes()), gzipped
        ) as response:
            restored_token = json.loads(response.read())["token"]
        # The token this call used belonged to the store just replaced.
        token_changed = restored_token != self.token
        self.token = restored_token
        with self.request(
            "POST", "/api/v2/restore/sql", gzip.compress((source / "sql.sqlite").read_bytes()), gzipped
        ):
            pass
        shards = sorted(source.glob("shards/*.tar.gz"), key=lambda path: int(path.name.split(".")[0]))
        for path in shards:
            with (
                path.open("rb") as body,
                self.request(
                    "POST",
                    f"/api/v2/restore/shards/{path.name.split('.')[0]}",
                    body,
                    {**gzipped, "Content-Length": str(path.stat().st_size)},
                ),
            ):
                pass
        return {"shards": len(shards), "operator_token_changed": token_changed}


# --- the backup run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive(config: Config) -> Iterator[None]:
    """One backup or restore at a time: the hourly and the daily run never interleave their dumps, and
    a restore never meets a backup half-way."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / "lock").open("w") as lock:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackupError(
                        f"another backup or restore held {lock.name} for {LOCK_WAIT_S} s"
                    ) from None
                log(f"waiting for the backup or restore under way ({lock.name})")
                time.sleep(30)
        yield


def stage(config: Config, kind: str, staging: Path) -> None:
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    manifest: dict[str, Any] = {"kind": kind, "host": socket.gethostname(), "started": time.time()}
    manifest["postgres"] = postgres_dump(config, staging / POSTGRES_DUMP)
    manifest["grafana"] = grafana_copy(config, staging / GRAFANA_DB)
    if kind == "full":
        influx = Influx.of(config)
        # Counted before the shards are read: what the feeders write meanwhile may be in the backup too,
        # never less than this.
        manifest["influxdb"] = {**influx.describe(), **influx.backup(staging / INFLUXDB_DIR)}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def summary_of(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if message.get("message_type") == "summary" and "snapshot_id" in message:
                return message
    raise BackupError("restic printed no summary")


def ensure_repository(config: Config, repo: Repository) -> bool:
    """True when the repository had to be created. Only the deploy calls this: a scheduled run that finds
    no repository fails, rather than start a new, empty history where the old one was."""
    try:
        restic(config, repo, "cat", "config")
        return False
    except BackupError as error:
        # Only a repository that is not there is made; a wrong password or key, or an unreachable
        # storage, is the operator's to fix and says so.
        if "unable to open config file" not in str(error):
            raise
    # Format 1 where restic knows formats: Ubuntu 22.04's restic 0.12 reads no other, and a host may be
    # restored onto any supported system. (The dumps are compressed already.)
    version = tuple(int(part) for part in run([RESTIC, "version"]).split()[1].split(".")[:2])
    legacy = [] if version < (0, 14) else ["--repository-version", "1"]
    restic(config, repo, "init", *legacy)
    return True


def back_up(config: Config, kind: str) -> int:
    staging = config.state_dir / "staging"
    failures = 0
    with exclusive(config):
        started = time.time()
        try:
            try:
                stage(config, kind, staging)
            except Exception as error:  # any failure is recorded, for BackupFailed
                log(f"{kind} backup: staging failed: {describe_error(error)}")
                for repo in config.repositories:
                    record(config, kind, repo, started, None)
                return 1
            paths = [str(staging), config.home]
            excludes = [arg for pattern in config.exclude for arg in ("--exclude", pattern)]
            for repo in config.repositories:
                try:
                    output = restic(
                        config,
                        repo,
                        "backup",
                        "--json",
                        "--tag",
                        kind,
                        "--host",
                        socket.gethostname(),
                        *excludes,
                        *paths,
                    )
                    summary = summary_of(output)
                except Exception as error:
                    failures += 1
                    log(f"{kind} backup to {repo.name} failed: {describe_error(error)}")
                    record(config, kind, repo, started, None)
                    continue
                log(
                    f"{kind} backup to {repo.name}: snapshot {summary['snapshot_id'][:8]}, "
                    f"{summary.get('data_added', 0)} bytes added of {summary.get('total_bytes_processed', 0)}"
                )
                record(config, kind, repo, started, summary)
                if kind == "full":
                    try:
                        forget(config, repo)
                        record_prune(config, repo, True)
                    except Exception as error:
                        failures += 1
                        log(f"forgetting old snapshots in {repo.name} failed: {describe_error(error)}")
                        record_prune(config, repo, False)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return 1 if failures else 0


def describe_error(error: Exception) -> str:
    # Ours say what failed; anything else is a defect whose place matters.
    return str(error) if isinstance(error, BackupError) else "".join(traceback.format_exception(error))


def forget(config: Config, repo: Repository) -> None:
    for kind in KINDS:
        keep = [
            arg
            for period, count in sorted(config.retention[kind].items())
            for arg in (f"--keep-{period}", str(count))
        ]
        restic(config, repo, "forget", "--prune", "--tag", kind, "--group-by", "host,tags", *keep)


def first_backups_due(config: Config) -> list[str]:
    """The kinds of backup no repository holds a snapshot of yet: a new deployment's first backups.
    A host deployed over a repository that holds a history takes none at deploy time: its stores may be
    the empty ones of a host about to be restored, and that snapshot must not become the newest."""
    held = {
        tag
        for repo in config.repositories
        for snapshot in snapshots(config, repo)
        for tag in snapshot["tags"]
    }
    return [kind for kind in KINDS if kind not in held]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the metrics node-exporter reads ---------------------------------------------------------------


def outcomes(config: Config, kind: str) -> dict[str, dict[str, Any]]:
    state_file = config.state_dir / f"state-{kind}.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    return {name: value for name, value in state.items() if name in {r.name for r in config.repositories}}


def keep_outcomes(config: Config, kind: str, state: dict[str, dict[str, Any]]) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(config.state_dir / f"state-{kind}.json", json.dumps(state))
    if config.textfile_dir and config.textfile_dir.is_dir():
        write_atomically(
            config.textfile_dir / f"bloomberg-backup-{kind}.prom",
            render_metrics(kind, state, config.max_age_seconds[kind]),
        )


def record(config: Config, kind: str, repo: Repository, started: float, summary: dict | None) -> None:
    """Keep this run's outcome and rewrite the kind's metrics file from every repository's outcome."""
    state = outcomes(config, kind)
    previous = state.get(repo.name, {})
    now = time.time()
    state[repo.name] = {
        "last_run": now,
        "success": summary is not None,
        "duration": now - started,
        "last_success": now if summary is not None else previous.get("last_success", 0),
        "added_bytes": (summary or {}).get("data_added", previous.get("added_bytes", 0)),
        "total_bytes": (summary or {}).get("total_bytes_processed", previous.get("total_bytes", 0)),
        "prune_success": previous.get("prune_success", True),
    }
    keep_outcomes(config, kind, state)


def record_prune(config: Config, repo: Repository, success: bool) -> None:
    state = outcomes(config, "full")
    state[repo.name]["prune_success"] = success
    keep_outcomes(config, "full", state)


METRICS = (
    ("last_run_timestamp_seconds", "last_run", "When the last backup run ended, as Unix time."),
    ("last_run_success", "success", "1 when the last backup run stored its snapshot."),
    ("last_success_timestamp_seconds", "last_success", "When the last good backup ended (0: never)."),
    ("last_duration_seconds", "duration", "How long the last backup run took."),
    ("last_added_bytes", "added_bytes", "New data the last good backup added to the repository."),
    ("last_processed_bytes", "total_bytes", "Size of what the last good backup read."),
    (
        "last_prune_success",
        "prune_success",
        "1 when old snapshots were last forgotten and pruned (full runs).",
    ),
)


def render_metrics(kind: str, state: dict[str, dict[str, Any]], max_age: int) -> str:
    lines = []
    for suffix, key, help_text in METRICS:
        name = f"bloomberg_backup_{suffix}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [
            f'{name}{{kind="{kind}",repository="{repo}"}} {float(outcome[key])!r}'
            for repo, outcome in sorted(state.items())
        ]
    name = "bloomberg_backup_max_age_seconds"
    lines += [
        f"# HELP {name} The age past which the last good backup is too old (its schedule and a margin).",
        f"# TYPE {name} gauge",
        f'{name}{{kind="{kind}"}} {float(max_age)!r}',
    ]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    # node-exporter must never read a half-written file: write beside it, then rename over it.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".bloomberg-", delete=False) as handle:
        handle.write(text)
    Path(handle.name).chmod(0o644)
    Path(handle.name).replace(path)


# --- restore ----------------------------------------------------------------------------------------


def snapshots(config: Config, repo: Repository) -> list[dict[str, Any]]:
    """This script's snapshots (tagged with their kind), oldest first."""
    found = json.loads(restic(config, repo, "snapshots", "--json") or "[]")
    ours = [snapshot for snapshot in found if set(snapshot.get("tags") or []) & set(KINDS)]
    return sorted(ours, key=lambda snapshot: instant(snapshot["time"]))


def choose(config: Config, repo: Repository, wanted: str) -> dict[str, dict[str, Any]]:
    """Which snapshot each component comes from: the newest holding it, or the one asked for."""
    every = snapshots(config, repo)
    if not every:
        raise BackupError(f"repository {repo.name} holds no snapshot of this script")
    if wanted != "latest":
        matches = [s for s in every if s["id"].startswith(wanted)]
        if len(matches) != 1:
            raise BackupError(f"snapshot {wanted!r}: {len(matches)} match in {repo.name}")
        chosen = matches[0]
        return {"config": chosen, **({"influxdb": chosen} if "full" in chosen["tags"] else {})}
    full = [s for s in every if "full" in s["tags"]]
    return {"config": every[-1], **({"influxdb": full[-1]} if full else {})}


def fetch(config: Config, repo: Repository, wanted: str, target: Path) -> dict[str, Any]:
    """Restore the chosen snapshots' dumps into target/<snapshot id>, once each, with the manifest and
    the InfluxDB operator token each was taken with; say where each component's dumps are."""
    if target.exists():
        if not (target / RESTORE_MARKER).exists():
            raise BackupError(f"{target} exists and was not made by a fetch: choose another directory")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / RESTORE_MARKER).touch()
    fetched: dict[str, Any] = {"repository": repo.name}
    for use, snapshot in choose(config, repo, wanted).items():
        directory = target / snapshot["id"]
        staging = next((path for path in snapshot["paths"] if path.endswith("/staging")), None)
        if staging is None:
            raise BackupError(f"snapshot {snapshot['short_id']} holds no staging directory of this script")
        if not directory.exists():
            restic(
                config,
                repo,
                "restore",
                snapshot["id"],
                "--target",
                str(directory),
                "--include",
                staging,
                "--include",
                config.influxdb["token_file"],
            )
        dumps = directory / staging.lstrip("/")
        if not (dumps / MANIFEST).is_file():
            raise BackupError(f"snapshot {snapshot['short_id']}: no {MANIFEST} under {staging}")
        token = directory / config.influxdb["token_file"].lstrip("/")
        fetched[use] = {
            "snapshot": snapshot["short_id"],
            "host": snapshot.get("hostname"),
            "time": snapshot["time"],
            "directory": str(dumps),
            # The restored InfluxDB answers only to the token it was backed up with.
            "operator_token_matches": token.is_file()
            and token.read_text().strip() == Path(config.influxdb["token_file"]).read_text().strip(),
        }
    return fetched


def describe_live(config: Config) -> dict[str, Any]:
    grafana = grafana_database(config)
    return {
        "postgres": {"rows": postgres_rows(config)},
        "grafana": {"present": grafana is not None, **({"rows": sqlite_rows(grafana)} if grafana else {})},
        "influxdb": Influx.of(config).describe(),
    }


RFC3339 = re.compile(r"(?P<seconds>[0-9-]+T[0-9:]+)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)")


def instant(text: str) -> datetime:
    """An RFC 3339 time from restic or Flux (Z or an offset, up to nanoseconds) as an aware datetime."""
    parts = RFC3339.fullmatch(text)
    if parts is None:
        raise BackupError(f"not an RFC 3339 time: {text!r}")
    # fromisoformat before Python 3.11 (Ubuntu 22.04) takes neither Z nor more than six digits.
    fraction = (parts["fraction"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if parts["zone"] == "Z" else parts["zone"]
    return datetime.fromisoformat(f"{parts['seconds']}.{fraction}{zone}")


def differences(component: str, expected: dict[str, Any], restored: dict[str, Any]) -> list[str]:
    """What the restored component lacks compared with what the backup said it held. InfluxDB may hold
    more: its shards were read after they were counted, while the feeders wrote."""
    if component != "influxdb":
        return [
            f"{table}: {count} rows backed up, {restored.get(table)} restored"
            for table, count in sorted(expected.items())
            if restored.get(table) != count
        ]
    lacking = []
    for bucket, held in sorted(expected.items()):
        now = restored.get(bucket)
        if now is None:
            lacking.append(f"bucket {bucket} missing")
        elif (
            now["values"] < held["values"]
            or (held["first"] and not now["first"])
            or (held["first"] and instant(now["first"]) > instant(held["first"]))
        ):
            lacking.append(f"bucket {bucket}: {held} backed up, {now} restored")
    return lacking


def restore(config: Config, component: str, source: Path) -> dict[str, Any]:
    """Put one component back from a fetched snapshot and check it against the snapshot's manifest."""
    manifest_file = source / MANIFEST
    if not manifest_file.is_file():
        raise BackupError(f"{source} holds no {MANIFEST}: not a snapshot taken by this script")
    manifest = json.loads(manifest_file.read_text())
    with exclusive(config):
        if component == "postgres":
            expected = manifest["postgres"]["rows"]
            result = postgres_restore(config, source / POSTGRES_DUMP)
            restored = result["rows"]
        elif component == "grafana":
            if not manifest["grafana"]["present"]:
                return {"present": False, "note": "the snapshot holds no Grafana database"}
            expected = manifest["grafana"]["rows"]
            result = grafana_restore(config, source / GRAFANA_DB)
            restored = result["rows"]
        else:
            if "influxdb" not in manifest:
                raise BackupError(f"{source} is a {manifest['kind']} snapshot: it holds no InfluxDB backup")
            influx = Influx.of(config)
            result = influx.restore(source / INFLUXDB_DIR)
            restart(config, config.influxdb["service"])
            expected = manifest["influxdb"]["buckets"]
            # Only the restored store's own tokens open it now.
            restored = Influx(Influx.of(config).base, influx.token).describe()["buckets"]
            result["buckets"] = restored
    lacking = differences(component, expected, restored)
    if lacking:
        raise BackupError(f"{component} restored but not as backed up: {'; '.join(lacking)}")
    return {**result, "backed_up": manifest["started"], "matches_backup": True}


def restart(config: Config, service: str) -> None:
    """Restart a service's container and wait for its health check."""
    name = required_container(config, service)
    run([DOCKER, "restart", name])
    deadline = time.monotonic() + HEALTH_WAIT_S
    while time.monotonic() < deadline:
        if run([DOCKER, "inspect", "-f", "{{.State.Health.Status}}", name]).strip() == "healthy":
            return
        time.sleep(1)
    raise BackupError(f"{service} was not healthy {HEALTH_WAIT_S} s after its restart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("/etc/bloomberg-backup/config.json"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check-config", help="read the configuration and say what is wrong with it")
    commands.add_parser("init", help="create every repository that does not exist yet")
    run_parser = commands.add_parser("run", help="take a backup into every repository")
    run_parser.add_argument("kind", choices=KINDS)
    list_parser = commands.add_parser("snapshots", help="the repository's snapshots, as JSON")
    list_parser.add_argument("--repository")
    fetch_parser = commands.add_parser("fetch", help="restore a snapshot's dumps into a directory")
    fetch_parser.add_argument("--repository")
    fetch_parser.add_argument("--snapshot", default="latest")
    fetch_parser.add_argument("--target", type=Path, required=True)
    restore_parser = commands.add_parser("restore", help="put one component's dump back into the stack")
    restore_parser.add_argument("component", choices=("postgres", "influxdb", "grafana"))
    restore_parser.add_argument("--source", type=Path, required=True)
    commands.add_parser("describe", help="what the running stack holds: rows, points, Grafana's tables")
    commands.add_parser("first-backups", help="the kinds no repository holds a snapshot of yet, as JSON")
    restic_parser = commands.add_parser("restic", help="run restic on a repository: restic ... -- ARGS")
    restic_parser.add_argument("--repository")
    restic_parser.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    # Dumps hold every token and password hash of the stack: root's alone, whatever directory they land in.
    os.umask(0o077)
    try:
        config = Config.load(args.config)
        if args.command == "check-config":
            return 0
        if args.command == "init":
            created = [repo.name for repo in config.repositories if ensure_repository(config, repo)]
            print(json.dumps({"created": created}))
            return 0
        if args.command == "run":
            return back_up(config, args.kind)
        if args.command == "snapshots":
            print(json.dumps(snapshots(config, config.repository(args.repository)), indent=2))
            return 0
        if args.command == "fetch":
            print(json.dumps(fetch(config, config.repository(args.repository), args.snapshot, args.target)))
            return 0
        if args.command == "restore":
            print(json.dumps(restore(config, args.component, args.source), sort_keys=True))
            return 0
        if args.command == "first-backups":
            print(json.dumps(first_backups_due(config)))
            return 0
        if args.command == "restic":
            repo = config.repository(args.repository)
            arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
            restic(config, repo, *arguments, stdout=None)
            return 0
        print(json.dumps(describe_live(config), sort_keys=True))
        return 0
    except BackupError as error:
        log(f"bloomberg-backup {args.command}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
