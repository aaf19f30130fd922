"""The alert engine against real PostgreSQL (rules written through the real API) and the real influxd,
delivering to an SMTP server, a Telegram Bot API stand-in and a webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
import pytest
from api_fixtures import add_user, api_settings, login, running_app
from prometheus_client import CollectorRegistry

from marketdash.alerts.engine import AlertEngine
from marketdash.alerts.message import Firing
from marketdash.alerts.rules import Rule, RuleState
from marketdash.alerts.settings import AlertSettings
from marketdash.alerts.store import AlertStore
from marketdash.core.influx import InfluxSettings
from marketdash.core.schema import BUCKET_MARKETS, CANDLE, TICKER
from marketdash_testing.alert_servers import HttpReceiver, SmtpServer
from marketdash_testing.servers import InfluxDB2, eventually, free_port, serving

pytest_plugins = ["api_fixtures"]

BOT_TOKEN = "123456:test-token"


class Markets:
    """A fresh org with its own markets bucket on the shared influxd: what the feeder would write."""

    def __init__(self, influx: InfluxDB2) -> None:
        self.influx = influx
        self.org = f"org-{os.urandom(4).hex()}"
        response = influx.api("POST", "/orgs", json={"name": self.org})
        response.raise_for_status()
        org_id = response.json()["id"]
        influx.api("POST", "/buckets", json={"orgID": org_id, "name": BUCKET_MARKETS}).raise_for_status()

    def write(self, lines: list[str]) -> None:
        response = self.influx.api(
            "POST",
            f"/write?org={self.org}&bucket={BUCKET_MARKETS}&precision=ms",
            content="\n".join(lines).encode(),
        )
        assert response.status_code == 204, response.text

    def price(self, symbol: str, last: float, *, age_s: float = 0.0) -> None:
        at = int((time.time() - age_s) * 1000)
        tags = {"source": "binance", "symbol": symbol, "asset_class": "crypto"}
        self.write([TICKER.line(tags, {"last": last}, at)])

    def candles(self, symbol: str, minutes_ago: range, *, close: float, volume: float) -> None:
        now_minute = int(time.time() // 60) * 60
        tags = {"source": "binance", "symbol": symbol, "asset_class": "crypto", "interval": "1m"}
        fields = {"open": close, "high": close, "low": close, "close": close, "volume": volume}
        self.write([CANDLE.line(tags, fields, (now_minute - m * 60) * 1000) for m in minutes_ago])


@pytest.fixture
def markets(influxdb2: InfluxDB2) -> Markets:
    return Markets(influxdb2)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = HttpReceiver()
    await server.start()
    yield server
    await server.stop()


def engine_dsn(dsn: str) -> str:
    """The same database, as the engine's own login."""
    return dsn.replace("://postgres@", "://marketdash_alerts@", 1)


def alert_settings(dsn: str, **overrides: object) -> AlertSettings:
    values: dict[str, object] = {
        "postgres_dsn": engine_dsn(dsn),
        "evaluate_every_s": 0.1,
        "retry_initial_s": 0.2,
        "retry_max_s": 0.5,
        "hysteresis": 0.01,
        "smtp_security": "none",
        "email_from": "alerts@desk.local",
        "metrics_host": "127.0.0.1",
        "metrics_port": free_port(),
    }
    return AlertSettings(**{**values, **overrides})


@asynccontextmanager
async def running_engine(settings: AlertSettings, markets: Markets) -> AsyncIterator[AlertEngine]:
    influx = InfluxSettings(url=markets.influx.url, token=markets.influx.token, org=markets.org)
    engine = AlertEngine(settings, influx, CollectorRegistry())
    # Stopped as on SIGTERM: deliveries under way end first.
    async with serving(engine, settings) as task:
        assert await eventually(lambda: engine.evaluated_at is not None or task.done(), 10)
        if task.done():
            task.result()
        yield engine


def statuses(dsn: str) -> list[str]:
    return [row[3] for row in events(dsn)]


def events(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT user_id, asset, condition, status, channel, attempts FROM alert_events ORDER BY id"
        ).fetchall()


