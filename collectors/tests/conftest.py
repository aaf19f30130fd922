"""Fixtures shared by every service's tests: real servers started by the test run itself
(marketdash_testing.servers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from marketdash_testing.servers import (
    InfluxDB2,
    ServerUnavailableError,
    VictoriaMetrics,
    free_port,
    postgres_cluster,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth; yields the superuser DSN."""
    try:
        with postgres_cluster() as dsn:
            yield dsn
    except ServerUnavailableError as missing:
        pytest.fail(str(missing))


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database per test; yields its DSN."""
    name = f"test_{os.urandom(6).hex()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def victoria_metrics_server(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path / "victoria-metrics", free_port())
    try:
        server.start()
    except ServerUnavailableError as missing:
        pytest.fail(str(missing))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def victoria_metrics(victoria_metrics_server: VictoriaMetrics) -> str:
    """Base URL of a fresh victoria-metrics; write to `{url}/api/v2/write`, read with its /api/v1/export."""
    return victoria_metrics_server.url


@pytest.fixture(scope="session")
def influxdb2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB2]:
    """A real InfluxDB 2 (scripts/build-influxd.sh's influxd), set up with org `bloomberg`; tests make their
    own buckets and tokens. A missing binary fails the test with the command that builds it."""
    server = InfluxDB2(tmp_path_factory.mktemp("influxdb2"), free_port())
    try:
        server.start()
    except ServerUnavailableError as missing:
        server.stop()
        pytest.fail(str(missing))
    try:
        yield server
    finally:
        server.stop()
