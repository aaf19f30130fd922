"""The real API app on a real, migrated PostgreSQL database, and a small api_team to exercise it with.

A plugin that the API test modules load with `pytest_plugins`, not a conftest.py: every conftest.py is
imported as the module `conftest`, and a second one would shadow the root one that other tests import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import dict_row

from marketdash.api import users
from marketdash.api.app import create_app
from marketdash.api.migrations import migrate
from marketdash.api.settings import ApiSettings
from marketdash_testing.api_server import PASSWORD

# Cheap argon2 for the test run only (read when the first hash is made); production keeps RFC 9106's cost.
# Set at import so that the CLI subprocesses the tests start inherit it too.
os.environ.setdefault("MARKETDASH_API_ARGON2_TIME_COST", "1")
os.environ.setdefault("MARKETDASH_API_ARGON2_MEMORY_KIB", "64")
os.environ.setdefault("MARKETDASH_API_ARGON2_PARALLELISM", "1")

JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def migrated_template(postgres_server: str) -> str:
    """A database migrated once per run; each test gets a copy (much faster than migrating each time)."""
    name = f"api_template_{os.urandom(4).hex()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # The logins the deployment creates before the API migrates, which the migrations grant to.
        for login in ("marketdash_alerts", "marketdash_feeder", "grafana_reader"):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone() is None:
                conn.execute(f"CREATE ROLE {login} LOGIN")
    migrate(_database_dsn(postgres_server, name))
    return name


def _database_dsn(server_dsn: str, name: str) -> str:
    return server_dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def migrated_db(postgres_server: str, migrated_template: str) -> Iterator[str]:
    name = f"api_{os.urandom(6).hex()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    yield _database_dsn(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def api_settings(dsn: str, **overrides: object) -> ApiSettings:
    values: dict[str, object] = {
        "postgres_dsn": dsn,
        "jwt_secret": JWT_SECRET,
        "pool_min_size": 1,
        "rate_limit_user_per_minute": 10_000,
        "rate_limit_ip_per_minute": 10_000,
        "rate_limit_login_per_minute": 10_000,
        "rate_limit_login_per_username_per_minute": 10_000,
    }
    return ApiSettings(**{**values, **overrides})


async def add_user(dsn: str, username: str, role: str = "member") -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return (await users.create_user(conn, username, PASSWORD, role))["id"]


@asynccontextmanager
async def running_app(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (pool) running, reached in process through httpx's ASGI transport."""
    async with app_clients(settings, "127.0.0.1") as (client,):
        yield client


@asynccontextmanager
async def app_and_client(settings: ApiSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The running app itself beside its client: for tests that look at its state (pool, read cache)."""
    app = create_app(settings)
    async with _clients(app, "127.0.0.1") as (client,):
        yield app, client


@asynccontextmanager
async def app_clients(settings: ApiSettings, *addresses: str) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """One running app, a client per address (the peer address the app sees)."""
    async with _clients(create_app(settings), *addresses) as clients:
        yield clients


@asynccontextmanager
async def _clients(app: FastAPI, *addresses: str) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
        clients = []
        for address in addresses:
            transport = httpx.ASGITransport(app=app, client=(address, 50000))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://api.test")
                )
            )
        yield tuple(clients)


@dataclass(frozen=True)
class Member:
    id: int
    username: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Team:
    client: httpx.AsyncClient
    dsn: str
    admin: Member
    alice: Member
    bob: Member


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def search_symbols(team: Team, q: str, **params: object) -> list[str]:
    """The symbols GET /api/assets/search answers for q, best match first."""
    response = await team.client.get(
        "/api/assets/search", params={"q": q, **params}, headers=team.alice.headers
    )
    assert response.status_code == 200, response.text
    return [asset["symbol"] for asset in response.json()]


@pytest.fixture
async def api_client(migrated_db: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(api_settings(migrated_db)) as client:
        yield client


@pytest.fixture
async def api_team(api_client: httpx.AsyncClient, migrated_db: str) -> Team:
    members = {}
    for username, role in (("root", "admin"), ("alice", "member"), ("bob", "member")):
        user_id = await add_user(migrated_db, username, role)
        members[username] = Member(user_id, username, await login(api_client, username))
    return Team(api_client, migrated_db, members["root"], members["alice"], members["bob"])
