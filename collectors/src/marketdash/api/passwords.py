"""Password hashing with argon2id, its cost from settings."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from marketdash.api.settings import ApiSettings


@cache
def _hasher() -> PasswordHasher:
    settings = ApiSettings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


@cache
def _dummy_hash() -> str:
    # Verified when the username is unknown, so a login takes as long whether or not the user exists.
    return _hasher().hash("not a password of anyone")


async def hash_password(password: str) -> str:
    # argon2 costs a large fraction of a second of CPU by design: off the event loop.
    return await asyncio.to_thread(_hasher().hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)
