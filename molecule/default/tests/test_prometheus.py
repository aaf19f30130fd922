"""The prometheus role on a converged target: Prometheus scrapes the stack on bloomberg-net and evaluates
the alert rules, Alertmanager routes them, node-exporter serves the host's metrics on the Docker network
only, and a stopped or killed container is noticed and comes back."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "roles" / "prometheus" / "files" / "rules"
SANDBOX_PROMETHEUS = ROOT / "inventory" / "sandbox" / "group_vars" / "all" / "prometheus.yml"
SANDBOX_DOCKER = ROOT / "inventory" / "sandbox" / "group_vars" / "all" / "docker.yml"
SERVICES = ["prometheus", "alertmanager", "node-exporter", "cadvisor"]
TEXTFILE = "/var/lib/node-exporter/textfile/bloomberg.prom"


def not_started() -> list[str]:
    return (yaml.safe_load(SANDBOX_DOCKER.read_text()) or {}).get("stack_services_not_started", [])


STARTED = [service for service in SERVICES if service not in not_started()]


def container(host, service: str) -> dict | None:
    ids = host.run(
        "docker ps --all --quiet --filter label=com.docker.compose.project=bloomberg "
        f"--filter label=com.docker.compose.service={service}"
    ).stdout.split()
    return json.loads(host.run(f"docker inspect {ids[0]}").stdout)[0] if ids else None


def wait_for(check, timeout: float = 120, interval: float = 3):
    """The check's last value once it is truthy; fails with that value after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"still false after {timeout} s"
            return value
        time.sleep(interval)


