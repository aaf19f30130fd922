"""Fixtures of the edge scenario: the target seen from outside, Pebble, and throwaway client containers.

Clients run in containers of their own on the scenario network (never against anything but the
containers this scenario made), and each is removed by its fixture whatever the test's outcome.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
NETWORK = "bloomberg-edge-net"
TARGET = "bloomberg-edge"
PEBBLE = "bloomberg-edge-pebble"
# A client container lives at most this long even if its fixture never runs its finalizer.
CLIENT_LIFETIME_S = 600


def docker(*args: str, timeout: float = 120, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, input=stdin
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def address_of(container: str) -> str:
    return docker(
        "inspect", "-f", f'{{{{ (index .NetworkSettings.Networks "{NETWORK}").IPAddress }}}}', container
    ).strip()


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Client:
    """A container on the scenario network that runs commands (curl, nmap, openssl) at the target."""

    name: str
    address: str

    def run(self, command: str, timeout: float = 120) -> Result:
        done = subprocess.run(
            ["docker", "exec", self.name, "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Edge:
    domain: str
    address: str
    acme_ca_bundle: str

    def curl(self, options: str, url_path: str = "/", scheme: str = "https") -> str:
        """A curl command line that reaches the target by its domain, as a browser would."""
        port = 443 if scheme == "https" else 80
        return (
            f"curl -sS --max-time 10 --resolve {self.domain}:{port}:{self.address} "
            f"--cacert /tmp/pebble-root.pem {options} '{scheme}://{self.domain}{url_path}'"
        )


@pytest.fixture(scope="session")
def edge_vars() -> dict:
    return yaml.safe_load((SCENARIO / "host_vars" / f"{TARGET}.yml").read_text())


@pytest.fixture(scope="session")
def edge(edge_vars) -> Edge:
    return Edge(edge_vars["edge_domain"], address_of(TARGET), edge_vars["edge_acme_ca_bundle"])


@pytest.fixture(scope="session")
def pebble_root() -> str:
    """The root Pebble issues under (made fresh at each Pebble start)."""
    root = docker("exec", PEBBLE, "curl", "-sSk", "--max-time", "10", "https://localhost:15000/roots/0")
    assert "BEGIN CERTIFICATE" in root, root
    return root


def start_client(role: str, pebble_root: str) -> Client:
    name = f"bloomberg-edge-{role}"
    docker("rm", "-f", name, check=False)
    image = docker("inspect", "-f", "{{ .Config.Image }}", PEBBLE).strip()
    label = f"org.bloomberg.edge-test={uuid.uuid4()}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        NETWORK,
        "--label",
        label,
        image,
        "sleep",
        str(CLIENT_LIFETIME_S),
    )
    docker("exec", "-i", name, "sh", "-c", "cat > /tmp/pebble-root.pem", stdin=pebble_root)
    return Client(name, address_of(name))


@pytest.fixture(scope="session")
def prober(pebble_root) -> Iterator[Client]:
    client = start_client("prober", pebble_root)
    yield client
    docker("rm", "-f", client.name, check=False)


@pytest.fixture(scope="module")
def fresh_clients(pebble_root, host) -> Iterator[Callable[[str], Client]]:
    """Clients each on an address no earlier client had: a freed address would come back to the next
    container with its bans (fail2ban's recidive jail bans for a week after three) and its rate-limit
    counters. So they live until the module's tests are over, and their bans are lifted then."""
    made: list[Client] = []

    def fresh(role: str) -> Client:
        made.append(start_client(f"{role}-{len(made) + 1}", pebble_root))
        return made[-1]

    yield fresh
    for client in made:
        host.run(f"fail2ban-client unban {client.address}")
        docker("rm", "-f", client.name, check=False)


@pytest.fixture
def flooder(fresh_clients) -> Client:
    """A client that misbehaves, and is banned for it."""
    return fresh_clients("flooder")


@pytest.fixture
def team(fresh_clients) -> Client:
    """One address that a whole team's browsers share (an office NAT)."""
    return fresh_clients("team")


@pytest.fixture
def upstreams(host, edge_vars) -> Iterator[None]:
    """Echo servers standing in for Grafana (3000) and the API (8000) on the target's loopback."""
    grafana, api = edge_vars.get("edge_grafana_port", 3000), edge_vars.get("edge_api_port", 8000)
    source = (Path(__file__).parent / "upstreams.py").read_text()
    docker("exec", "-i", TARGET, "sh", "-c", "cat > /run/edge-test-upstreams.py", stdin=source)
    host.run("systemctl stop edge-test-upstreams 2>/dev/null; rm -f /run/edge-test-release")
    listening = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {api}))\" 2>/dev/null"
    started = host.run(
        f"systemd-run --unit=edge-test-upstreams python3 /run/edge-test-upstreams.py {grafana} {api}"
        f" && for i in $(seq 50); do {listening} && exit 0; sleep 0.1; done; exit 1"
    )
    assert started.rc == 0, started.stderr
    yield
    host.run("systemctl stop edge-test-upstreams; rm -f /run/edge-test-release /run/edge-test-upstreams.py")
