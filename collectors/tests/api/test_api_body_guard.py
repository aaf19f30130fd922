"""Bodies are bounded and, except for the login, only read for callers with a valid token."""

from __future__ import annotations

from api_fixtures import add_user, api_settings, login, running_app

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]

MIB = 1024 * 1024


class CountingBody:
    """A request body sent in chunks, counting how many the server asked for."""

    def __init__(self, chunks: int, chunk: bytes) -> None:
        self.chunks, self.chunk, self.sent = chunks, chunk, 0

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.sent += 1
            yield self.chunk


def big_json_array(size: int) -> bytes:
    return ("[" + ",".join(["1"] * (size // 2)) + "]").encode()


async def test_a_large_body_without_a_token_is_refused_before_it_is_read(api_team):
    body = CountingBody(10, b"[" + b"1," * (MIB // 2))
    response = await api_team.client.post(
        "/api/watchlists", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert body.sent == 0


async def test_a_forged_token_does_not_get_its_body_read_either(api_team):
    body = CountingBody(10, b"[" + b"1," * (MIB // 2))
    headers = {"Content-Type": "application/json", "Authorization": "Bearer not.a.token"}
    response = await api_team.client.post("/api/layouts", content=body, headers=headers)
    assert response.status_code == 401
    assert body.sent == 0


async def test_a_declared_length_over_the_cap_is_refused_whoever_sends_it(api_team):
    headers = {**api_team.alice.headers, "Content-Type": "application/json"}
    response = await api_team.client.post("/api/layouts", content=big_json_array(2 * MIB), headers=headers)
    assert response.status_code == 413
    login = await api_team.client.post("/api/auth/token", content=big_json_array(2 * MIB))
    assert login.status_code == 413


async def test_a_streamed_body_is_cut_once_it_passes_the_cap(api_team):
    body = CountingBody(10, b" " * (256 * 1024))
    headers = {**api_team.alice.headers, "Content-Type": "application/json"}
    response = await api_team.client.post("/api/layouts", content=body, headers=headers)
    assert response.status_code == 413
    assert body.sent <= 5  # 1 MiB, then the chunk that passed it


async def test_bodies_under_the_cap_and_the_login_still_work(migrated_db):
    async with running_app(api_settings(migrated_db, max_body_bytes=64 * 1024)) as client:
        await add_user(migrated_db, "carol")
        headers = await login(client, "carol")
        layout = {"layout_name": "wide", "panels_config": {"notes": "x" * 30_000}}
        created = await client.post("/api/layouts", json=layout, headers=headers)
        assert created.status_code == 201
        layout["panels_config"]["notes"] = "x" * 70_000
        assert (await client.post("/api/layouts", json=layout, headers=headers)).status_code == 413