def add_rule(dsn: str, user_id: int, **rule: object) -> int:
    """A rule written straight into the database, as an admin's script or an older API could have."""
    values = {"asset": "BTC/USDT", "window_minutes": 60, "cooldown_seconds": 0, **rule}
    columns = ", ".join(["user_id", *values])
    marks = ", ".join(["%s"] * (len(values) + 1))
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"INSERT INTO alert_rules ({columns}) VALUES ({marks}) RETURNING id",
            (user_id, *values.values()),
        ).fetchone()[0]


async def settle(check: Callable[[], bool], within_s: float = 10.0) -> None:
    assert await eventually(check, within_s), "not reached in time"


async def test_a_rule_written_through_the_api_fires_once_per_crossing_and_reaches_its_owner(
    migrated_db, markets, smtp
):
    settings = alert_settings(migrated_db, smtp_host="127.0.0.1", smtp_port=smtp.port)
    markets.price("BTC/USDT", 59_000)
    async with running_engine(settings, markets) as engine, running_app(api_settings(migrated_db)) as api:
        await add_user(migrated_db, "alice")
        headers = await login(api, "alice")
        rule = {
            "asset": "BTC/USDT",
            "condition": "above",
            "threshold": 60_000,
            "channel": "email",
            "target": "alice@desk.local",
            "cooldown_seconds": 0,
        }
        created = await api.post("/api/alert-rules", json=rule, headers=headers)
        assert created.status_code == 201, created.text
        # Loaded through NOTIFY (the periodic reload is a minute away).
        await settle(lambda: len(engine.rules) == 1, 5)
        await asyncio.sleep(0.5)
        assert smtp.messages == []
        markets.price("BTC/USDT", 60_500)
        await settle(lambda: len(smtp.messages) == 1)
        for price in (61_000, 60_200, 60_100):
            markets.price("BTC/USDT", price)
            await asyncio.sleep(0.3)
        assert len(smtp.messages) == 1
        markets.price("BTC/USDT", 59_000)  # back past 60,000 - 1 %: re-armed
        await asyncio.sleep(0.5)
        markets.price("BTC/USDT", 60_600)
        await settle(lambda: statuses(migrated_db) == ["sent", "sent"])
    assert len(smtp.messages) == 2
    mail = smtp.messages[0]
    assert mail["To"] == "alice@desk.local"
    assert mail["Subject"] == "🚨 ALERT: BTC/USDT"
    body = mail.get_content()
    assert "Price: $60,500" in body
    assert "Condition: Above $60,000" in body


async def test_pct_change_and_volume_spike_fire_on_the_stored_candles(migrated_db, markets, receiver):
    alice = await add_user(migrated_db, "alice")
    hook = f"{receiver.url}/hook"
    add_rule(migrated_db, alice, condition="pct_change", threshold=5, channel="webhook", target=hook)
    add_rule(
        migrated_db,
        alice,
        asset="ETH/USDT",
        condition="volume_spike",
        threshold=3,
        window_minutes=5,
        channel="webhook",
        target=hook,
    )
    # BTC an hour ago at 100, now 106: +6 %. ETH's usual 1 m volume 10, the last 5 closed minutes 50
    # each: 5x (the minute under way has no candle yet, as from the feeder).
    markets.candles("BTC/USDT", range(55, 75), close=100.0, volume=1.0)
    markets.price("BTC/USDT", 106.0)
    markets.candles("ETH/USDT", range(6, 120), close=2_000.0, volume=10.0)
    markets.candles("ETH/USDT", range(1, 6), close=2_000.0, volume=50.0)
    markets.price("ETH/USDT", 2_000.0)
    settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.0/8"])
    async with running_engine(settings, markets):
        await settle(lambda: statuses(migrated_db) == ["sent", "sent"])
    texts = sorted(body["text"] for _, body in receiver.received)
    assert "Price: $106 (+6.0% in 1h)" in texts[0]
    assert "Condition: Change of 5% or more in 1h" in texts[0]
    assert "Volume: 5.0x usual in 5m" in texts[1]
    assert {body["asset"] for _, body in receiver.received} == {"BTC/USDT", "ETH/USDT"}
    assert sorted(row[2] for row in events(migrated_db)) == ["pct_change", "volume_spike"]


