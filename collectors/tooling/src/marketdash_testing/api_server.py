"""The API as production runs it: `python -m marketdash.api serve` (uvicorn) in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from marketdash_testing.servers import free_port

# The password of every user the API tests create.
PASSWORD = "correct horse battery"


def cli_env(dsn: str, **settings: str) -> dict[str, str]:
    env = {**os.environ, "MARKETDASH_API_POSTGRES_DSN": dsn}
    env.update({f"MARKETDASH_API_{key.upper()}": value for key, value in settings.items()})
    return env


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketdash.api", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True)
class Served:
    base_url: str
    pid: int


@contextmanager
def served_api(env: dict[str, str]) -> Iterator[Served]:
    """Start the server, wait until it answers /healthz, yield where it listens, stop it."""
    port = free_port()
    env = {**env, "MARKETDASH_API_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "marketdash.api", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"API exited with {process.returncode}: {process.stderr.read()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("API did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield Served(base_url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
