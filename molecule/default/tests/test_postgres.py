"""The postgres role on a converged target: PostgreSQL up on bloomberg-net, reachable by nothing else, with
least-privilege logins. Clients connect as the API and Grafana do: from a container on bloomberg-net, by
the service name, with the passwords of the sandbox inventory."""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path

import pytest

CONTAINER = "bloomberg-postgres-1"
IMAGE = "postgres:16.11-bookworm"
DATABASE = "bloomberg_config"
SCHEMA = "marketdash"
SECRETS = Path.home() / ".cache" / "bloomberg-sandbox" / "secrets"


def _password(name: str) -> str:
    return (SECRETS / name).read_text().strip()


@pytest.fixture(scope="module")
def postgres_started(host):
    state = host.run(f"docker inspect {CONTAINER}")
    if state.rc != 0:
        pytest.skip("postgres is not started in this inventory (stack_services_not_started)")
    return json.loads(state.stdout)[0]


def psql(host, user: str, password: str, sql: str, *, database: str = DATABASE, server: str = "postgres"):
    """Run `sql` with psql from a throwaway container on bloomberg-net, as `user`."""
    command = (
        f"PGPASSWORD={shlex.quote(password)} docker run --rm -e PGPASSWORD --network bloomberg-net "
        f"--entrypoint psql {IMAGE} -X -q -At -v ON_ERROR_STOP=1 -h {server} -U {user} -d {database} "
        f"-c {shlex.quote(sql)}"
    )
    return host.run(command)


