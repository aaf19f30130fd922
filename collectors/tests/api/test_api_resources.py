"""Layouts, alert rules and positions: what each adds to the shared create/read/update/delete."""

import psycopg
import pytest
from api_fixtures import add_user, api_settings, login, running_app

# The API's fixtures (a plugin module: a conftest.py here would shadow the root one for `from conftest`).
pytest_plugins = ["api_fixtures"]


async def test_a_layout_nested_too_deeply_to_be_served_is_refused_and_the_others_still_read(api_team):
    client, headers = api_team.client, api_team.alice.headers
    nested: dict = {}
    for _ in range(300):
        nested = {"n": nested}
    refused = await client.post(
        "/api/layouts", json={"layout_name": "deep", "panels_config": nested}, headers=headers
    )
    assert refused.status_code in (400, 422)
    fine: dict = {"leaf": 1}
    for _ in range(31):
        fine = {"n": fine}
    kept = await client.post(
        "/api/layouts", json={"layout_name": "ok", "panels_config": fine}, headers=headers
    )
    assert kept.status_code == 201
    listed = await client.get(f"/api/users/{api_team.alice.id}/layouts", headers=headers)
    assert listed.status_code == 200
    assert [layout["layout_name"] for layout in listed.json()] == ["ok"]
    for admin_read in (api_team.admin.headers, headers):
        assert (
            await client.get(f"/api/users/{api_team.alice.id}/layouts", headers=admin_read)
        ).status_code == 200


async def test_a_user_has_at_most_one_default_layout(api_team):
    client, headers = api_team.client, api_team.alice.headers
    first = (
        await client.post("/api/layouts", json={"layout_name": "A", "is_default": True}, headers=headers)
    ).json()
    second = (
        await client.post("/api/layouts", json={"layout_name": "B", "is_default": True}, headers=headers)
    ).json()
    bobs = await client.post(
        "/api/layouts", json={"layout_name": "A", "is_default": True}, headers=api_team.bob.headers
    )
    assert bobs.status_code == 201  # names and defaults are per user

    def defaults(layouts):
        return [layout["layout_name"] for layout in layouts if layout["is_default"]]

    path = f"/api/users/{api_team.alice.id}/layouts"
    assert defaults((await client.get(path, headers=headers)).json()) == ["B"]
    await client.put(f"/api/layouts/{first['id']}", json={"is_default": True}, headers=headers)
    assert defaults((await client.get(path, headers=headers)).json()) == ["A"]
    # Bob cannot use someone else's layout id to unset Alice's default.
    refused = await client.put(
        f"/api/layouts/{second['id']}", json={"is_default": True}, headers=api_team.bob.headers
    )
    assert refused.status_code == 404
    assert defaults((await client.get(path, headers=headers)).json()) == ["A"]
    assert defaults(
        (await client.get(f"/api/users/{api_team.bob.id}/layouts", headers=api_team.bob.headers)).json()
    ) == ["A"]


async def test_layout_names_are_unique_per_user_with_409(api_team):
    client, headers = api_team.client, api_team.alice.headers
    assert (
        await client.post("/api/layouts", json={"layout_name": "Desk"}, headers=headers)
    ).status_code == 201
    other = (await client.post("/api/layouts", json={"layout_name": "Wall"}, headers=headers)).json()
    duplicate = await client.post("/api/layouts", json={"layout_name": "Desk"}, headers=headers)
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "a layout with this name already exists for this user"
    renamed = await client.put(f"/api/layouts/{other['id']}", json={"layout_name": "Desk"}, headers=headers)
    assert renamed.status_code == 409


async def test_layout_panels_config_is_bounded_and_must_be_an_object(api_team):
    client, headers = api_team.client, api_team.alice.headers
    for body, message in (
        ({"layout_name": "L", "panels_config": ["not", "an", "object"]}, "valid dictionary"),
        ({"layout_name": "L", "panels_config": {"x": "y" * 300_000}}, "larger than"),
        ({"layout_name": "L", "panels_config": {"x": "nul\u0000"}}, "NUL"),
    ):
        response = await client.post("/api/layouts", json=body, headers=headers)
        assert response.status_code == 422, body
        assert message in str(response.json()["detail"]), body