async def test_a_restart_in_the_middle_neither_loses_nor_repeats_a_notification(migrated_db, markets):
    alice = await add_user(migrated_db, "alice")
    add_rule(migrated_db, alice, condition="below", threshold=50_000, channel="email", target="a@desk.local")
    smtp = SmtpServer()  # not started yet: the channel is down when the rule fires
    settings = alert_settings(migrated_db, smtp_host="127.0.0.1", smtp_port=smtp.port)
    markets.price("BTC/USDT", 49_000)
    async with running_engine(settings, markets):
        await settle(lambda: events(migrated_db) and events(migrated_db)[0][5] >= 1)
    assert [row[3] for row in events(migrated_db)] == ["triggered"]
    smtp.start()
    try:
        markets.price("BTC/USDT", 48_000)  # the condition still holds after the restart
        async with running_engine(settings, markets):
            await settle(lambda: statuses(migrated_db) == ["sent"])
            await asyncio.sleep(1.0)
    finally:
        smtp.stop()
    assert len(smtp.messages) == 1
    assert [row[3] for row in events(migrated_db)] == ["sent"]


async def test_a_channel_down_then_back_gets_the_message_once(migrated_db, markets, receiver):
    alice = await add_user(migrated_db, "alice")
    add_rule(
        migrated_db, alice, condition="above", threshold=1, channel="webhook", target=f"{receiver.url}/h"
    )
    receiver.statuses.extend([503, 503])
    markets.price("BTC/USDT", 2)
    settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.1/32"])
    async with running_engine(settings, markets) as engine:
        await settle(lambda: statuses(migrated_db) == ["sent"])
        await asyncio.sleep(1.0)
        retries = engine.registry.get_sample_value(
            "marketdash_alerts_deliveries_total", {"channel": "webhook", "outcome": "retry"}
        )
    assert receiver.answered == [503, 503, 200]
    assert len(receiver.received) == 1
    assert retries == 2
    assert events(migrated_db) == [(alice, "BTC/USDT", "above", "sent", "webhook", 3)]


async def test_a_members_rules_never_notify_another_members_channel(migrated_db, markets, receiver):
    alice, bob = await add_user(migrated_db, "alice"), await add_user(migrated_db, "bob")
    add_rule(migrated_db, alice, condition="above", threshold=100, channel="telegram", target="111")
    add_rule(migrated_db, bob, condition="below", threshold=50, channel="telegram", target="222")
    settings = alert_settings(migrated_db, telegram_api_url=receiver.url, telegram_bot_token=BOT_TOKEN)
    markets.price("BTC/USDT", 150)
    async with running_engine(settings, markets):
        await settle(lambda: len(receiver.received) == 1)
        await asyncio.sleep(0.5)
        markets.price("BTC/USDT", 40)
        await settle(lambda: statuses(migrated_db) == ["sent", "sent"])
    assert [(path, body["chat_id"]) for path, body in receiver.received] == [
        (f"/bot{BOT_TOKEN}/sendMessage", "111"),
        (f"/bot{BOT_TOKEN}/sendMessage", "222"),
    ]
    assert "Condition: Above $100" in receiver.received[0][1]["text"]
    assert "Condition: Below $50" in receiver.received[1][1]["text"]
    assert [(row[0], row[3]) for row in events(migrated_db)] == [(alice, "sent"), (bob, "sent")]


async def test_a_webhook_to_a_private_address_is_refused_at_send_time(migrated_db, markets, receiver):
    alice = await add_user(migrated_db, "alice")
    add_rule(
        migrated_db, alice, condition="above", threshold=1, channel="webhook", target=f"{receiver.url}/h"
    )
    markets.price("BTC/USDT", 2)
    async with running_engine(alert_settings(migrated_db), markets):
        await settle(lambda: [row[3] for row in events(migrated_db)] == ["failed"])
    assert receiver.answered == []
    with psycopg.connect(migrated_db) as conn:
        error = conn.execute("SELECT last_error FROM alert_events").fetchone()[0]
    assert "127.0.0.1" in error
    assert "refused" in error


