"""Logging in and managing team members."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from marketdash.api import users
from marketdash.api.deps import Admin, Caller, Conn, CurrentUser, UserIdPath, check_owner, too_many_requests
from marketdash.api.models import Error, LoginIn, PasswordIn, TokenOut, UserIn, UserOut
from marketdash.api.passwords import hash_password, needs_rehash, verify_password
from marketdash.api.routes import AUTHENTICATED_ERRORS

router = APIRouter(tags=["auth and users"], responses=AUTHENTICATED_ERRORS)


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
    # Per account too: guesses spread over many addresses still meet a limit.
    wait = state.username_limiter.hit(body.username.lower())
    if wait:
        raise too_many_requests(wait, "username")
    async with state.pool.connection() as conn:
        user = await users.login_row(conn, body.username)
    stored = user["password_hash"] if user else None
    async with state.hashing_slots:
        valid = await verify_password(stored, body.password)
    if not valid or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    if needs_rehash(user["password_hash"]):
        async with state.hashing_slots:
            rehashed = await hash_password(body.password)
        async with state.pool.connection() as conn:
            await users.store_rehash(conn, user["id"], rehashed)
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
async def delete_user(user_id: UserIdPath, admin: Admin, conn: Conn) -> Response:
    """Delete a user and everything they own."""
    if user_id == admin.id:
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin cannot delete their own account")
    if not await users.delete_user(conn, user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/api/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(user_id: UserIdPath, body: PasswordIn, caller: CurrentUser, conn: Conn) -> Response:
    """Set a user's password; every token issued before it stops working. Changing one's own password
    takes the current one; an admin resets another user's without it."""
    check_owner(caller, user_id)
    if user_id == caller.id:
        if body.current_password is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "current_password is required")
        if not await users.check_password(conn, user_id, body.current_password):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password is wrong")
    if not await users.set_password(conn, user_id, body.password):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
