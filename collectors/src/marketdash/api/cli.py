"""``python -m marketdash.api``: migrate, manage users and the inventory's accounts, seed a demo, serve.

Passwords are read from standard input or an environment variable, never from the command line, where
any local user could read them in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from pydantic import TypeAdapter, ValidationError

from marketdash.api import demo, users
from marketdash.api.accounts import Accounts, ensure_accounts
from marketdash.api.migrations import migrate
from marketdash.api.models import Password, Role, Username
from marketdash.api.settings import ApiSettings
from marketdash.core.logging import configure_logging
from marketdash.core.service import load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

T = TypeVar("T")
DEFAULT_PASSWORD_ENV = "MARKETDASH_API_USER_PASSWORD"  # noqa: S105 - a variable's name


class UsageError(Exception):
    pass


def _emit(result: dict[str, Any]) -> None:
    # One JSON line: Ansible reads `changed` from it.
    print(json.dumps(result), flush=True)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get(args.password_env, "")
        if not password:
            raise UsageError(f"no password: set {args.password_env} or pass --password-stdin")
    try:
        return TypeAdapter(Password).validate_python(password)
    except ValidationError:
        raise UsageError("password must be 8 to 1024 characters, without NUL") from None


def _username(name: str) -> str:
    try:
        return TypeAdapter(Username).validate_python(name)
    except ValidationError:
        raise UsageError(f"username {name!r} must be 1-64 characters of A-Z a-z 0-9 _ . @ -") from None


async def _with_connection(dsn: str, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return await work(conn)


def _user_command(args: argparse.Namespace, settings: ApiSettings) -> int:
    username, role, password = _username(args.username), args.role, _password(args)
    if args.command == "ensure-user":
        action = asyncio.run(
            _with_connection(
                settings.postgres_dsn, lambda conn: users.ensure_user(conn, username, password, role)
            )
        )
        _emit({"username": username, "role": role, "action": action, "changed": action != "unchanged"})
        return 0
    try:
        asyncio.run(
            _with_connection(
                settings.postgres_dsn, lambda conn: users.create_user(conn, username, password, role)
            )
        )
    except users.UserExistsError as error:
        raise UsageError(str(error)) from None
    _emit({"username": username, "role": role, "action": "created", "changed": True})
    return 0


def _accounts_command(settings: ApiSettings) -> int:
    try:
        accounts = Accounts.model_validate_json(sys.stdin.read())
    except ValidationError as error:
        # Said without the values: they hold passwords.
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False)
        )
        raise UsageError(f"accounts on stdin refused: {problems}") from None
    _emit(asyncio.run(_with_connection(settings.postgres_dsn, lambda conn: ensure_accounts(conn, accounts))))
    return 0


def _served_app() -> FastAPI:
    from marketdash.api.app import create_app  # imported only to serve: the other commands start faster

    settings = load_settings(ApiSettings)
    configure_logging("api", settings.log_level)
    return create_app(settings)


def _serve(settings: ApiSettings) -> int:
    import uvicorn

    settings.require_jwt_secret()  # fail here, clearly, rather than in every worker
    configure_logging("api", settings.log_level)
    uvicorn.run(
        "marketdash.api.cli:_served_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m marketdash.api", description=__doc__, allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply pending migrations and refresh the asset catalogue")
    for name, text in (
        ("create-user", "create a user; fails if the username exists"),
        ("ensure-user", "create or update a user to this password and role (idempotent; for Ansible)"),
    ):
        sub = commands.add_parser(name, help=text, allow_abbrev=False)
        sub.add_argument("username")
        sub.add_argument("--role", choices=Role.__args__, default="member")
        source = sub.add_mutually_exclusive_group()
        source.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        source.add_argument(
            "--password-env",
            default=DEFAULT_PASSWORD_ENV,
            metavar="VAR",
            help=f"read the password from this environment variable (default {DEFAULT_PASSWORD_ENV})",
        )
    commands.add_parser(
        "ensure-accounts",
        help=(
            'the inventory\'s accounts, JSON on stdin: {"users": [{"login", "password", "role", "api_role", '
            '"state"}], "watchlist": {"name", "assets"}}; each user without a watchlist gets that one '
            "(idempotent; docs/api.md)"
        ),
        allow_abbrev=False,
    )
    seed = commands.add_parser(
        "seed-demo", help="create a demo team with watchlists, rules and positions", allow_abbrev=False
    )
    seed.add_argument(
        "--password-env",
        default="MARKETDASH_API_DEMO_PASSWORD",
        metavar="VAR",
        help="the demo users' password (default: a random one, printed once)",
    )
    commands.add_parser("serve", help="serve the API with uvicorn (MARKETDASH_API_HOST, _PORT, _WORKERS)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Warnings and errors only until a command says otherwise: Ansible shows these commands' stderr.
    configure_logging("api", "WARNING")
    settings = load_settings(ApiSettings)
    try:
        if args.command == "migrate":
            configure_logging("api", settings.log_level)
            _emit({"applied": migrate(settings.postgres_dsn)})
            return 0
        if args.command in ("create-user", "ensure-user"):
            return _user_command(args, settings)
        if args.command == "ensure-accounts":
            return _accounts_command(settings)
        if args.command == "seed-demo":
            result = asyncio.run(
                _with_connection(
                    settings.postgres_dsn, lambda conn: demo.seed(conn, os.environ.get(args.password_env))
                )
            )
            _emit(result)
            return 0
        return _serve(settings)
    except (UsageError, ValueError, psycopg.Error) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