async def test_old_or_missing_market_data_never_fires_and_is_reported(migrated_db, markets, smtp):
    alice = await add_user(migrated_db, "alice")
    add_rule(migrated_db, alice, condition="above", threshold=1, channel="email", target="a@desk.local")
    markets.price("BTC/USDT", 2, age_s=600)
    settings = alert_settings(migrated_db, smtp_host="127.0.0.1", smtp_port=smtp.port, stale_after_s=120)
    async with running_engine(settings, markets) as engine:
        await asyncio.sleep(1.0)
        stale = engine.registry.get_sample_value("marketdash_alerts_rules_stale")
        healthy, details = engine.health()
    assert events(migrated_db) == []
    assert smtp.messages == []
    assert stale == 1
    assert healthy
    assert details["rules"] == 1


async def test_a_members_hourly_limit_records_further_firings_as_suppressed(migrated_db, markets, smtp):
    alice = await add_user(migrated_db, "alice")
    add_rule(migrated_db, alice, condition="above", threshold=100, channel="email", target="a@desk.local")
    settings = alert_settings(
        migrated_db, smtp_host="127.0.0.1", smtp_port=smtp.port, max_notifications_per_user_hour=2
    )
    async with running_engine(settings, markets):
        for _ in range(3):
            fired = len(events(migrated_db))
            markets.price("BTC/USDT", 120)
            await settle(lambda fired=fired: len(events(migrated_db)) == fired + 1)
            markets.price("BTC/USDT", 80)
            await asyncio.sleep(0.5)
        await settle(lambda: statuses(migrated_db) == ["sent", "sent", "suppressed"])
    assert len(smtp.messages) == 2


