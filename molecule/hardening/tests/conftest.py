"""Fixtures of the hardening scenario: the converged target, and a prober container beside it.

The prober is a second container on the target's Docker network, built locally from the target's own
image plus an SSH client and nmap (no image can be pulled here), cached by a tag derived from its
recipe. It lives only as long as the test session (and never more than ten minutes: its command is a
bounded sleep), and is removed even when a test fails.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
TARGET = "bloomberg-hardening"
NETWORK = "bloomberg-hardening-net"
PROBER = "bloomberg-hardening-prober"
TARGET_IMAGE = os.environ.get("BLOOMBERG_TARGET_IMAGE", "bloomberg-target:debian12")
SANDBOX_KEY = Path.home() / ".cache" / "bloomberg-sandbox" / "id_ed25519"
PROBER_RECIPE = (
    f"FROM {TARGET_IMAGE}\n"
    "RUN apt-get update -qq \\\n"
    " && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
    " openssh-client nmap >/dev/null \\\n"
    " && rm -rf /var/lib/apt/lists/*\n"
)


def docker(
    *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=check
    )


@dataclass(frozen=True)
class Prober:
    """The test host: runs commands in the prober container."""

    name: str
    address: str

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return docker("exec", self.name, "sh", "-c", command, timeout=timeout, check=False)

    def ssh(self, target: str, port: int, user: str, command: str, *options: str, timeout: float = 30):
        """ssh from the prober; host keys are not pinned (the target is new every run)."""
        base = [
            "ssh",
            "-p", str(port),
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=8",
            "-o", "LogLevel=ERROR",
            *options,
            f"{user}@{target}",
            command,
        ]  # fmt: skip
        return self.run(shlex.join(base), timeout=timeout)


@pytest.fixture(scope="session")
def hardening_vars() -> dict:
    """What the scenario converged with: the role's defaults, overridden by the scenario's host_vars."""
    values = yaml.safe_load((PROJECT / "roles" / "hardening" / "defaults" / "main.yml").read_text())
    values.update(yaml.safe_load((SCENARIO / "host_vars" / f"{TARGET}.yml").read_text()))
    return values


@pytest.fixture(scope="session")
def ssh_port(hardening_vars) -> int:
    return int(hardening_vars["hardening_ssh_port"])


@pytest.fixture(scope="session")
def admin_name() -> str:
    sandbox = yaml.safe_load(
        (PROJECT / "inventory" / "sandbox" / "group_vars" / "all" / "main.yml").read_text()
    )
    return sandbox["base_admin_users"][0]["name"]


@pytest.fixture(scope="session")
def target_address() -> str:
    template = '{{ (index .NetworkSettings.Networks "' + NETWORK + '").IPAddress }}'
    address = docker("inspect", "-f", template, TARGET).stdout.strip()
    assert address, f"{TARGET} has no address on {NETWORK}"
    return address


def _prober_image() -> str:
    tag = "bloomberg-hardening-prober:" + hashlib.sha256(PROBER_RECIPE.encode()).hexdigest()[:12]
    if docker("image", "inspect", tag, check=False).returncode != 0:
        docker("build", "-q", "-t", tag, "-", stdin=PROBER_RECIPE, timeout=300)
    return tag


@pytest.fixture(scope="session")
def prober() -> Iterator[Prober]:
    image = _prober_image()
    docker("rm", "-f", PROBER, check=False)
    docker("run", "-d", "--rm", "--name", PROBER, "--network", NETWORK, "--entrypoint", "sleep", image, "600")
    try:
        docker("cp", str(SANDBOX_KEY), f"{PROBER}:/root/admin_key")
        docker("exec", PROBER, "chmod", "600", "/root/admin_key")
        template = '{{ (index .NetworkSettings.Networks "' + NETWORK + '").IPAddress }}'
        address = docker("inspect", "-f", template, PROBER).stdout.strip()
        yield Prober(PROBER, address)
    finally:
        docker("rm", "-f", PROBER, check=False)
