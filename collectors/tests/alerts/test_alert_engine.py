"""The alert engine against real PostgreSQL (rules written through the real API) and the real influxd,
delivering to an SMTP server, a Telegram Bot API stand-in and a webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
import pytest
from alert_servers import HttpReceiver, SmtpServer
from api_fixtures import add_user, api_settings, login, running_app
from prometheus_client import CollectorRegistry
from servers import InfluxDB2, eventually

from marketdash.alerts.engine import AlertEngine
from marketdash.alerts.settings import AlertSettings
from marketdash.core.influx import InfluxSettings
from marketdash.core.schema import BUCKET_MARKETS, CANDLE, TICKER

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
    }
    return AlertSettings(**{**values, **overrides})


@asynccontextmanager
async def running_engine(settings: AlertSettings, markets: Markets) -> AsyncIterator[AlertEngine]:
    influx = InfluxSettings(url=markets.influx.url, token=markets.influx.token, org=markets.org)
    engine = AlertEngine(settings, influx, CollectorRegistry())
    task = asyncio.create_task(engine.run())
    try:
        assert await eventually(lambda: engine.evaluated_at is not None or task.done(), 10)
        if task.done():
            task.result()
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
        await settle(lambda: len(smtp.messages) == 2)
    mail = smtp.messages[0]
    assert mail["To"] == "alice@desk.local"
    assert mail["Subject"] == "🚨 ALERT: BTC/USDT"
    body = mail.get_content()
    assert "Price: $60,500" in body
    assert "Condition: Above $60,000" in body
    assert [row[3] for row in events(migrated_db)] == ["sent", "sent"]


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
    # BTC an hour ago at 100, now 106: +6 %. ETH's usual 1 m volume 10, the last 5 minutes 50 each: 5x.
    markets.candles("BTC/USDT", range(55, 75), close=100.0, volume=1.0)
    markets.price("BTC/USDT", 106.0)
    markets.candles("ETH/USDT", range(6, 120), close=2_000.0, volume=10.0)
    markets.candles("ETH/USDT", range(0, 5), close=2_000.0, volume=50.0)
    markets.price("ETH/USDT", 2_000.0)
    settings = alert_settings(migrated_db, webhook_allowed_networks=["127.0.0.0/8"])
    async with running_engine(settings, markets):
        await settle(lambda: len(receiver.received) == 2)
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
            await settle(lambda: len(smtp.messages) == 1)
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
        await settle(lambda: len(receiver.received) == 1)
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
        await settle(lambda: len(receiver.received) == 2)
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


async def test_stale_market_data_never_fires_and_is_reported(migrated_db, markets, smtp):
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
        await settle(lambda: len(smtp.messages) == 2)
    assert [row[3] for row in events(migrated_db)] == ["sent", "sent", "suppressed"]


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
