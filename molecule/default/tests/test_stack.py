"""The stack's shared contract, as deployed: one project, one network, the same hardening everywhere."""

from __future__ import annotations

import json

import pytest

HOME = "/opt/bloomberg"
COMPONENTS = ("postgres", "influxdb", "prometheus", "grafana", "collectors")


def project_config(host) -> dict:
    # Compose's own resolution of the project file and every fragment it includes.
    out = host.check_output(
        f"docker compose --project-directory {HOME} --file {HOME}/compose.yml config --format json"
    )
    return json.loads(out)


@pytest.fixture(scope="module")
def services(host) -> dict:
    return project_config(host)["services"]


def test_the_project_includes_every_component(host, services):
    config = project_config(host)
    assert config["name"] == "bloomberg"
    expected = {"postgres", "influxdb", "prometheus", "alertmanager", "node-exporter", "cadvisor", "grafana"}
    expected |= {"market-feeder", "news-feeder", "api", "alert-engine"}
    assert set(services) == expected


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_fragment_is_owned_by_root_and_readable(host, component):
    fragment = host.file(f"{HOME}/{component}/compose.yml")
    assert fragment.user == "root"
    assert fragment.mode == 0o644


def test_every_service_carries_the_stack_container_defaults(services):
    # The stack role applies these to every fragment; a service written without them fails here.
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert "/tmp" in service.get("tmpfs", []), name
        assert service.get("restart") == "unless-stopped", name
        assert list(service.get("networks", {})) == ["bloomberg-net"], name
        assert service.get("healthcheck", {}).get("test"), name
        assert service.get("mem_limit"), name
        assert service.get("cpus"), name


def test_only_cadvisor_gets_capabilities_back(services):
    granted = {
        name: sorted(service.get("cap_add", []))
        for name, service in services.items()
        if service.get("cap_add")
    }
    assert granted == {"cadvisor": ["DAC_READ_SEARCH", "SYSLOG"]}


@pytest.mark.parametrize("service", ["postgres", "influxdb", "prometheus", "alertmanager", "api"])
def test_running_containers_have_a_read_only_root_and_no_capability(host, service):
    inspect = json.loads(host.check_output(f"docker inspect bloomberg-{service}-1"))[0]
    config = inspect["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert config["CapDrop"] == ["ALL"]
    assert not config["CapAdd"]
    assert "no-new-privileges:true" in config["SecurityOpt"]
    # The process really has no capability and cannot write outside its volumes and tmpfs.
    status = host.check_output(f"docker exec bloomberg-{service}-1 cat /proc/1/status")
    effective = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    assert int(effective, 16) == 0
    assert host.run(f"docker exec bloomberg-{service}-1 touch /etc/written-by-test").rc != 0


def test_the_secrets_directory_is_root_crossable_only(host):
    secrets = host.file(f"{HOME}/secrets")
    assert secrets.user == "root"
    assert secrets.mode == 0o711
