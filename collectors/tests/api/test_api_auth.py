import base64
import json
import time

import jwt
import pytest
from api_fixtures import JWT_SECRET, add_user, api_settings, app_and_client, login

from marketdash.api.tokens import AUDIENCE
from marketdash_testing.api_server import PASSWORD

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


def _claims(user_id: int, **overrides):
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "iss": "marketdash-api",
        "aud": AUDIENCE,
        "pwv": 0,
    }
    return {**claims, **overrides}


def _unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_login_gives_a_token_that_names_the_caller(api_team):
    response = await api_team.client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = await api_team.client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "alice"
    assert me.json()["role"] == "member"
    assert "password" not in json.dumps(me.json())


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD), ("alice", PASSWORD.upper())]
)
async def test_wrong_credentials_are_refused_alike(api_team, username, password):
    response = await api_team.client.post(
        "/api/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}


BAD_TOKENS = {
    "expired": "token expired",
    "forged": "token signature is invalid",
    "alg none": "invalid token",
    "no expiry": "invalid token",
    "other issuer": "invalid token",
    "other audience": "invalid token",
    "subject not a user id": "invalid token",
    "user does not exist": "the token's user no longer exists",
    "no password version": "invalid token",
    "an older password": "the password has changed since this token was issued",
    "garbage": "invalid token",
}


def _bad_token(case: str, user_id: int) -> str:
    return {
        "expired": lambda: jwt.encode(_claims(user_id, iat=1, exp=2), JWT_SECRET, algorithm="HS256"),
        "forged": lambda: jwt.encode(
            _claims(user_id), "another secret of enough length 123456", algorithm="HS256"
        ),
        "alg none": lambda: _unsigned(_claims(user_id)),
        "no expiry": lambda: jwt.encode(
            {k: v for k, v in _claims(user_id).items() if k != "exp"}, JWT_SECRET
        ),
        "other issuer": lambda: jwt.encode(
            _claims(user_id, iss="someone-else"), JWT_SECRET, algorithm="HS256"
        ),
        "other audience": lambda: jwt.encode(_claims(user_id, aud="grafana"), JWT_SECRET, algorithm="HS256"),
        "subject not a user id": lambda: jwt.encode(
            _claims(user_id, sub="root"), JWT_SECRET, algorithm="HS256"
        ),
        "user does not exist": lambda: jwt.encode(_claims(999_999), JWT_SECRET, algorithm="HS256"),
        "no password version": lambda: jwt.encode(
            {k: v for k, v in _claims(user_id).items() if k != "pwv"}, JWT_SECRET, algorithm="HS256"
        ),
        "an older password": lambda: jwt.encode(_claims(user_id, pwv=-1), JWT_SECRET, algorithm="HS256"),
        "garbage": lambda: "not.a.token",
    }[case]()


async def test_bad_tokens_are_refused_with_401_and_the_reason(api_team):
    # One test for all cases: each is a single request, and a database per case would cost far more.
    for case, message in BAD_TOKENS.items():
        token = _bad_token(case, api_team.admin.id)
        response = await api_team.client.get("/api/users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, case
        assert response.json()["detail"].startswith(message), case
        assert response.headers["WWW-Authenticate"] == "Bearer", case


# Refused on the token alone: the user's row is never needed.
TOKEN_ONLY_CASES = [case for case, message in BAD_TOKENS.items() if message == "invalid token"]
TOKEN_ONLY_CASES += ["expired", "forged"]


async def test_a_token_refused_on_its_own_takes_no_pooled_connection(migrated_db):
    # A flood of forged tokens must not queue behind, or starve, the requests of real users.
    user_id = await add_user(migrated_db, "carol")
    async with app_and_client(api_settings(migrated_db)) as (app, client):

        def connections_taken() -> int:
            return app.state.pool.get_stats().get("requests_num", 0)

        before = connections_taken()
        for case in TOKEN_ONLY_CASES:
            headers = {"Authorization": f"Bearer {_bad_token(case, user_id)}"}
            response = await client.get(f"/api/watchlists/{user_id}", headers=headers)
            assert response.status_code == 401, case
        assert (await client.get(f"/api/watchlists/{user_id}")).status_code == 401  # no token
        assert connections_taken() == before
        # The positive control: a good token's first request does take some (its user, its lists).
        good = jwt.encode(_claims(user_id, role="member"), JWT_SECRET, algorithm="HS256")
        response = await client.get(f"/api/watchlists/{user_id}", headers={"Authorization": f"Bearer {good}"})
        assert response.status_code == 200
        assert connections_taken() > before


async def test_a_well_formed_token_of_our_own_is_accepted(api_team):
    # The positive control of the cases above: same construction, right secret, right claims.
    token = jwt.encode(_claims(api_team.admin.id), JWT_SECRET, algorithm="HS256")
    response = await api_team.client.get("/api/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_missing_or_non_bearer_credentials_are_refused(api_team):
    for headers in ({}, {"Authorization": "Basic YWxpY2U6eA=="}, {"Authorization": "Bearer"}):
        response = await api_team.client.get(f"/api/watchlists/{api_team.alice.id}", headers=headers)
        assert response.status_code == 401, headers


async def test_the_role_is_read_from_the_database_not_the_token(api_team):
    # A token claiming admin for a member grants nothing; a demotion takes effect before the token expires.
    claims_admin = jwt.encode(_claims(api_team.alice.id, role="admin"), JWT_SECRET, algorithm="HS256")
    response = await api_team.client.get("/api/users", headers={"Authorization": f"Bearer {claims_admin}"})
    assert response.status_code == 403
    second_admin = await add_user(api_team.dsn, "second-admin", "admin")
    headers = await login(api_team.client, "second-admin")
    assert (await api_team.client.get("/api/users", headers=headers)).status_code == 200
    demoted = await api_team.client.delete(f"/api/users/{second_admin}", headers=api_team.admin.headers)
    assert demoted.status_code == 204
    assert (await api_team.client.get("/api/users", headers=headers)).status_code == 401


async def test_passwords_are_stored_as_argon2id_hashes(api_team):
    import psycopg

    with psycopg.connect(api_team.dsn) as conn:
        hashes = [row[0] for row in conn.execute("SELECT password_hash FROM users")]
    assert hashes
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


async def test_a_member_changes_their_password_and_the_old_one_stops_working(api_team):
    response = await api_team.client.put(
        f"/api/users/{api_team.alice.id}/password",
        json={"password": "a new long password", "current_password": PASSWORD},
        headers=api_team.alice.headers,
    )
    assert response.status_code == 204
    old = await api_team.client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    assert await login(api_team.client, "alice", "a new long password")


async def test_tokens_issued_before_a_password_change_are_refused(api_team):
    client, alice = api_team.client, api_team.alice
    stolen = alice.headers
    second_device = await login(client, "alice")
    changed = await client.put(
        f"/api/users/{alice.id}/password",
        json={"password": "a new long password", "current_password": PASSWORD},
        headers=second_device,
    )
    assert changed.status_code == 204
    for headers in (stolen, second_device):
        refused = await client.get("/api/me", headers=headers)
        assert refused.status_code == 401
        assert "log in again" in refused.json()["detail"]
    fresh = await login(client, "alice", "a new long password")
    assert (await client.get("/api/me", headers=fresh)).status_code == 200


async def test_an_admin_reset_revokes_the_members_tokens_too(api_team):
    client, alice = api_team.client, api_team.alice
    reset = await client.put(
        f"/api/users/{alice.id}/password",
        json={"password": "reset by the admin"},
        headers=api_team.admin.headers,
    )
    assert reset.status_code == 204
    assert (await client.get("/api/me", headers=alice.headers)).status_code == 401
    assert (await client.get("/api/me", headers=api_team.admin.headers)).status_code == 200


async def test_changing_ones_own_password_takes_the_current_one(api_team):
    client, alice = api_team.client, api_team.alice
    path = f"/api/users/{alice.id}/password"
    missing = await client.put(path, json={"password": "a new long password"}, headers=alice.headers)
    assert missing.status_code == 422
    wrong = await client.put(
        path, json={"password": "a new long password", "current_password": "guess"}, headers=alice.headers
    )
    assert wrong.status_code == 403
    # Nothing changed: the token still works and the old password still logs in.
    assert (await client.get("/api/me", headers=alice.headers)).status_code == 200
    assert await login(client, "alice")


async def test_rehashing_at_login_under_new_parameters_revokes_nothing(api_team):
    import psycopg
    from argon2 import PasswordHasher

    # A hash made under other parameters, as before an operator raised the cost: login re-hashes it.
    older = PasswordHasher(time_cost=2, memory_cost=64, parallelism=1).hash(PASSWORD)
    with psycopg.connect(api_team.dsn) as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (older, api_team.alice.id))
    headers = api_team.alice.headers
    assert await login(api_team.client, "alice")
    with psycopg.connect(api_team.dsn) as conn:
        stored = conn.execute(
            "SELECT password_hash FROM users WHERE id = %s", (api_team.alice.id,)
        ).fetchone()[0]
    assert stored != older
    assert (await api_team.client.get("/api/me", headers=headers)).status_code == 200