def test_the_container_is_healthy_and_restarts_by_itself(postgres_started):
    assert postgres_started["State"]["Health"]["Status"] == "healthy"
    assert postgres_started["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert postgres_started["HostConfig"]["Memory"] > 0
    assert postgres_started["HostConfig"]["NanoCpus"] > 0
    assert postgres_started["HostConfig"]["ShmSize"] >= 128 * 1024 * 1024
    mounts = {mount["Destination"]: mount for mount in postgres_started["Mounts"]}
    assert mounts["/var/lib/postgresql/data"]["Type"] == "volume"
    assert mounts["/etc/postgresql/bloomberg"]["RW"] is False


def test_nothing_is_published_on_the_host(host, postgres_started):
    assert not postgres_started["HostConfig"]["PortBindings"]
    assert all(not bindings for bindings in postgres_started["NetworkSettings"]["Ports"].values())
    assert host.run("timeout 3 bash -c '</dev/tcp/127.0.0.1/5432'").rc != 0
    assert list(postgres_started["NetworkSettings"]["Networks"]) == ["bloomberg-net"]


def test_the_superuser_password_file_is_readable_by_the_postgres_uid_alone(host):
    secret = host.file("/opt/bloomberg/secrets/postgres-superuser-password")
    assert (secret.uid, secret.gid, secret.mode) == (999, 999, 0o400)
    assert secret.content_string == _password("postgres_superuser_password")
    assert host.file("/opt/bloomberg/secrets").mode == 0o711


def test_the_api_creates_and_writes_tables_in_its_schema(host, postgres_started):
    table = f"probe_{uuid.uuid4().hex[:8]}"
    api = psql(
        host,
        "marketdash_api",
        _password("postgres_api_password"),
        f"CREATE TABLE {table} (id int PRIMARY KEY, note text); INSERT INTO {table} VALUES (1, 'written');"
        f"SELECT schemaname FROM pg_tables WHERE tablename = '{table}'; SELECT note FROM {table};",
    )
    assert api.rc == 0, api.stderr
    assert api.stdout.split() == [SCHEMA, "written"]
    # Not granted by the API's grants.sql: Grafana's login does not read it (no default privileges).
    reader = psql(
        host, "grafana_reader", _password("postgres_grafana_reader_password"), f"SELECT note FROM {table}"
    )
    assert reader.rc != 0
    assert "permission denied" in reader.stderr
    assert psql(host, "marketdash_api", _password("postgres_api_password"), f"DROP TABLE {table}").rc == 0


def test_the_api_role_has_no_power_over_the_cluster(host, postgres_started):
    attributes = psql(
        host,
        "marketdash_api",
        _password("postgres_api_password"),
        "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user",
    )
    assert attributes.stdout.strip() == "f|f|f"


@pytest.mark.parametrize(
    "statement",
    [
        f"INSERT INTO {SCHEMA}.watchlists (user_id, name) VALUES (1, 'x')",
        f"DELETE FROM {SCHEMA}.watchlists",
        f"SELECT target FROM {SCHEMA}.alert_rules",
        f"CREATE TABLE {SCHEMA}.reader_table (id int)",
        "CREATE TABLE public.reader_table (id int)",
        "CREATE TEMPORARY TABLE reader_temp (id int)",
    ],
)
def test_the_reader_reads_the_dashboards_tables_and_cannot_write_or_create(host, postgres_started, statement):
    reader_password = _password("postgres_grafana_reader_password")
    read = psql(host, "grafana_reader", reader_password, f"SELECT count(*) FROM {SCHEMA}.watchlists")
    assert read.rc == 0, read.stderr
    refused = psql(host, "grafana_reader", reader_password, statement)
    assert refused.rc != 0
    assert "permission denied" in refused.stderr


def test_the_superuser_cannot_log_in_over_the_network(host, postgres_started):
    refused = psql(host, "postgres", _password("postgres_superuser_password"), "SELECT 1")
    assert refused.rc != 0
    assert "no pg_hba.conf entry" in refused.stderr


def test_a_wrong_password_is_refused(host, postgres_started):
    refused = psql(host, "grafana_reader", "not-the-password", "SELECT 1")
    assert refused.rc != 0
    assert "password authentication failed" in refused.stderr


def test_only_the_services_logins_may_connect_to_the_database(host, postgres_started):
    acl = host.run(
        f"docker exec -u postgres {CONTAINER} psql -X -At -d {DATABASE} -c "
        + shlex.quote(f"SELECT datacl FROM pg_database WHERE datname = '{DATABASE}'")
    )
    assert acl.rc == 0, acl.stderr
    entries = acl.stdout.strip().strip("{}").split(",")
    assert not [entry for entry in entries if entry.startswith("=")], entries  # nothing for PUBLIC
    assert {entry.split("=")[0] for entry in entries} == {
        "postgres",
        "marketdash_api",
        "grafana_reader",
        "marketdash_alerts",
        "marketdash_feeder",
    }


def test_grafanas_login_sees_who_the_users_are_but_no_password_hash(host, postgres_started):
    password = _password("postgres_grafana_reader_password")
    names = psql(host, "grafana_reader", password, "SELECT id, username FROM users")
    assert names.rc == 0, names.stderr
    for statement in ("SELECT password_hash FROM users", "SELECT * FROM users"):
        refused = psql(host, "grafana_reader", password, statement)
        assert refused.rc != 0, statement
        assert "permission denied" in refused.stderr, statement


def test_the_alert_engine_login_reads_rules_writes_events_and_sees_no_user(host, postgres_started):
    password = _password("postgres_alerts_password")
    assert psql(host, "marketdash_alerts", password, "SELECT count(*) FROM alert_rules").rc == 0
    assert psql(host, "marketdash_alerts", password, "SELECT count(*) FROM alert_events").rc == 0
    for statement in ("SELECT count(*) FROM users", "DELETE FROM alert_rules", "SELECT * FROM watchlists"):
        refused = psql(host, "marketdash_alerts", password, statement)
        assert refused.rc != 0, statement
        assert "permission denied" in refused.stderr, statement


def test_the_feeders_login_reads_the_followed_symbols_and_nothing_else(host, postgres_started):
    password = _password("postgres_feeder_password")
    followed = psql(host, "marketdash_feeder", password, "SELECT assets FROM watchlists WHERE active")
    assert followed.rc == 0, followed.stderr
    for statement in (
        "SELECT user_id FROM watchlists",
        "SELECT count(*) FROM users",
        "DELETE FROM watchlists",
    ):
        refused = psql(host, "marketdash_feeder", password, statement)
        assert refused.rc != 0, statement
        assert "permission denied" in refused.stderr, statement
