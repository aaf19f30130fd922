"""The collectors on a converged target: the image built offline, the services up, locked down, healthy.

The feeders and the alert engine need InfluxDB (their tokens come from the influxdb role once it is
up): when the inventory leaves InfluxDB unstarted (stack_services_not_started), the role leaves them
unstarted too, and these tests check exactly that instead of their health.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

PROJECT = "bloomberg"
IMAGE = "bloomberg/collectors"
UID = 10001
BUILD = "/opt/bloomberg/collectors/build"
SECRETS = "/opt/bloomberg/secrets"
# marketdash's migrations, shipped in the image: the API applies them all.
MIGRATIONS = len(list((Path(__file__).parents[3] / "collectors/src/marketdash/api/migrations").glob("*.sql")))
SERVICES = ("market-feeder", "news-feeder", "api", "alert-engine")


def _container(host, service: str) -> str:
    return host.check_output(
        f"docker ps -q --filter label=com.docker.compose.project={PROJECT} "
        f"--filter label=com.docker.compose.service={service}"
    ).strip()


def _inspect(host, container: str) -> dict:
    return json.loads(host.check_output(f"docker inspect {container}"))[0]


@pytest.fixture(scope="module")
def started(host) -> list[str]:
    """The collector services the role must have started: the feeders only where InfluxDB runs."""
    influxdb_runs = bool(_container(host, "influxdb"))
    return [name for name in SERVICES if name == "api" or influxdb_runs]


@pytest.fixture(scope="module")
def image(host) -> str:
    tags = host.check_output(f"docker image ls {IMAGE} --format '{{{{.Tag}}}}'").split()
    assert len(tags) >= 1, f"no {IMAGE} image on the target"
    return tags


def test_the_image_tag_is_the_digest_of_the_build_context(host, image):
    context = host.file(f"{BUILD}/context.tar")
    assert context.exists
    digest = hashlib.sha256(context.content).hexdigest()
    assert f"ctx-{digest[:12]}" in image
    # Only the current context stays unpacked; an unchanged re-run finds its image and builds nothing.
    assert host.check_output(f"ls {BUILD}").split() == sorted([digest[:12], "context.tar"])


def test_the_image_builds_with_no_network_at_all(host):
    """The build stage again, from scratch, in a build container with no network: no index is needed."""
    context = host.check_output(f"ls -d {BUILD}/*/").split()[0]
    base = host.check_output(
        f"docker image inspect {IMAGE}:$(docker image ls {IMAGE} --format '{{{{.Tag}}}}' | head -1) "
        "--format '{{ index .Config.Labels \"org.opencontainers.image.base.name\" }}'"
    ).strip()
    build = host.run(
        f"docker build --network none --no-cache --target build --build-arg BASE_IMAGE={base} "
        f"-t collectors-offline-probe {context}"
    )
    host.run("docker image rm -f collectors-offline-probe")
    assert build.rc == 0, build.stdout[-2000:] + build.stderr[-2000:]


def test_the_image_has_no_compiler_and_no_pip(host, image):
    probe = host.run(
        f"docker run --rm --entrypoint sh {IMAGE}:{image[0]} -c "
        "'command -v gcc cc pip pip3 || echo none; id -u'"
    )
    assert probe.rc == 0, probe.stderr
    assert probe.stdout.split() == ["none", str(UID)]


def test_the_image_carries_the_services_and_no_deploy_or_test_tooling(host, image):
    """The dashboards generator and the tests' servers live in marketdash-tooling, beside the package."""
    services = ["marketdash.market", "marketdash.news", "marketdash.api", "marketdash.alerts"]
    tooling = ["marketdash_dashboards", "marketdash_testing", "grafana_foundation_sdk"]
    probe = host.run(
        f"docker run --rm --entrypoint python {IMAGE}:{image[0]} -c "
        "'import importlib.util as u, sys; print(*[m for m in sys.argv[1:] if u.find_spec(m)])' "
        + " ".join(services + tooling)
    )
    assert probe.rc == 0, probe.stderr
    assert probe.stdout.split() == services


def test_the_started_services_are_healthy(host, started):
    for service in started:
        container = _container(host, service)
        assert container, f"{service} is not running"
        assert _inspect(host, container)["State"]["Health"]["Status"] == "healthy", service


def test_the_feeders_stay_unstarted_without_influxdb(host, started):
    for service in set(SERVICES) - set(started):
        assert not _container(host, service), f"{service} runs although InfluxDB does not"


