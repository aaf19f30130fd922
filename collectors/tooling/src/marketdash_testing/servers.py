"""Real servers started by the tests and the benches themselves, on 127.0.0.1 only, and the helpers to wait
on them and to run a service as its process does."""

from __future__ import annotations

import asyncio
import glob
import inspect
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx

from marketdash.core.flux import parse_flux_csv
from marketdash.core.service import Service, ServiceSettings, serve


class ServerUnavailableError(RuntimeError):
    """A server the tests need is not installed or did not start; the message says what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], within_s: float) -> bool:
    """Poll `predicate` (a function or a coroutine function) until it holds or `within_s` passes; its final
    value."""

    async def holds() -> bool:
        result = predicate()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await holds():
            return True
        await asyncio.sleep(0.02)
    return await holds()


@asynccontextmanager
async def serving(service: Service, settings: ServiceSettings) -> AsyncIterator[asyncio.Task[None]]:
    """The service run as its process runs it (`marketdash.core.service.serve`), stopped at the end of the
    block as SIGTERM stops it; an error the service ended with is raised there."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(service, settings, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerUnavailableError(
        "PostgreSQL server binaries not found: apt-get install postgresql (make test does it)"
    )


def _as_postgres_user() -> dict:
    # initdb refuses to run as root; CI and the sandbox run tests as root.
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth; yields the superuser DSN."""
    bindir = _postgres_bindir()
    owner = _as_postgres_user()
    datadir = Path(tempfile.mkdtemp(prefix="marketdash-pg-"))
    if owner:
        os.chown(datadir, owner["user"], owner["group"])
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, **owner)

    run(str(bindir / "initdb"), "-D", str(datadir / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    server_options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={datadir} -c fsync=off"
    )
    run(str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-w", "-l", str(datadir / "log"),
        "-o", server_options, "start")  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(datadir, ignore_errors=True)


class VictoriaMetrics:
    """A victoria-metrics process on 127.0.0.1 that a test can stop and start again on the same port.

    Debian's victoria-metrics accepts the InfluxDB v2 write API (numeric fields; `measurement_field` becomes
    the metric name, tags become labels; the bucket is not kept).
    """

    def __init__(self, storage: Path, port: int) -> None:
        self.storage, self.port = storage, port
        self.url = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            raise ServerUnavailableError("victoria-metrics not found: apt-get install victoria-metrics")
        self._process = subprocess.Popen(
            [
                binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.storage}",
                "-loggerLevel=ERROR",
                "-search.latencyOffset=0s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise ServerUnavailableError("victoria-metrics did not answer within 15 s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=15)
            self._process = None

    def export(self, match: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Every stored sample of the series matching `match`: {labels: [(timestamp_ms, value), ...]}.

        New series become searchable a moment after they are written, even after a forced flush: read
        until two reads a tenth of a second apart agree on something (or give up after five seconds)."""
        previous: dict | None = None
        deadline = time.monotonic() + 5
        while True:
            current = self._export_once(match)
            if (current and current == previous) or time.monotonic() > deadline:
                return current
            previous = current
            time.sleep(0.1)

    def _export_once(self, match: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        httpx.get(f"{self.url}/internal/force_flush", timeout=5)
        response = httpx.get(f"{self.url}/api/v1/export", params={"match[]": match}, timeout=10)
        response.raise_for_status()
        series = {}
        for line in response.text.splitlines():
            row = json.loads(line)
            key = tuple(sorted(row["metric"].items()))
            series[key] = sorted(zip(row["timestamps"], row["values"], strict=True))
        return series


# The release scripts/build-influxd.sh builds by default: the official image's pin (influxdb_image).
INFLUXDB_VERSION = os.environ.get("INFLUXDB_VERSION", "v2.7.12")
_BUILD_INFLUXD = "scripts/build-influxd.sh"


def influxd_binary() -> Path:
    """The influxd that scripts/build-influxd.sh cached (InfluxDB 2 has no Debian package)."""
    cache = Path(os.environ.get("BLOOMBERG_TOOLS_CACHE", Path.home() / ".cache" / "bloomberg-tools"))
    binary = cache / f"influxdb-{INFLUXDB_VERSION.removeprefix('v')}" / "bin" / "influxd"
    if not os.access(binary, os.X_OK):
        raise ServerUnavailableError(
            f"{binary} is missing: build it with `{_BUILD_INFLUXD}` from the repository root "
            "(20-40 min the first time, cached afterwards; make pytest runs it)"
        )
    return binary


class InfluxDB2:
    """A real influxd 2.x on 127.0.0.1 in a temporary directory, set up (user, org, first bucket, operator
    token) through its HTTP API like the official image's first start."""

    ORG = "bloomberg"

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.token = os.urandom(24).hex()
        self.org_id = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = influxd_binary()
        log = (self.root / "influxd.log").open("wb")
        self._process = subprocess.Popen(
            [
                str(binary),
                f"--bolt-path={self.root / 'influxd.bolt'}",
                f"--engine-path={self.root / 'engine'}",
                f"--sqlite-path={self.root / 'influxd.sqlite'}",
                f"--http-bind-address=127.0.0.1:{self.port}",
                "--reporting-disabled",
                "--log-level=error",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log_text = (self.root / "influxd.log").read_text()
                raise ServerUnavailableError(f"influxd exited with {self._process.returncode}: {log_text}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise ServerUnavailableError("influxd did not answer /health within 60 s")
        setup = httpx.post(
            f"{self.url}/api/v2/setup",
            json={
                "username": "admin",
                "password": os.urandom(12).hex(),
                "org": self.ORG,
                "bucket": "setup",
                "retentionPeriodSeconds": 0,
                "token": self.token,
            },
            timeout=10,
        )
        setup.raise_for_status()
        self.org_id = setup.json()["org"]["id"]

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def api(self, method: str, path: str, token: str | None = None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Token {token or self.token}"}
        return httpx.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def bucket(self, name: str, retention_s: int = 0) -> str:
        """The id of the bucket of this name, made on first use (the tests of a session share the server)."""
        found = self.api("GET", "/buckets", params={"orgID": self.org_id, "name": name})
        if found.status_code != 404:  # influxd's answer when no bucket has the name
            found.raise_for_status()
            return found.json()["buckets"][0]["id"]
        rules = [{"type": "expire", "everySeconds": retention_s}] if retention_s else []
        response = self.api(
            "POST", "/buckets", json={"orgID": self.org_id, "name": name, "retentionRules": rules}
        )
        response.raise_for_status()
        return response.json()["id"]

    def create_token(self, *permissions: tuple[str, str]) -> str:
        """A token holding (action, bucket id) permissions only."""
        body = {
            "orgID": self.org_id,
            "description": "test",
            "permissions": [
                {"action": action, "resource": {"type": "buckets", "id": bucket, "orgID": self.org_id}}
                for action, bucket in permissions
            ],
        }
        response = self.api("POST", "/authorizations", json=body)
        response.raise_for_status()
        return response.json()["token"]

    def flux(self, query: str, token: str | None = None) -> httpx.Response:
        """Run a Flux query; the body is CSV, one header row per table, tables separated by a blank line."""
        return self.api(
            "POST",
            "/query",
            token,
            params={"org": self.ORG},
            json={"query": query, "dialect": {"annotations": []}},
        )

    def flux_rows(self, query: str) -> list[dict[str, str]]:
        response = self.flux(query)
        response.raise_for_status()
        return parse_flux_csv(response.text)