def test_the_engine_login_reads_rules_and_nothing_about_users(migrated_db):
    with psycopg.connect(engine_dsn(migrated_db)) as conn:
        conn.execute("SELECT count(*) FROM alert_rules")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT password_hash FROM users")
    with (
        psycopg.connect(engine_dsn(migrated_db)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM alert_events")


async def test_a_target_no_channel_can_use_fails_its_event_and_the_engine_goes_on(
    migrated_db, markets, receiver
):
    """Rules written around the API (an older version, psql) may hold anything: each fails alone."""
    alice, bob = await add_user(migrated_db, "alice"), await add_user(migrated_db, "bob")
    add_rule(
        migrated_db, alice, condition="above", threshold=1, channel="webhook", target="http://01.1.1.1/h"
    )
    injected = "alice@desk.local\r\nBcc: eve@desk.local"
    add_rule(migrated_db, alice, condition="above", threshold=1, channel="email", target=injected)
    add_rule(migrated_db, bob, condition="above", threshold=1, channel="webhook", target=f"{receiver.url}/h")
    markets.price("BTC/USDT", 2)
    settings = alert_settings(
        migrated_db, webhook_allowed_networks=["127.0.0.1/32"], smtp_host="127.0.0.1", smtp_port=free_port()
    )
    async with running_engine(settings, markets):
        await settle(lambda: sorted(statuses(migrated_db)) == ["failed", "failed", "sent"])
        markets.price("BTC/USDT", 0.5)
        await asyncio.sleep(0.5)
        markets.price("BTC/USDT", 2)  # the engine still evaluates and delivers
        await settle(lambda: len(receiver.received) == 2)
    with psycopg.connect(migrated_db) as conn:
        errors = dict(
            conn.execute(
                "SELECT channel, last_error FROM alert_events WHERE user_id = %s", (alice,)
            ).fetchall()
        )
    assert "not a valid URL" in errors["webhook"]
    assert "ValueError" in errors["email"]


async def test_a_servers_retry_after_is_held_within_the_engines_bounds(migrated_db, markets, receiver):
    alice = await add_user(migrated_db, "alice")
    add_rule(
        migrated_db, alice, condition="above", threshold=1, channel="webhook", target=f"{receiver.url}/h"
    )
    receiver.statuses.extend([429, 429])
    receiver.headers["Retry-After"] = "1e20"
    markets.price("BTC/USDT", 2)
    settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.1/32"], retry_max_s=0.3)
    async with running_engine(settings, markets):
        await settle(lambda: statuses(migrated_db) == ["sent"])
    assert receiver.answered == [429, 429, 200]
    assert events(migrated_db)[0][5] == 3


async def test_a_slow_receiver_does_not_hold_back_another_members_message(migrated_db, markets, receiver):
    slow = HttpReceiver(delay_s=8.0)
    await slow.start()
    try:
        alice, bob = await add_user(migrated_db, "alice"), await add_user(migrated_db, "bob")
        add_rule(
            migrated_db, alice, condition="above", threshold=1, channel="webhook", target=f"{slow.url}/h"
        )
        markets.price("BTC/USDT", 2)
        settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.1/32"], send_timeout_s=4)
        async with running_engine(settings, markets):
            await settle(lambda: slow.handling == 1)
            add_rule(
                migrated_db,
                bob,
                condition="above",
                threshold=1,
                channel="webhook",
                target=f"{receiver.url}/h",
            )
            await settle(lambda: len(receiver.received) == 1, 3)
            assert slow.received == []
    finally:
        await slow.stop()


async def test_stopping_lets_a_delivery_under_way_end_and_sends_it_once(migrated_db, markets, receiver):
    alice = await add_user(migrated_db, "alice")
    add_rule(
        migrated_db, alice, condition="above", threshold=1, channel="webhook", target=f"{receiver.url}/h"
    )
    receiver.delay_s = 1.0
    markets.price("BTC/USDT", 2)
    settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.1/32"])
    async with running_engine(settings, markets):
        await settle(lambda: receiver.handling == 1)
    assert statuses(migrated_db) == ["sent"]
    async with running_engine(settings, markets):
        await asyncio.sleep(1.5)
    assert len(receiver.received) == 1


async def test_a_rules_own_hysteresis_decides_when_it_rearms(migrated_db, markets, receiver):
    alice = await add_user(migrated_db, "alice")
    hook = f"{receiver.url}/h"
    rule = add_rule(migrated_db, alice, condition="above", threshold=100, channel="webhook", target=hook)
    with psycopg.connect(migrated_db) as conn:
        conn.execute("UPDATE alert_rules SET hysteresis_pct = 5 WHERE id = %s", (rule,))
    settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.1/32"])
    markets.price("BTC/USDT", 101)
    async with running_engine(settings, markets):
        await settle(lambda: statuses(migrated_db) == ["sent"])
        for price in (97, 101, 96, 101):  # 97 is not 5 % below 100; 96 is not either (95 is)
            markets.price("BTC/USDT", price)
            await asyncio.sleep(0.4)
        assert statuses(migrated_db) == ["sent"]
        markets.price("BTC/USDT", 94)
        await asyncio.sleep(0.4)
        markets.price("BTC/USDT", 101)
        await settle(lambda: statuses(migrated_db) == ["sent", "sent"])


async def test_a_rule_deactivated_since_it_was_read_records_no_firing_and_no_state(migrated_db, markets):
    alice = await add_user(migrated_db, "alice")
    rule_id = add_rule(
        migrated_db, alice, condition="above", threshold=1, channel="email", target="a@desk.local"
    )
    with psycopg.connect(migrated_db) as conn:
        conn.execute("UPDATE alert_rules SET active = false")
    rule = Rule(rule_id, alice, "BTC/USDT", "above", 1.0, 60, "email", "a@desk.local", 0, "v1")
    firing = Firing(rule, 2.0, 2.0, None, time.time(), time.time())
    store = AlertStore(engine_dsn(migrated_db), 30)
    try:
        recorded = await store.record([(firing, "text")], {rule_id: RuleState("v1", armed=False)})
    finally:
        await store.close()
    assert recorded == []
    assert events(migrated_db) == []
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM alert_rule_state").fetchone() == (0,)
