"""Who may do what, with the exact status codes: a member reaches only their own data, an admin all.

403 when a member names another user (a user-scoped list, or creating for someone else); 404 when a
member names another user's object by id, so that ids do not reveal what others have.
"""

from dataclasses import dataclass

import pytest

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


@dataclass(frozen=True)
class Kind:
    collection: str
    list_path: str  # {uid} is the owner's id
    item: str  # {id} is the object's id
    body: dict
    change: dict
    readable_by_id: bool = True


KINDS = {
    "watchlist": Kind(
        "/api/watchlists",
        "/api/watchlists/{uid}",
        "/api/watchlists/{id}",
        {"name": "Mine", "assets": ["BTC/USDT"]},
        {"name": "Renamed"},
        readable_by_id=False,
    ),
    "layout": Kind(
        "/api/layouts",
        "/api/users/{uid}/layouts",
        "/api/layouts/{id}",
        {"layout_name": "Desk", "panels_config": {"rows": 2}},
        {"layout_name": "Wall"},
    ),
    "alert rule": Kind(
        "/api/alert-rules",
        "/api/users/{uid}/alert-rules",
        "/api/alert-rules/{id}",
        {"asset": "BTC/USDT", "condition": "above", "threshold": 70000, "channel": "telegram"},
        {"threshold": 80000},
    ),
    "position": Kind(
        "/api/positions",
        "/api/users/{uid}/positions",
        "/api/positions/{id}",
        {"asset": "AAPL", "quantity": 10, "avg_price": 180.5},
        {"quantity": 12},
    ),
}


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
async def test_member_reaches_only_their_own_and_admin_reaches_all(api_team, kind):
    client, alice, bob, admin = api_team.client, api_team.alice, api_team.bob, api_team.admin
    created = await client.post(kind.collection, json=kind.body, headers=alice.headers)
    assert created.status_code == 201
    original = created.json()
    assert original["user_id"] == alice.id
    item = kind.item.format(id=original["id"])
    alices_list = kind.list_path.format(uid=alice.id)

    # Bob, a member, against Alice's data.
    assert (await client.get(alices_list, headers=bob.headers)).status_code == 403
    if kind.readable_by_id:
        assert (await client.get(item, headers=bob.headers)).status_code == 404
    assert (await client.put(item, json=kind.change, headers=bob.headers)).status_code == 404
    assert (await client.delete(item, headers=bob.headers)).status_code == 404
    foreign = await client.post(kind.collection, json={**kind.body, "user_id": alice.id}, headers=bob.headers)
    assert foreign.status_code == 403
    # ... changed nothing.
    listed = await client.get(alices_list, headers=alice.headers)
    assert listed.status_code == 200
    assert listed.json() == [original]
    assert (await client.get(kind.list_path.format(uid=bob.id), headers=bob.headers)).json() == []

    # Without a token: nothing at all.
    assert (await client.get(alices_list)).status_code == 401
    assert (await client.put(item, json=kind.change)).status_code == 401
    assert (await client.delete(item)).status_code == 401
    assert (await client.post(kind.collection, json=kind.body)).status_code == 401

    # Alice on her own, then the admin on hers.
    if kind.readable_by_id:
        assert (await client.get(item, headers=alice.headers)).json() == original
        assert (await client.get(item, headers=admin.headers)).status_code == 200
    changed = await client.put(item, json=kind.change, headers=alice.headers)
    assert changed.status_code == 200
    assert changed.json().items() >= kind.change.items()
    assert (await client.get(alices_list, headers=admin.headers)).status_code == 200
    assert (await client.put(item, json=kind.change, headers=admin.headers)).status_code == 200
    for_alice = await client.post(
        kind.collection, json={**kind.body, "user_id": alice.id}, headers=admin.headers
    )
    assert for_alice.status_code == 201
    assert for_alice.json()["user_id"] == alice.id
    assert (await client.delete(item, headers=admin.headers)).status_code == 204
    assert (await client.delete(item, headers=alice.headers)).status_code == 404


async def test_user_management_is_for_admins(api_team):
    client, alice, bob, admin = api_team.client, api_team.alice, api_team.bob, api_team.admin
    new_user = {"username": "carol", "password": "long enough password"}
    assert (await client.get("/api/users", headers=alice.headers)).status_code == 403
    assert (await client.post("/api/users", json=new_user, headers=alice.headers)).status_code == 403
    assert (await client.delete(f"/api/users/{bob.id}", headers=alice.headers)).status_code == 403
    password = {"password": "taken over by alice"}
    assert (
        await client.put(f"/api/users/{bob.id}/password", json=password, headers=alice.headers)
    ).status_code == 403

    listed = await client.get("/api/users", headers=admin.headers)
    assert [u["username"] for u in listed.json()] == ["root", "alice", "bob"]
    created = await client.post("/api/users", json=new_user, headers=admin.headers)
    assert created.status_code == 201
    assert created.json()["role"] == "member"
    assert (await client.post("/api/users", json=new_user, headers=admin.headers)).status_code == 409
    assert (
        await client.put(f"/api/users/{bob.id}/password", json=password, headers=admin.headers)
    ).status_code == 204
    assert (await client.delete(f"/api/users/{admin.id}", headers=admin.headers)).status_code == 409
    assert (
        await client.delete(f"/api/users/{created.json()['id']}", headers=admin.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/api/users/{created.json()['id']}", headers=admin.headers)
    ).status_code == 404


async def test_alert_events_are_read_by_their_owner_and_admins_only(api_team):
    import psycopg

    with psycopg.connect(api_team.dsn) as conn:
        for value in (70100, 70200):
            conn.execute(
                """INSERT INTO alert_events
                       (user_id, asset, condition, threshold, value, channel, status, message)
                   VALUES (%s, 'BTC/USDT', 'above', 70000, %s, 'telegram', 'sent', 'BTC above')""",
                (api_team.alice.id, value),
            )
    path = f"/api/users/{api_team.alice.id}/alert-events"
    assert (await api_team.client.get(path, headers=api_team.bob.headers)).status_code == 403
    own = await api_team.client.get(path, headers=api_team.alice.headers)
    assert [event["value"] for event in own.json()] == [70200, 70100]  # newest first
    limited = await api_team.client.get(path, params={"limit": 1}, headers=api_team.admin.headers)
    assert [event["value"] for event in limited.json()] == [70200]
