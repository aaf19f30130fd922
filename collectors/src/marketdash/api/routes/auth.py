"""Logging in and managing team members."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response, status

from marketdash.api import users
from marketdash.api.deps import (
    Admin,
    Caller,
    Conn,
    CurrentUser,
    UserIdPath,
    check_owner,
    too_many_requests,
)
from marketdash.api.models import Error, LoginIn, PasswordIn, TokenOut, UserIn, UserOut
from marketdash.api.passwords import hash_password, needs_rehash, verify_password
from marketdash.api.routes import AUTHENTICATED_ERRORS
from marketdash.api.routes.owned_data import OWNED_TABLES

router = APIRouter(tags=["auth and users"], responses=AUTHENTICATED_ERRORS)
T = TypeVar("T")


async def _in_hashing_slot(state: Any, work: Callable[[], Awaitable[T]]) -> T:
    """Run an argon2 computation in one of the process's slots; 503 when none frees up in time."""
    try:
        async with asyncio.timeout(state.hashing_wait_s):
            await state.hashing_slots.acquire()
    except TimeoutError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "too many password checks under way, retry later",
            headers={"Retry-After": "5"},
        ) from None
    try:
        return await work()
    finally:
        state.hashing_slots.release()


async def _password_matches(state: Any, account: str, stored: str | None, password: str) -> bool:
    """A password check within the account's budget of failures: guesses spread over many addresses
    still meet a limit, and a member's own successes cost nothing."""
    wait = state.username_limiter.blocked(account)
    if wait:
        raise too_many_requests(wait, "username")
    valid = await _in_hashing_slot(state, lambda: verify_password(stored, password))
    if not valid:
        state.username_limiter.hit(account)
    return valid


@router.post(
    "/api/auth/token",
    response_model=TokenOut,
    responses={401: {"model": Error, "description": "Wrong username or password"}},
)
async def login(body: LoginIn, request: Request) -> TokenOut:
    """Exchange a username and password for a bearer token.

    argon2 costs tens of MiB and a good part of a second by design: the database connection is given
    back before the password is checked (other requests need it meanwhile), and at most
    `argon2_max_concurrent` checks run at once per process (the others queue, bounding memory)."""
    # Stricter than the general per-IP limit: this is where passwords get guessed.
    state = request.app.state
    client = request.client.host if request.client else "unknown"
    wait = state.login_limiter.hit(client)
    if wait:
        raise too_many_requests(wait, "login")
    async with state.pool.connection() as conn:
        user = await users.login_row(conn, body.username)
    stored = user["password_hash"] if user else None
    if not await _password_matches(state, body.username.lower(), stored, body.password) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    if needs_rehash(user["password_hash"]):
        rehashed = await _in_hashing_slot(state, lambda: hash_password(body.password))
        async with state.pool.connection() as conn:
            await users.store_rehash(conn, user["id"], rehashed, user["password_version"])
    tokens = state.tokens
    token = tokens.issue(user["id"], user["role"], user["password_version"])
    return TokenOut(access_token=token, expires_in=tokens.ttl_seconds)


@router.get("/api/me", response_model=UserOut)
async def me(caller: CurrentUser) -> Caller:
    return caller


@router.get("/api/users", response_model=list[UserOut])
async def list_users(_admin: Admin, conn: Conn) -> list[dict]:
    return await users.list_users(conn)


@router.post("/api/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, _admin: Admin, conn: Conn) -> dict:
    try:
        return await users.create_user(conn, body.username, body.password, body.role)
    except users.UserExistsError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


@router.delete("/api/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: UserIdPath, admin: Admin, conn: Conn, request: Request) -> Response:
    """Delete a user and everything they own."""
    if user_id == admin.id:
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin cannot delete their own account")
    if not await users.delete_user(conn, user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    request.app.state.reads.changed("users", *OWNED_TABLES)  # the user, and by cascade all they owned
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/api/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    user_id: UserIdPath, body: PasswordIn, caller: CurrentUser, request: Request
) -> Response:
    """Set a user's password; every token issued before it stops working. Changing one's own password
    takes the current one (its failures count like failed logins); an admin resets another user's
    without it. No connection is held while argon2 runs."""
    check_owner(caller, user_id)
    state = request.app.state
    if user_id == caller.id:
        if body.current_password is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "current_password is required")
        async with state.pool.connection() as conn:
            stored = await users.password_hash(conn, user_id)
        if not await _password_matches(state, caller.username.lower(), stored, body.current_password):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password is wrong")
    new_hash = await _in_hashing_slot(state, lambda: hash_password(body.password))
    async with state.pool.connection() as conn:
        if not await users.store_new_password(conn, user_id, new_hash):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    state.reads.changed("users")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
