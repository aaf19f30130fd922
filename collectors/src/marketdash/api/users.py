"""Team members: creation (API, CLI, Ansible), authentication, password changes."""

from __future__ import annotations

from typing import Any, Literal

from psycopg import AsyncConnection

from marketdash.api.passwords import hash_password, needs_rehash, verify_password


class UserExistsError(Exception):
    pass


async def list_users(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = await conn.execute("SELECT id, username, role, created_at FROM users ORDER BY id")
    return await cur.fetchall()


async def create_user(conn: AsyncConnection, username: str, password: str, role: str) -> dict[str, Any]:
    password_hash = await hash_password(password)
    cur = await conn.execute(
        """INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)
           ON CONFLICT (username) DO NOTHING RETURNING id, username, role, created_at""",
        (username, password_hash, role),
    )
    row = await cur.fetchone()
    if row is None:
        raise UserExistsError(f"user {username} already exists")
    return row


async def ensure_user(
    conn: AsyncConnection, username: str, password: str, role: str
) -> Literal["created", "updated", "unchanged"]:
    """Make the user exist with this password and role; report what had to change (for Ansible)."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT id, password_hash, role FROM users WHERE username = %s FOR UPDATE", (username,)
        )
        row = await cur.fetchone()
        if row is None:
            await create_user(conn, username, password, role)
            return "created"
        password_ok = await verify_password(row["password_hash"], password)
        if password_ok and row["role"] == role:
            return "unchanged"
        new_hash = row["password_hash"] if password_ok else await hash_password(password)
        await conn.execute(
            "UPDATE users SET password_hash = %s, role = %s, updated_at = now() WHERE id = %s",
            (new_hash, role, row["id"]),
        )
        return "updated"


async def authenticate(conn: AsyncConnection, username: str, password: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, username, role, created_at, password_hash FROM users WHERE username = %s", (username,)
    )
    row = await cur.fetchone()
    if not await verify_password(row["password_hash"] if row else None, password):
        return None
    assert row is not None  # verify_password is False without a stored hash
    if needs_rehash(row["password_hash"]):
        await set_password(conn, row["id"], password)
    return row


async def set_password(conn: AsyncConnection, user_id: int, password: str) -> bool:
    password_hash = await hash_password(password)
    cur = await conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s", (password_hash, user_id)
    )
    return cur.rowcount == 1


async def delete_user(conn: AsyncConnection, user_id: int) -> bool:
    cur = await conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    return cur.rowcount == 1
