"""The grafana role on a converged target: files, owners and modes, a valid Compose fragment, and the
provisioning validator passing on the files as rendered there. Grafana itself is not started here
(stack_services_not_started: no image can be had), so nothing below talks to a running Grafana.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from marketdash_dashboards import provisioning

GRAFANA = "/opt/bloomberg/grafana"
SECRETS = "/opt/bloomberg/secrets"
SANDBOX_SECRETS = Path.home() / ".cache" / "bloomberg-sandbox" / "secrets"
CONTRACT = provisioning.contract()
GRAFANA_UID = 472
# The sandbox configures every alert channel (inventory/sandbox/group_vars/all/grafana.yml).
SECRET_FILES = [
    "grafana-admin-password",
    "grafana-secret-key",
    "grafana-postgres-password",
    "grafana-telegram-bot-token",
    "grafana-webhook-url",
]


@pytest.mark.parametrize(
    "path",
    [
        GRAFANA,
        f"{GRAFANA}/config",
        f"{GRAFANA}/config/provisioning/datasources",
        f"{GRAFANA}/config/provisioning/dashboards",
        f"{GRAFANA}/config/provisioning/alerting",
        f"{GRAFANA}/dashboards",
    ],
)
def test_directories_are_readable_and_only_root_writes(host, path):
    directory = host.file(path)
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o755)


def test_config_files_are_root_owned_and_world_readable(host):
    files = host.run(f"find {GRAFANA} -type f -printf '%u:%g:%m %p\\n'").stdout.splitlines()
    assert files
    for line in files:
        owner_mode, path = line.split(" ", 1)
        assert owner_mode == "root:root:644", path


def test_one_dashboard_folder_per_look_with_the_generated_files(host):
    for look in CONTRACT["grafana_contract_looks"]:
        listed = host.run(f"ls {GRAFANA}/dashboards/{look['key']}").stdout.split()
        assert sorted(listed) == look["dashboards"]


def test_the_dashboards_on_the_target_are_the_committed_ones(host):
    committed = Path(__file__).resolve().parents[3] / "files" / "grafana" / "dashboards"
    home = CONTRACT["grafana_contract_home"]
    on_target = host.file(f"{GRAFANA}/dashboards/{home['look']}/{home['file']}").content_string
    assert on_target == (committed / home["file"]).read_text(encoding="utf-8")


def test_secret_files_are_readable_by_grafanas_uid_only(host):
    secrets_dir = host.file(SECRETS)
    assert (secrets_dir.user, secrets_dir.mode) == ("root", 0o711)
    for name in SECRET_FILES:
        secret = host.file(f"{SECRETS}/{name}")
        assert secret.exists, name
        assert (secret.uid, secret.mode) == (GRAFANA_UID, 0o400), name
    # The sandbox sets no SMTP password and no OAuth: their files are not written.
    for name in ("grafana-smtp-password", "grafana-github-client-secret", "grafana-google-client-secret"):
        assert not host.file(f"{SECRETS}/{name}").exists


def test_the_admin_password_file_holds_the_vault_value_and_no_config_does(host):
    password = (SANDBOX_SECRETS / "grafana_admin_password").read_text().strip()
    assert host.file(f"{SECRETS}/grafana-admin-password").content_string == password
    assert host.run(f"grep -rlF -- {password} {GRAFANA}").stdout == ""


def test_the_validator_passes_on_the_files_as_rendered_on_the_target(host, tmp_path):
    listing = host.run(f"cd {GRAFANA} && find config dashboards -type f").stdout.split()
    for relative in listing:
        local = tmp_path / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(host.file(f"{GRAFANA}/{relative}").content)
    assert (
        provisioning.validate(tmp_path / "config", {"/etc/grafana-dashboards": tmp_path / "dashboards"}) == []
    )


def test_the_contact_point_has_every_sandbox_channel(host):
    points = yaml.safe_load(
        host.file(f"{GRAFANA}/config/provisioning/alerting/contact-points.yaml").content_string
    )
    types = [receiver["type"] for receiver in points["contactPoints"][0]["receivers"]]
    assert types == ["telegram", "email", "webhook"]


@pytest.fixture(scope="module")
def compose_config(host) -> dict:
    result = host.run(f"docker compose --file {GRAFANA}/compose.yml config --format json")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_the_fragment_publishes_on_loopback_only(compose_config):
    ports = compose_config["services"]["grafana"]["ports"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in ports] == [("127.0.0.1", "3000", 3000)]


def test_the_fragment_runs_unprivileged_with_read_only_config(compose_config):
    service = compose_config["services"]["grafana"]
    assert service["image"].startswith("grafana/grafana:12.3.")
    assert service["user"] == "472:0"
    assert service["cap_drop"] == ["ALL"]
    mounts = {volume["target"]: volume for volume in service["volumes"]}
    assert mounts["/var/lib/grafana"]["type"] == "volume"
    assert mounts["/etc/grafana"]["read_only"] is True
    assert mounts["/etc/grafana-dashboards"]["read_only"] is True
    assert service["healthcheck"]["test"][-1] == "http://localhost:3000/api/health"
    assert service["networks"].keys() == {"bloomberg-net"}
    assert compose_config["networks"]["bloomberg-net"]["external"] is True


def test_secrets_reach_grafana_as_files_never_as_values(compose_config):
    service = compose_config["services"]["grafana"]
    environment = service["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana-admin-password"
    assert environment["GF_SECURITY_SECRET_KEY__FILE"] == "/run/secrets/grafana-secret-key"
    assert not any(key.endswith("PASSWORD") or key.endswith("SECRET") for key in environment)
    assert environment["GF_PLUGINS_PREINSTALL_SYNC"] == ",".join(CONTRACT["grafana_contract_plugins"])
    mounted = {secret["source"] for secret in service["secrets"]}
    assert mounted == {*SECRET_FILES, "grafana-influxdb-token"}
    assert compose_config["secrets"]["grafana-influxdb-token"]["file"] == f"{SECRETS}/influxdb-token-grafana"


def test_grafana_is_not_started_here(host):
    running = host.run("docker ps --all --quiet --filter label=com.docker.compose.service=grafana")
    assert running.rc == 0
    assert running.stdout.strip() == ""
