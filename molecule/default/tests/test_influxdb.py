"""The influxdb role on a converged target: a healthy server nobody outside reaches, the buckets and their
retention (R1.1), downsampling tasks that run and fill the next tier, and consumer tokens held to their
scope. The API is called from inside the container (curl is in the official image and the stand-in)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from marketdash.core.flux import parse_flux_csv

CONTAINER = "bloomberg-influxdb-1"
SECRETS = "/opt/bloomberg/secrets"
DAY = 86400
RETENTION = {
    "markets": 7 * DAY,
    "news": 7 * DAY,
    "infra": 7 * DAY,
    "custom": 7 * DAY,
    "markets_5m": 30 * DAY,
    "markets_1h": 365 * DAY,
}
TASKS = {
    "downsample-markets-5m": ("markets", "markets_5m"),
    "downsample-markets-1h": ("markets_5m", "markets_1h"),
}
# consumer: (owner uid, buckets it writes, buckets it reads)
TOKENS = {
    "market-feeder": (10001, {"markets"}, set()),
    "news-feeder": (10001, {"news"}, set()),
    "grafana": (472, set(), set(RETENTION)),
}
REPO = Path(__file__).resolve().parents[3]
GROUP_VARS = REPO / "inventory" / "sandbox" / "group_vars" / "all"
GRAFANA_CONTRACT = REPO / "roles" / "grafana" / "vars" / "contract.yml"


def _not_started() -> list[str]:
    found: list[str] = []
    for path in GROUP_VARS.glob("*.yml"):
        found += (yaml.safe_load(path.read_text()) or {}).get("stack_services_not_started") or []
    return found


pytestmark = pytest.mark.skipif(
    "influxdb" in _not_started(), reason="the sandbox inventory lists influxdb in stack_services_not_started"
)


def api(host, method: str, path: str, token: str, body: str = "", content_type: str = "application/json"):
    """(status, body) of a request to the API from inside the container."""
    result = host.run(
        "docker exec %s curl -sS -o /dev/stdout -w '\\n%%{http_code}' -X %s -H %s -H %s --data-binary %s %s",
        CONTAINER,
        method,
        f"Authorization: Token {token}",
        f"Content-Type: {content_type}",
        body,
        f"http://localhost:8086/api/v2{path}",
    )
    assert result.rc == 0, result.stderr
    text, _, status = result.stdout.rpartition("\n")
    return int(status), text


def get(host, path: str, token: str) -> dict:
    result = host.run(
        "docker exec %s curl -fsS -H %s %s",
        CONTAINER,
        f"Authorization: Token {token}",
        f"http://localhost:8086/api/v2{path}",
    )
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def flux(host, query: str, token: str) -> list[dict[str, str]]:
    body = json.dumps({"query": query, "dialect": {"annotations": []}})
    status, text = api(host, "POST", "/query?org=bloomberg", token, body)
    assert status == 200, text
    return parse_flux_csv(text)


@pytest.fixture(scope="module")
def admin_token(host) -> str:
    return host.file(f"{SECRETS}/influxdb-admin-token").content_string.strip()


@pytest.fixture(scope="module")
def tokens(host) -> dict[str, str]:
    return {name: host.file(f"{SECRETS}/influxdb-token-{name}").content_string.strip() for name in TOKENS}


def test_the_server_is_healthy_and_not_published(host):
    state = json.loads(host.check_output("docker inspect %s", CONTAINER))[0]
    assert state["State"]["Health"]["Status"] == "healthy"
    assert state["HostConfig"]["PortBindings"] in (None, {})
    assert "bloomberg-net" in state["NetworkSettings"]["Networks"]
    health = json.loads(host.check_output("docker exec %s curl -fsS http://localhost:8086/health", CONTAINER))
    assert health["status"] == "pass"


def test_the_buckets_have_their_tier_retention(host, admin_token):
    buckets = get(host, "/buckets?org=bloomberg&limit=100", admin_token)["buckets"]
    retention = {
        b["name"]: next((r["everySeconds"] for r in b["retentionRules"] if r["type"] == "expire"), 0)
        for b in buckets
        if not b["name"].startswith("_")
    }
    assert retention == RETENTION


@pytest.mark.parametrize("consumer", sorted(TOKENS))
def test_token_files_belong_to_their_reader_only(host, consumer):
    token_file = host.file(f"{SECRETS}/influxdb-token-{consumer}")
    assert token_file.uid == TOKENS[consumer][0]
    assert token_file.mode == 0o400


@pytest.mark.parametrize("consumer", sorted(TOKENS))
def test_tokens_are_held_to_their_scope(host, tokens, consumer):
    _, writes, reads = TOKENS[consumer]
    token = tokens[consumer]
    line = f"scope_probe,consumer={consumer} ok=1i"
    for bucket in RETENTION:
        status, text = api(
            host, "POST", f"/write?org=bloomberg&bucket={bucket}&precision=s", token, line, "text/plain"
        )
        assert (status == 204) == (bucket in writes), (bucket, status, text)
        if bucket not in writes:
            assert status in (401, 403, 404), (bucket, status, text)
        status, text = api(
            host,
            "POST",
            "/query?org=bloomberg",
            token,
            json.dumps({"query": f'from(bucket: "{bucket}") |> range(start: -1m) |> limit(n: 1)'}),
        )
        assert (status == 200) == (bucket in reads), (bucket, status, text)


def test_the_downsampling_tasks_are_active(host, admin_token):
    tasks = get(host, "/tasks?org=bloomberg", admin_token)["tasks"]
    by_name = {t["name"]: t for t in tasks}
    assert set(TASKS) <= set(by_name)
    for name, (source, target) in TASKS.items():
        assert by_name[name]["status"] == "active"
        assert f'from(bucket: "{source}")' in by_name[name]["flux"]
        assert f'to(bucket: "{target}")' in by_name[name]["flux"]


def test_a_run_of_the_5m_task_fills_the_downsampled_tier_with_ohlcv(host, admin_token, tokens):
    # Three 1 m candles inside one aligned 5 m window that the run's range (the last 5 min) covers.
    now = int(time.time())
    window = now - now % 300
    start = window + 1 if now - window > 10 else window - 300 + 280
    candles = [
        (start, 10.0, 14.0, 9.0, 12.0, 1.5),
        (start + 1, 12.0, 13.0, 7.0, 8.0, 2.5),
        (start + 2, 8, 11, 8, 10, 1),
    ]
    symbol = f"TEST{now}/USD"
    lines = "\n".join(
        f"candle,asset_class=crypto,interval=1m,source=test,symbol={symbol} "
        f"open={o},high={h},low={lo},close={c},volume={v},backfilled=false {t}"
        for t, o, h, lo, c, v in candles
    )
    status, text = api(
        host,
        "POST",
        "/write?org=bloomberg&bucket=markets&precision=s",
        tokens["market-feeder"],
        lines,
        "text/plain",
    )
    assert status == 204, text

    task = next(
        t
        for t in get(host, "/tasks?org=bloomberg", admin_token)["tasks"]
        if t["name"] == "downsample-markets-5m"
    )
    status, text = api(host, "POST", f"/tasks/{task['id']}/runs", admin_token, "{}")
    assert status == 201, text
    run_id = json.loads(text)["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = get(host, f"/tasks/{task['id']}/runs/{run_id}", admin_token)
        if run["status"] in ("success", "failed", "canceled"):
            break
        time.sleep(1)
    assert run["status"] == "success", get(host, f"/tasks/{task['id']}/runs/{run_id}/logs", admin_token)

    rows = flux(
        host,
        f'from(bucket: "markets_5m") |> range(start: -1h) |> filter(fn: (r) => r.symbol == "{symbol}")',
        admin_token,
    )
    assert {row["_field"]: float(row["_value"]) for row in rows} == {
        "open": 10.0,
        "high": 14.0,
        "low": 7.0,
        "close": 10.0,
        "volume": 5.0,
    }
    assert {row["interval"] for row in rows} == {"5m"}


def influxql(host, database: str, query: str, token: str) -> tuple[int, dict]:
    """A query sent as Grafana's provisioned InfluxQL datasource sends it: POST /query, `db` in the URL,
    `q` in the form body, the token in the Authorization header (roles/grafana datasources template)."""
    result = host.run(
        "docker exec %s curl -sS -w '\\n%%{http_code}' -H %s --data-urlencode %s %s",
        CONTAINER,
        f"Authorization: Token {token}",
        f"q={query}",
        f"http://localhost:8086/query?db={database}&epoch=ms",
    )
    assert result.rc == 0, result.stderr
    text, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(text)


def test_grafanas_influxql_datasource_reads_what_the_feeder_wrote(host, tokens):
    # The alert rules' own query text (roles/grafana/vars/contract.yml), through the bucket's DBRP mapping.
    contract = yaml.safe_load(GRAFANA_CONTRACT.read_text())
    price = contract["grafana_contract_alert_sources"]["price"]
    symbol = f"IQL{int(time.time())}/USD"
    line = f"ticker,asset_class=crypto,source=test,symbol={symbol} last=123.5,bid=123.25,ask=123.75"
    status, text = api(
        host,
        "POST",
        "/write?org=bloomberg&bucket=markets&precision=s",
        tokens["market-feeder"],
        line,
        "text/plain",
    )
    assert status == 204, text

    query = (
        f"SELECT last({price['value']}) FROM {price['from']} "
        f"WHERE {price['symbol']} = '{symbol}' AND time > now() - 10m GROUP BY {price['symbol']}"
    )
    status, answer = influxql(host, "markets", query, tokens["grafana"])
    assert status == 200, answer
    series = answer["results"][0].get("series")
    assert series, answer
    assert series[0]["tags"] == {"symbol": symbol}
    assert series[0]["values"][0][1] == 123.5


@pytest.mark.parametrize("tier", [target for _, target in TASKS.values()])
def test_grafanas_influxql_datasource_reaches_the_downsampled_tiers(host, tokens, tier):
    query = f'SELECT count(*) FROM "{tier}"."autogen"."candle" WHERE time > now() - 1h'
    status, answer = influxql(host, tier, query, tokens["grafana"])
    assert status == 200, answer
    assert "error" not in answer["results"][0], answer


def test_influxql_refuses_a_token_without_read_access(host, tokens):
    query = 'SELECT count(*) FROM "markets"."autogen"."ticker" WHERE time > now() - 1h'
    status, answer = influxql(host, "markets", query, tokens["market-feeder"])
    assert status in (401, 403) or "error" in answer.get("results", [{}])[0], (status, answer)