def api(host, url: str):
    result = host.run(f"curl -fsS --max-time 10 {shlex.quote(url)}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def active_alerts(host, alertname: str, **labels: str) -> list[dict]:
    alerts = api(host, "http://127.0.0.1:9090/api/v1/alerts")["data"]["alerts"]
    return [
        alert
        for alert in alerts
        if alert["labels"]["alertname"] == alertname
        and all(alert["labels"].get(key) == value for key, value in labels.items())
    ]


def wait_healthy(host, service: str, timeout: float = 180) -> dict:
    return wait_for(
        lambda: (
            (state := container(host, service))
            and state["State"].get("Health", {}).get("Status") == "healthy"
            and state
        ),
        timeout,
    )


@pytest.fixture(scope="module", autouse=True)
def prometheus_started():
    if "prometheus" not in STARTED:
        pytest.skip("prometheus is not started in this inventory (stack_services_not_started)")


@pytest.mark.parametrize("service", STARTED)
def test_started_services_are_healthy_and_limited(host, service):
    state = wait_healthy(host, service)
    assert state["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert state["HostConfig"]["Memory"] > 0
    assert state["HostConfig"]["NanoCpus"] > 0
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["Config"]["User"] == "65534:65534"
    assert list(state["NetworkSettings"]["Networks"]) == ["bloomberg-net"]


@pytest.mark.parametrize(
    ("service", "published"),
    [("prometheus", ["127.0.0.1:9090"]), ("alertmanager", ["127.0.0.1:9093"]), ("node-exporter", [])],
)
def test_only_prometheus_and_alertmanager_are_published_on_loopback(host, service, published):
    state = container(host, service)
    bindings = [
        f"{binding['HostIp']}:{binding['HostPort']}"
        for port_bindings in (state["HostConfig"]["PortBindings"] or {}).values()
        for binding in port_bindings
    ]
    assert bindings == published


def test_node_exporter_is_reachable_on_the_docker_network_only(host):
    addresses = [*host.run("hostname -I").stdout.split(), "127.0.0.1"]
    for address in addresses:
        assert host.run(f"curl -fsS --max-time 3 -o /dev/null http://{address}:9100/metrics").rc != 0, address
    prometheus = container(host, "prometheus")["Name"].lstrip("/")
    metrics = host.run(f"docker exec {prometheus} wget -qO- http://node-exporter:9100/metrics")
    assert metrics.rc == 0, metrics.stderr
    # The host's file systems, read through the read-only mount, and the host-metrics textfile.
    assert "node_filesystem_size_bytes{device=" in metrics.stdout
    assert "bloomberg_host_metrics_timestamp_seconds" in metrics.stdout


def test_prometheus_scrapes_its_own_services(host):
    def health() -> dict[str, str]:
        targets = api(host, "http://127.0.0.1:9090/api/v1/targets")["data"]["activeTargets"]
        return {target["labels"]["job"]: target["health"] for target in targets}

    wanted = {"prometheus", "alertmanager", "node-exporter"} & set(STARTED)
    wait_for(lambda: all(health().get(job) == "up" for job in wanted))
    # Every service of the stack is a target, running or not.
    assert set(health()) >= {
        "prometheus", "alertmanager", "node-exporter", "cadvisor", "influxdb", "grafana",
        "market-feeder", "news-feeder", "api",
    }  # fmt: skip


def test_every_alert_rule_is_loaded(host):
    expected = {
        rule["alert"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    groups = api(host, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
    assert loaded == expected
    assert all(rule.get("health") != "err" for group in groups for rule in group["rules"])


def test_alertmanager_is_ready_and_receives_the_watchdog(host):
    assert "alertmanager" in STARTED
    assert host.run("curl -fsS --max-time 5 http://127.0.0.1:9093/-/ready").rc == 0
    heartbeat = (yaml.safe_load(SANDBOX_PROMETHEUS.read_text()) or {}).get(
        "prometheus_alertmanager_heartbeat_url"
    )
    receiver = "heartbeat" if heartbeat else "discard"

    def watchdog_receivers() -> list[str]:
        alerts = api(host, 'http://127.0.0.1:9093/api/v2/alerts?filter=alertname="Watchdog"')
        return [receiver["name"] for alert in alerts for receiver in alert["receivers"]]

    assert wait_for(watchdog_receivers) == [receiver]


def test_the_smtp_password_reaches_alertmanager_as_a_file_only(host):
    password = host.file("/opt/bloomberg/secrets/alertmanager-smtp-password")
    if not password.exists:
        pytest.skip("no SMTP login in this inventory")
    assert (password.uid, password.gid, password.mode) == (65534, 65534, 0o400)
    config = host.file("/opt/bloomberg/prometheus/alertmanager/alertmanager.yml")
    assert (config.uid, config.gid, config.mode) == (0, 65534, 0o640)
    assert password.content_string not in config.content_string
    alertmanager = container(host, "alertmanager")["Name"].lstrip("/")
    # Read inside the container as its own user, where auth_password_file points.
    inside = host.run(f"docker exec {alertmanager} cat /run/secrets/alertmanager-smtp-password")
    assert inside.rc == 0, inside.stderr
    assert inside.stdout == password.content_string


def test_host_metrics_report_every_compose_container(host):
    def samples() -> dict[str, float]:
        lines = host.file(TEXTFILE).content_string.splitlines()
        return {
            name: float(value) for name, value in (line.rsplit(" ", 1) for line in lines if line[:1] != "#")
        }

    assert host.service("bloomberg-host-metrics.timer").is_enabled
    assert host.service("bloomberg-host-metrics.timer").is_running
    assert host.file(TEXTFILE).mode == 0o644
    for service in STARTED:
        name = container(host, service)["Name"].lstrip("/")
        key = f'bloomberg_container_healthy{{service="{service}",container="{name}"}}'
        wait_for(lambda key=key: samples().get(key) == 1, timeout=90)
    assert time.time() - samples()["bloomberg_host_metrics_timestamp_seconds"] < 120


def api_ready(host) -> bool:
    answer = host.run("curl -sS --max-time 5 http://127.0.0.1:8000/readyz")
    return answer.rc == 0 and json.loads(answer.stdout or "{}").get("status") == "ready"


@pytest.mark.drill
@pytest.mark.parametrize(
    ("service", "alertname", "labels"),
    [
        pytest.param("node-exporter", "TargetDown", {"job": "node-exporter"}, id="node-exporter"),
        pytest.param("market-feeder", "CollectorDown", {"job": "market-feeder"}, id="market-feeder"),
        # docs/runbook.md, "InfluxDB or PostgreSQL is down": the alert, and the stack whole again after.
        pytest.param("influxdb", "InfluxDBDown", {"job": "influxdb"}, id="influxdb"),
        pytest.param("postgres", "PostgreSQLDown", {"service": "postgres"}, id="postgres"),
    ],
)
def test_a_stopped_container_raises_its_down_alert(host, service, alertname, labels):
    state = container(host, service)
    if state is None or not state["State"]["Running"]:
        pytest.skip(f"{service} is not running in this inventory")
    name = state["Name"].lstrip("/")
    api_before = container(host, "api")
    assert not active_alerts(host, alertname, **labels)
    assert host.run(f"docker stop {name}").rc == 0
    try:
        # `for:` keeps it pending for minutes; pending is the rule matching the outage.
        alert = wait_for(lambda: active_alerts(host, alertname, **labels), timeout=150)[0]
        assert alert["state"] in ("pending", "firing")
    finally:
        assert host.run(f"docker start {name}").rc == 0
        wait_healthy(host, service)
    wait_for(lambda: not active_alerts(host, alertname, **labels), timeout=150)
    # The stack whole again by itself: the API ready without having been restarted (its connections come
    # back), every collector healthy (a feeder may have gone through its restart policy meanwhile).
    if api_before is not None:
        wait_for(lambda: api_ready(host), timeout=90)
        assert container(host, "api")["State"]["StartedAt"] == api_before["State"]["StartedAt"]
    for collector in ("market-feeder", "news-feeder", "alert-engine"):
        if container(host, collector) is not None:
            wait_healthy(host, collector)


@pytest.mark.drill
def test_a_crashed_container_comes_back_by_its_restart_policy(host):
    """A crash is the main process dying under the engine; `docker kill` would not do: Docker counts it as
    a manual stop, after which no restart policy applies (seen with Docker 20.10)."""
    before = container(host, "alertmanager")
    assert host.run(f"kill -KILL {before['State']['Pid']}").rc == 0
    after = wait_healthy(host, "alertmanager")
    assert after["Id"] == before["Id"]
    assert after["RestartCount"] > before["RestartCount"]
