"""The docker role: engine and Compose v2 running, daemon settings in force, and no container port
reachable from outside the host, even one published on 0.0.0.0 by mistake.

The outside is a throwaway container on this machine's engine, beside the target: it probes the
target's address with plain TCP connections, a bounded list of ports, for a bounded time.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator

import pytest

# A port no service of the stack uses, published on every interface of the target by the test itself.
MISTAKE_PORT = 18080
# Every port a service of the stack listens on (published on 127.0.0.1 or only on bloomberg-net).
STACK_PORTS = [3000, 5432, 8000, 8080, 8086, 9090, 9093, 9100]
PROBE = textwrap.dedent(
    """
    import json, socket, sys
    address, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    def state(port):
        try:
            socket.create_connection((address, port), timeout=3).close()
            return "open"
        except OSError:
            return "closed"
    print(json.dumps({port: state(port) for port in ports}))
    """
)


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def target(host) -> str:
    """The target's container on this machine (our platforms name it after its host name)."""
    return host.check_output("hostname")


@pytest.fixture(scope="module")
def probe(target) -> Iterator:
    """Connects from a container outside the target, as the internet would."""
    address = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", target
    ).strip()
    image = docker("inspect", "-f", "{{.Config.Image}}", target).strip()
    outsider = f"{target}-outsider"

    def run(*ports: int) -> dict[int, str]:
        out = docker(
            "run", "--rm", "--name", outsider, image,
            "timeout", "60", "python3", "-c", PROBE, address, *map(str, ports),
        )  # fmt: skip
        return {int(port): state for port, state in json.loads(out).items()}

    yield run
    subprocess.run(["docker", "rm", "-f", outsider], capture_output=True, check=False)


@pytest.fixture
def mistake(host) -> Iterator[None]:
    """A container of the nested engine that publishes a port on 0.0.0.0, as a careless edit would."""
    image = host.check_output("docker images --format '{{.Repository}}:{{.Tag}}' | head -n1")
    host.run("docker rm -f bloomberg-test-mistake")
    started = host.run(
        f"docker run -d --name bloomberg-test-mistake -p 0.0.0.0:{MISTAKE_PORT}:{MISTAKE_PORT} "
        f"--entrypoint python3 {image} -m http.server {MISTAKE_PORT}"
    )
    assert started.rc == 0, started.stderr
    listening = host.run(
        f"for i in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:{MISTAKE_PORT}/ && exit 0;"
        " sleep 0.2; done; exit 1"
    )
    assert listening.rc == 0, "the test container never answered on the target itself"
    yield
    host.run("docker rm -f bloomberg-test-mistake")


def test_engine_and_compose_v2_answer(host):
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    assert host.run("docker compose version --short").rc == 0


def test_daemon_settings_are_in_force(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"
    settings = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert settings["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert settings["no-new-privileges"] is True


def test_the_stack_network_exists(host):
    assert host.run("docker network inspect bloomberg-net").rc == 0


def test_docker_user_chain_drops_new_outside_connections(host):
    rules = host.check_output("iptables -S DOCKER-USER")
    assert "-A DOCKER-USER -o br-+ -j DROP" in rules
    assert "-A DOCKER-USER -o docker0 -j DROP" in rules
    assert host.service("bloomberg-docker-user").is_enabled


def test_a_port_published_on_every_interface_stays_closed_from_outside(host, probe, mistake):
    states = probe(22, MISTAKE_PORT)
    # sshd answering shows that the outsider does reach the target: the closed port is the firewall.
    assert states == {22: "open", MISTAKE_PORT: "closed"}


def test_no_port_of_the_stack_is_reachable_from_outside(probe):
    states = probe(*STACK_PORTS)
    assert states == dict.fromkeys(STACK_PORTS, "closed")


def test_the_rules_come_back_when_the_engine_restarts(host, probe, mistake):
    host.run("iptables -F DOCKER-USER")
    assert host.run("systemctl restart docker").rc == 0
    # The rules' unit is restarted with the engine, just after it: wait for it, up to 20 s.
    restored = host.run(
        "for i in $(seq 40); do iptables -S DOCKER-USER | grep -qe '-o br-+ -j DROP' && exit 0;"
        " sleep 0.5; done; exit 1"
    )
    assert restored.rc == 0, host.check_output("iptables -S DOCKER-USER")
    assert probe(MISTAKE_PORT) == {MISTAKE_PORT: "closed"}
