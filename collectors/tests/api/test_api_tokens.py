"""Access tokens as the API verifies them: a verified token is remembered, never past its expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from marketdash.api.tokens import VERIFIED_KEPT, InvalidTokenError, TokenIssuer

SECRET = "a test secret that is long enough for HS256"


def test_a_remembered_token_is_refused_once_it_expires():
    issuer = TokenIssuer(SECRET, "marketdash-api", ttl_seconds=2)
    token = issuer.issue(7, "member", password_version=2)
    first = issuer.claims(token)
    assert (first.user_id, first.password_version) == (7, 2)
    assert token in issuer._verified
    assert issuer.claims(token) == first
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(InvalidTokenError, match="token expired"):
        issuer.claims(token)
    assert token not in issuer._verified
    with pytest.raises(InvalidTokenError, match="token expired"):  # verified again, refused by PyJWT
        issuer.claims(token)


def test_a_token_of_another_secret_is_refused_even_after_ours_was_remembered():
    ours = TokenIssuer(SECRET, "marketdash-api", ttl_seconds=600)
    theirs = TokenIssuer("another secret, just as long as ours is", "marketdash-api", ttl_seconds=600)
    ours.claims(ours.issue(7, "member", password_version=0))
    with pytest.raises(InvalidTokenError, match="signature is invalid"):
        ours.claims(theirs.issue(7, "member", password_version=0))


def test_the_remembered_tokens_are_bounded():
    issuer = TokenIssuer(SECRET, "marketdash-api", ttl_seconds=600)
    tokens = [issuer.issue(user_id, "member", password_version=0) for user_id in range(VERIFIED_KEPT + 50)]
    for token in tokens:
        issuer.claims(token)
    assert len(issuer._verified) == VERIFIED_KEPT
    # The oldest went first; any of them is still accepted, verified again.
    assert tokens[0] not in issuer._verified
    assert issuer.claims(tokens[0]).user_id == 0
