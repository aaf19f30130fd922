"""PostgreSQL SCRAM-SHA-256 verifiers, made and checked on the control node (RFC 5802, RFC 7677).

The role compares the inventory's password with the verifier stored in pg_authid without sending the
password anywhere, and sets a new password as a verifier, so the password itself never reaches the
server, its logs or the exec's command line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata

from ansible.errors import AnsibleFilterError

ITERATIONS = 4096  # PostgreSQL's scram_iterations default
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN


def _saslprep(password: str) -> bytes:
    """SASLprep (RFC 4013) as PostgreSQL applies it: on failure the raw bytes are used, as the server does."""
    kept = (char for char in password if not stringprep.in_table_b1(char))
    mapped = "".join(" " if stringprep.in_table_c12(char) else char for char in kept)
    normalized = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    if any(check(char) for char in normalized for check in prohibited):
        return password.encode()
    if any(stringprep.in_table_d1(char) for char in normalized) and (
        any(stringprep.in_table_d2(char) for char in normalized)
        or not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1]))
    ):
        return password.encode()
    return normalized.encode()


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def postgres_scram_verifier(password: str) -> str:
    """A new verifier with a random salt, in pg_authid's format (ALTER ROLE ... PASSWORD accepts it)."""
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("postgres_scram_verifier needs a non-empty password string")
    salt = secrets.token_bytes(SALT_BYTES)
    stored_key, server_key = _keys(password, salt, ITERATIONS)
    salt_b64, stored_b64, server_b64 = (base64.b64encode(x).decode() for x in (salt, stored_key, server_key))
    return f"SCRAM-SHA-256${ITERATIONS}:{salt_b64}${stored_b64}:{server_b64}"


def postgres_scram_matches(verifier: str, password: str) -> bool:
    """True when `verifier` (from pg_authid.rolpassword; empty or MD5 never match) accepts `password`."""
    try:
        method, rest = verifier.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        expected = _keys(password, base64.b64decode(salt, validate=True), int(iterations))
        actual = (base64.b64decode(stored_key, validate=True), base64.b64decode(server_key, validate=True))
    except (ValueError, TypeError, AttributeError):
        return False
    return all(hmac.compare_digest(a, b) for a, b in zip(expected, actual, strict=True))


class FilterModule:
    def filters(self):
        return {
            "postgres_scram_verifier": postgres_scram_verifier,
            "postgres_scram_matches": postgres_scram_matches,
        }
