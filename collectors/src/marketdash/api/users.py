"""Team members: creation (API, CLI, Ansible), authentication, password changes."""

from __future__ import annotations

from typing import Any, Literal

from psycopg import AsyncConnection

from marketdash.api.passwords import hash_password, verify_password


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
        if not password_ok:
            await _store_hash(conn, row["id"], await hash_password(password), new_password=True)
        await set_role(conn, row["id"], role)
        return "updated"


async def set_role(conn: AsyncConnection, user_id: int, role: str) -> None:
    await conn.execute("UPDATE users SET role = %s, updated_at = now() WHERE id = %s", (role, user_id))


async def login_row(conn: AsyncConnection, username: str) -> dict[str, Any] | None:
    """What a login needs of a user; the caller verifies the password without holding the connection."""
    cur = await conn.execute(
        "SELECT id, username, role, created_at, password_hash, password_version FROM users"
        " WHERE username = %s",
        (username,),
    )
    return await cur.fetchone()


async def store_rehash(
    conn: AsyncConnection, user_id: int, password_hash: str, password_version: int
) -> None:
    """The same password under new hashing parameters: its tokens stay valid. Nothing is written when the
    password changed meanwhile (the check took a while): the old password must not come back."""
    await conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s AND password_version = %s",
        (password_hash, user_id, password_version),
    )


async def password_hash(conn: AsyncConnection, user_id: int) -> str | None:
    cur = await conn.execute("SELECT password_hash FROM users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    return row["password_hash"] if row else None


async def store_new_password(conn: AsyncConnection, user_id: int, password_hash: str) -> bool:
    """A new password's hash; every token issued before it is refused from now on."""
    return await _store_hash(conn, user_id, password_hash, new_password=True)


async def _store_hash(conn: AsyncConnection, user_id: int, password_hash: str, *, new_password: bool) -> bool:
    cur = await conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now(),"
        " password_version = password_version + %s WHERE id = %s",
        (password_hash, 1 if new_password else 0, user_id),
    )
    return cur.rowcount == 1


async def delete_user(conn: AsyncConnection, user_id: int) -> bool:
    cur = await conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    return cur.rowcount == 1