def test_the_containers_run_as_10001_read_only_without_capabilities(host, started):
    for service in started:
        container = _container(host, service)
        config = _inspect(host, container)
        assert config["Config"]["User"] == f"{UID}:{UID}"
        assert config["HostConfig"]["ReadonlyRootfs"] is True
        assert config["HostConfig"]["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in config["HostConfig"]["SecurityOpt"]
        assert config["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert config["HostConfig"]["Memory"] > 0
        assert host.check_output(f"docker exec {container} id -u").strip() == str(UID)
        write = host.run(f"docker exec {container} touch /opt/marketdash/probe")
        assert write.rc != 0
        assert "Read-only file system" in write.stderr
        assert host.run(f"docker exec {container} touch /tmp/probe").rc == 0


def test_the_api_answers_on_the_host_loopback_only(host):
    config = _inspect(host, _container(host, "api"))
    bindings = config["HostConfig"]["PortBindings"]
    assert bindings == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}]}
    health = json.loads(host.check_output("curl -fsS http://127.0.0.1:8000/healthz"))
    assert health == {"status": "ok"}
    # Ready means PostgreSQL answered and every migration shipped with the image is applied.
    ready = json.loads(host.check_output("curl -fsS http://127.0.0.1:8000/readyz"))
    assert ready == {"status": "ready"}


def test_the_api_migrations_ran_in_postgresql(host):
    postgres = _container(host, "postgres")
    assert postgres, "the postgres service is not running"
    applied = host.check_output(
        f"docker exec -u postgres {postgres} psql -d bloomberg_config -Atc "
        "'SELECT count(*) FROM marketdash.schema_migrations'"
    )
    assert int(applied) == MIGRATIONS
    owner = host.check_output(
        f"docker exec -u postgres {postgres} psql -d bloomberg_config -Atc "
        "\"SELECT tableowner FROM pg_tables WHERE schemaname = 'marketdash' AND tablename = 'watchlists'\""
    )
    assert owner.strip() == "marketdash_api"


@pytest.mark.parametrize("name", ["collectors-api-jwt-secret", "postgres-api-password"])
def test_the_api_secret_files_are_readable_by_10001_only(host, name):
    secret = host.file(f"{SECRETS}/{name}")
    assert secret.exists
    assert (secret.uid, secret.gid, secret.mode) == (UID, UID, 0o400)


def test_secrets_reach_the_api_as_files_not_in_its_definition(host):
    config = _inspect(host, _container(host, "api"))
    environment = "\n".join(config["Config"]["Env"])
    jwt = host.file(f"{SECRETS}/collectors-api-jwt-secret").content_string.strip()
    assert jwt not in environment
    assert "MARKETDASH_API_JWT_SECRET_FILE=/run/secrets/jwt-secret" in environment


def test_the_apis_limits_see_each_client_behind_the_published_port(host):
    """nginx reaches the API through the published port, so every request arrives from the network's
    gateway (docker-proxy); the API believes the gateway's X-Forwarded-For, so each client has its own
    login budget (10 a minute) instead of one shared by the whole team."""

    def login(client: str, username: str) -> str:
        return host.check_output(
            "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "
            f"-H 'X-Forwarded-For: {client}' "
            f"""-d '{{"username": "{username}", "password": "wrong-password"}}' """
            "http://127.0.0.1:8000/api/auth/token"
        )

    flooder = [login("203.0.113.7", f"nobody{n}") for n in range(11)]
    assert flooder[:10] == ["401"] * 10
    assert flooder[10] == "429"
    assert login("198.51.100.4", "someone") == "401"


def test_the_teams_people_log_in_to_the_api_and_start_with_a_market(host, started):
    """stack_users makes the API's users too, with the Grafana login's password: alice logs in, owns the
    collectors role's starting watchlist, and the market feeder follows its symbols."""
    secret = Path.home() / ".cache/bloomberg-sandbox/secrets/grafana_user_alice"
    password = secret.read_text().split()[0]
    body = json.dumps({"username": "alice", "password": password})
    token = json.loads(
        host.check_output(
            f"curl -fsS -X POST -H 'Content-Type: application/json' -d '{body}' http://127.0.0.1:8000/api/auth/token"
        )
    )["access_token"]
    auth = f"-H 'Authorization: Bearer {token}'"
    me = json.loads(host.check_output(f"curl -fsS {auth} http://127.0.0.1:8000/api/me"))
    assert (me["username"], me["role"]) == ("alice", "member")  # an Editor in Grafana
    lists = json.loads(host.check_output(f"curl -fsS {auth} http://127.0.0.1:8000/api/watchlists/{me['id']}"))
    assert [(w["name"], w["active"]) for w in lists] == [("Markets", True)]
    assert {"BTC/USDT", "SPX", "XAU"} <= set(lists[0]["assets"])
    if "market-feeder" in started:
        metrics = host.check_output(
            f"docker exec {_container(host, 'market-feeder')} python -c "
            "\"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9108/metrics').read().decode())\""
        )
        followed = [line for line in metrics.splitlines() if line.startswith("marketdash_market_symbols ")]
        assert followed == [f"marketdash_market_symbols {float(len(lists[0]['assets']))}"]