async def test_alert_rules_cover_the_four_conditions_and_three_channels(api_team):
    client, headers = api_team.client, api_team.alice.headers
    rules = [
        {
            "asset": "BTC/USDT",
            "condition": "above",
            "threshold": 70000,
            "channel": "telegram",
            "target": "-1001234",
        },
        {
            "asset": "ETH/USDT",
            "condition": "below",
            "threshold": 3000,
            "channel": "email",
            "target": "a@example.org",
        },
        {
            "asset": "SPX",
            "condition": "pct_change",
            "threshold": 2.5,
            "channel": "webhook",
            "window_minutes": 1440,
        },
        {
            "asset": "AAPL",
            "condition": "volume_spike",
            "threshold": 3,
            "channel": "webhook",
            # A public address (documentation ranges are not global): no name to resolve offline.
            "target": "https://8.8.8.8/hook",
        },
    ]
    for rule in rules:
        response = await client.post("/api/alert-rules", json=rule, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json().items() >= rule.items()
        assert response.json()["active"] is True
        assert response.json()["cooldown_seconds"] == 900
    listed = (await client.get(f"/api/users/{api_team.alice.id}/alert-rules", headers=headers)).json()
    assert [r["condition"] for r in listed] == ["above", "below", "pct_change", "volume_spike"]


async def test_bad_alert_rules_are_refused_with_the_reason(api_team):
    client, headers = api_team.client, api_team.alice.headers
    base = {"asset": "BTC/USDT", "condition": "above", "threshold": 70000, "channel": "telegram"}
    for change, message in (
        ({"condition": "crosses"}, "'above', 'below', 'pct_change' or 'volume_spike'"),
        ({"channel": "sms"}, "'telegram', 'email' or 'webhook'"),
        ({"asset": "doge/eur"}, "unknown asset symbol(s): doge/eur"),
        ({"channel": "email", "target": "not-an-address"}, "must be an e-mail address"),
        ({"channel": "webhook", "target": "ftp://x"}, "must be an http(s) URL"),
        ({"condition": "pct_change", "threshold": -1}, "must be positive"),
        ({"threshold": 1e16}, "less than or equal to"),
        ({"window_minutes": 0}, "greater than or equal to 1"),
    ):
        response = await client.post("/api/alert-rules", json={**base, **change}, headers=headers)
        assert response.status_code == 422, change
        assert message in str(response.json()["detail"]), change
    # Non-finite numbers: JSON has none, but Python's parser accepts these tokens.
    raw = '{"asset": "BTC/USDT", "condition": "above", "threshold": NaN, "channel": "telegram"}'
    response = await client.post(
        "/api/alert-rules", content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    with psycopg.connect(api_team.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM alert_rules").fetchone() == (0,)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9093/api/v2/alerts",
        "http://[::1]/x",
        "http://10.0.0.5/x",
        "http://172.18.0.3:5432/",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x",
        "http://[fd00::1]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://[64:ff9b::a00:5]/x",
        "http://[2002:a00:5::1]/x",
        "http://2130706433/x",
        "http://localhost:8086/api/v2/write",
        "http://0.0.0.0/x",
    ],
)
async def test_a_webhook_to_a_private_address_is_refused_at_save_time(api_team, url):
    client, headers = api_team.client, api_team.alice.headers
    body = {"asset": "BTC/USDT", "condition": "above", "threshold": 1, "channel": "webhook", "target": url}
    response = await client.post("/api/alert-rules", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "refused unless the operator allows" in response.json()["detail"]
    telegram = {**body, "channel": "telegram", "target": "12345"}
    rule = (await client.post("/api/alert-rules", json=telegram, headers=headers)).json()
    switched = await client.put(
        f"/api/alert-rules/{rule['id']}", json={"channel": "webhook", "target": url}, headers=headers
    )
    assert switched.status_code == 422
    with psycopg.connect(api_team.dsn) as conn:
        assert conn.execute("SELECT channel FROM alert_rules").fetchall() == [("telegram",)]


async def test_a_webhook_url_the_engine_could_not_parse_is_refused_at_save_time(api_team):
    client, headers = api_team.client, api_team.alice.headers
    body = {"asset": "BTC/USDT", "condition": "above", "threshold": 1, "channel": "webhook"}
    response = await client.post(
        "/api/alert-rules", json={**body, "target": "http://01.1.1.1/h"}, headers=headers
    )
    assert response.status_code == 422
    assert "not a valid URL" in response.json()["detail"]


async def test_a_rules_own_rearm_margin_is_kept_and_bounded(api_team):
    client, headers = api_team.client, api_team.alice.headers
    body = {"asset": "BTC/USDT", "condition": "above", "threshold": 1, "channel": "telegram", "target": "1"}
    created = await client.post("/api/alert-rules", json={**body, "hysteresis_pct": 2.5}, headers=headers)
    assert created.status_code == 201
    assert created.json()["hysteresis_pct"] == 2.5
    default = await client.post("/api/alert-rules", json=body, headers=headers)
    assert default.json()["hysteresis_pct"] is None
    too_wide = await client.post("/api/alert-rules", json={**body, "hysteresis_pct": 60}, headers=headers)
    assert too_wide.status_code == 422
    path = f"/api/alert-rules/{created.json()['id']}"
    cleared = await client.put(path, json={"hysteresis_pct": None}, headers=headers)
    assert cleared.json()["hysteresis_pct"] is None


async def test_an_operator_allowed_network_may_receive_webhooks(migrated_db):
    settings = api_settings(migrated_db, webhook_allowed_networks=["10.20.0.0/16"])
    async with running_app(settings) as client:
        member = await add_user(migrated_db, "carol")
        headers = await login(client, "carol")
        body = {"asset": "BTC/USDT", "condition": "above", "threshold": 1, "channel": "webhook"}
        allowed = await client.post(
            "/api/alert-rules", json={**body, "target": "http://10.20.3.4:8080/hook"}, headers=headers
        )
        assert allowed.status_code == 201, allowed.text
        assert allowed.json()["user_id"] == member
        other = await client.post(
            "/api/alert-rules", json={**body, "target": "http://10.21.0.1/hook"}, headers=headers
        )
        assert other.status_code == 422


async def test_a_partial_update_that_makes_a_rule_inconsistent_is_refused_whole(api_team):
    client, headers = api_team.client, api_team.alice.headers
    rule = (
        await client.post(
            "/api/alert-rules",
            json={
                "asset": "XAU",
                "condition": "above",
                "threshold": 2500,
                "channel": "email",
                "target": "a@b.org",
            },
            headers=headers,
        )
    ).json()
    path = f"/api/alert-rules/{rule['id']}"
    switched = await client.put(path, json={"channel": "webhook"}, headers=headers)
    assert switched.status_code == 422
    assert "must be an http(s) URL" in switched.json()["detail"]
    assert (await client.get(path, headers=headers)).json() == rule
    cleared = await client.put(path, json={"channel": "webhook", "target": None}, headers=headers)
    assert cleared.status_code == 200
    assert cleared.json()["target"] is None


async def test_positions_keep_quantities_prices_and_time(api_team):
    client, headers = api_team.client, api_team.alice.headers
    body = {
        "asset": "BTC/USDT",
        "quantity": 0.5,
        "avg_price": 61000.25,
        "opened_at": "2026-01-02T03:04:05+01:00",
    }
    created = await client.post("/api/positions", json=body, headers=headers)
    assert created.status_code == 201
    position = created.json()
    assert position["quantity"] == 0.5
    assert position["avg_price"] == 61000.25
    assert position["currency"] == "USD"
    assert position["opened_at"].startswith("2026-01-02T02:04:05")
    for bad, message in (
        ({**body, "avg_price": -1}, "greater than or equal to 0"),
        ({**body, "currency": "usd"}, "String should match pattern"),
        ({**body, "opened_at": "2026-01-02T03:04:05"}, "timezone"),
        ({**body, "asset": "not listed"}, "unknown asset"),
    ):
        response = await client.post("/api/positions", json=bad, headers=headers)
        assert response.status_code == 422, bad
        assert message in str(response.json()["detail"]), bad
    short = await client.put(f"/api/positions/{position['id']}", json={"quantity": -2}, headers=headers)
    assert short.json()["quantity"] == -2
