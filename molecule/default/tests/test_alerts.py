"""The alert engine in the deployed stack: one rule written through the API, a price crossing written to
InfluxDB as the feeder would, and the e-mail caught by an SMTP server on bloomberg-net.

The SMTP server is a few lines of asyncio speaking the protocol (smtplib is the client), run from the
collectors image under the name the sandbox inventory gives the engine's relay (alert-mailbox). The
price is written with the market feeder's own token: the feeder itself streams nothing here (no exchange
is reachable from the targets).
"""

from __future__ import annotations

import json
import time

import pytest

PROJECT = "bloomberg"
NETWORK = "bloomberg-net"
MAILBOX = "alert-mailbox"
SECRETS = "/opt/bloomberg/secrets"
API = "http://127.0.0.1:8000"

# Prints each message it receives as one JSON line (subject and body decoded).
SMTP_SINK = r"""
import asyncio, email, email.policy, json, sys
async def session(reader, writer):
    def say(line): writer.write(line.encode() + b"\r\n")
    say("220 alert-mailbox")
    data = None
    while line := await reader.readline():
        if data is not None:
            if line in (b".\r\n", b".\n"):
                message = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                print(json.dumps({"to": message["To"], "subject": message["Subject"],
                                  "body": message.get_content()}), flush=True)
                data = None
                say("250 queued")
            else:
                data.append(line[1:] if line.startswith(b"..") else line)
            continue
        verb = line[:4].upper()
        if verb == b"DATA":
            data = []
            say("354 go on")
        elif verb == b"QUIT":
            say("221 bye")
            break
        else:
            say("250 ok")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(session, "0.0.0.0", 2525)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

WRITE_PRICE = r"""
import os, time, urllib.request
token = open("/run/secrets/token").read().strip()
line = f"ticker,asset_class=crypto,source=binance,symbol=BTC/USDT last=1000000.0 {int(time.time() * 1000)}"
request = urllib.request.Request(
    "http://influxdb:8086/api/v2/write?org=bloomberg&bucket=markets&precision=ms", data=line.encode(),
    headers={"Authorization": f"Token {token}"}, method="POST")
print(urllib.request.urlopen(request, timeout=10).status)
"""


def _container(host, service: str) -> str:
    return host.check_output(
        f"docker ps -q --filter label=com.docker.compose.project={PROJECT} "
        f"--filter label=com.docker.compose.service={service}"
    ).strip()


def _image(host) -> str:
    return host.check_output("docker inspect -f '{{.Config.Image}}' " + _container(host, "alert-engine"))


@pytest.fixture
def mailbox(host):
    if not _container(host, "alert-engine"):
        pytest.skip("the alert engine is not started on this target (no InfluxDB or PostgreSQL)")
    host.run(f"docker rm -f {MAILBOX}")
    host.check_output(
        f"docker run -d --name {MAILBOX} --network {NETWORK} --user 10001 --read-only --cap-drop ALL "
        f"--entrypoint python {_image(host)} -c '{SMTP_SINK}'"
    )
    yield MAILBOX
    host.run(f"docker rm -f {MAILBOX}")


def _api(host, method: str, path: str, body: dict, token: str | None = None) -> dict:
    auth = f"-H 'Authorization: Bearer {token}' " if token else ""
    return json.loads(
        host.check_output(
            f"curl -fsS -X {method} {auth}-H 'Content-Type: application/json' "
            f"-d '{json.dumps(body)}' {API}{path}"
        )
    )


def test_the_alert_engine_reads_its_own_token_and_login(host):
    for name in ("influxdb-token-alert-engine", "collectors-alerts-postgres-password"):
        secret = host.file(f"{SECRETS}/{name}")
        assert (secret.uid, secret.mode) == (10001, 0o400), name


def test_a_rule_written_through_the_api_reaches_its_owner_by_email(host, mailbox):
    api = _container(host, "api")
    username = f"member{int(time.time())}"
    host.check_output(
        f"docker exec -e NEW_PASSWORD=correct-horse-battery {api} marketdash-entrypoint "
        f"python -m marketdash.api create-user {username} --password-env NEW_PASSWORD"
    )
    token = _api(host, "POST", "/api/auth/token", {"username": username, "password": "correct-horse-battery"})
    rule = {
        "asset": "BTC/USDT",
        "condition": "above",
        "threshold": 999999,
        "channel": "email",
        "target": f"{username}@desk.local",
    }
    created = _api(host, "POST", "/api/alert-rules", rule, token["access_token"])
    assert created["active"] is True
    time.sleep(2)  # the engine loads the rule through NOTIFY
    written = host.check_output(
        f"docker run --rm --network {NETWORK} --user 10001 --read-only --cap-drop ALL "
        f"-v {SECRETS}/influxdb-token-market-feeder:/run/secrets/token:ro "
        f"--entrypoint python {_image(host)} -c '{WRITE_PRICE}'"
    )
    assert written.strip() == "204"
    deadline = time.monotonic() + 60
    mails: list[dict] = []
    while time.monotonic() < deadline and not mails:
        logs = host.check_output(f"docker logs {mailbox} 2>&1")
        mails = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        time.sleep(1)
    engine_log = host.check_output(f"docker logs {_container(host, 'alert-engine')} 2>&1 | tail -20")
    assert len(mails) == 1, engine_log
    assert mails[0]["to"] == f"{username}@desk.local"
    assert mails[0]["subject"] == "🚨 ALERT: BTC/USDT"
    assert "Price: $1,000,000" in mails[0]["body"]
    assert "Condition: Above $999,999" in mails[0]["body"]
