"""Request-scoped dependencies: a pooled connection, the authenticated caller, authorisation checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from marketdash.api.metrics import RATE_LIMITED
from marketdash.api.tokens import InvalidTokenError, TokenClaims

MAX_ID = 2_147_483_647  # PostgreSQL int: a larger id could only be a 404, never a database error.


async def _connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection, Depends(_connection)]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/auth/token")


@dataclass(frozen=True)
class Caller:
    id: int
    username: str
    role: str
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def too_many_requests(wait: int, scope: str) -> HTTPException:
    RATE_LIMITED.labels(scope).inc()
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"rate limit exceeded ({scope}); retry in {wait} s",
        headers={"Retry-After": str(wait)},
    )


async def _claims(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TokenClaims:
    """The token's claims, checked before any connection is taken: a request with no token, a forged or
    expired one, or a throttled user costs no database work and holds no pooled connection."""
    if credentials is None:
        raise unauthorized("missing bearer token: POST /api/auth/token first")
    try:
        claims = request.app.state.tokens.claims(credentials.credentials)
    except InvalidTokenError as error:
        raise unauthorized(str(error)) from None
    wait = request.app.state.user_limiter.hit(str(claims.user_id))
    if wait:
        raise too_many_requests(wait, "user")
    return claims


Claims = Annotated[TokenClaims, Depends(_claims)]


@dataclass(frozen=True)
class _Account:
    caller: Caller
    password_version: int


async def _caller(request: Request, claims: Claims) -> Caller:
    """The token's user as the database has it (served from the read cache): the role comes from the
    database, not the token, so a demotion or deletion takes effect once each API process hears of it, a
    millisecond or so after the commit. No connection stays held for the rest of the request."""
    state = request.app.state
    account = await state.reads.get(
        "users", claims.user_id, lambda: _load_account(state.pool, claims.user_id)
    )
    if account is None:
        raise unauthorized("the token's user no longer exists")
    if account.password_version != claims.password_version:
        raise unauthorized("the password has changed since this token was issued: log in again")
    return account.caller


async def _load_account(pool: AsyncConnectionPool, user_id: int) -> _Account | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, username, role, created_at, password_version FROM users WHERE id = %s", (user_id,)
        )
        row = await cur.fetchone()
    if row is None:
        return None
    return _Account(password_version=row.pop("password_version"), caller=Caller(**row))


# A route lists CurrentUser before Conn: FastAPI resolves parameters in order, so the token is checked (and
# a refused request answered) before a pooled connection is taken.
CurrentUser = Annotated[Caller, Depends(_caller)]


async def _admin(caller: CurrentUser) -> Caller:
    if not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return caller


Admin = Annotated[Caller, Depends(_admin)]


def check_owner(caller: Caller, user_id: int) -> None:
    """A member acts only on their own data; an admin on anyone's."""
    if not caller.is_admin and caller.id != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "members may only access their own data")


UserIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A user's id")]
