"""JWT access tokens: HS256 only, with expiry, issuer and audience checked on every request."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
AUDIENCE = "marketdash"


class InvalidTokenError(Exception):
    """The bearer token is absent, malformed, forged, expired or not for us; the message says which."""


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str
    ttl_seconds: int

    def issue(self, user_id: int, role: str) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "role": role,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "iss": self.issuer,
            "aud": AUDIENCE,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def user_id(self, token: str) -> int:
        """The user id the token was issued to. Only the role stored in the database is trusted later."""
        try:
            # A fixed algorithm list is what refuses `alg: none` and RS/HS confusion.
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("token expired") from None
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("token signature is invalid") from None
        except jwt.InvalidTokenError as error:
            raise InvalidTokenError(f"invalid token: {error}") from None
        try:
            return int(claims["sub"])
        except ValueError:
            raise InvalidTokenError("invalid token: subject is not a user id") from None
