#!/usr/bin/env python3
"""Write the host facts Prometheus cannot scrape itself as a node-exporter textfile.

Run by bloomberg-host-metrics.timer. Two facts feed alert rules: the edge certificate's expiry (nginx's
certificate lives on the host, outside every container) and the Docker health of each container of the
Compose project (PostgreSQL has no exporter; its health check, pg_isready, is the truth about it).
Standard library only: it runs with the host's python3, the one Ansible already needs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

OUTPUT_NAME = "bloomberg.prom"
COMMAND_TIMEOUT_S = 20
# Absolute paths: the timer's environment is systemd's, and both packages install them here.
OPENSSL = "/usr/bin/openssl"
DOCKER = "/usr/bin/docker"


def label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def certificate_not_after(path: Path) -> float | None:
    """notAfter of the first certificate in the PEM file as Unix time, None when it cannot be read."""
    try:
        result = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            [OPENSSL, "x509", "-noout", "-enddate", "-in", str(path)],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            # openssl prints month names in the C locale only when asked to.
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0 or not result.stdout.startswith("notAfter="):
        return None
    text = result.stdout.strip().removeprefix("notAfter=")
    try:
        return datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def docker(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [DOCKER, *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=True
    ).stdout


def compose_containers(project: str) -> list[dict] | None:
    """docker inspect of every container of the Compose project, None when the engine cannot be asked."""
    try:
        project_filter = f"label=com.docker.compose.project={project}"
        ids = docker("ps", "--all", "--quiet", "--filter", project_filter).split()
        return json.loads(docker("inspect", *ids)) if ids else []
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return None


def render(certificate: Path, project: str, now: float) -> str:
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{key}="{label_value(val)}"' for key, val in labels.items())
            lines.append(f"{name}{{{rendered}}} {float(value)!r}" if rendered else f"{name} {float(value)!r}")

    path_label = {"path": str(certificate)}
    not_after = certificate_not_after(certificate)
    family(
        "bloomberg_edge_certificate_readable",
        "1 when the certificate nginx serves could be read.",
        [(path_label, 0 if not_after is None else 1)],
    )
    if not_after is not None:
        family(
            "bloomberg_edge_certificate_not_after_timestamp_seconds",
            "Expiry (notAfter) of the certificate nginx serves, as Unix time.",
            [(path_label, not_after)],
        )

    containers = compose_containers(project)
    family(
        "bloomberg_docker_reachable",
        "1 when the Docker engine answered.",
        [({}, 0 if containers is None else 1)],
    )
    running: list[tuple[dict[str, str], float]] = []
    healthy: list[tuple[dict[str, str], float]] = []
    for container in containers or []:
        labels = {
            "service": container["Config"]["Labels"].get("com.docker.compose.service", ""),
            "container": container["Name"].lstrip("/"),
        }
        state = container["State"]
        is_running = state.get("Status") == "running"
        # A container without a health check counts as healthy while it runs.
        health = (state.get("Health") or {}).get("Status", "healthy")
        running.append((labels, 1 if is_running else 0))
        healthy.append((labels, 1 if is_running and health == "healthy" else 0))
    family("bloomberg_container_running", "1 when the Compose container is running.", running)
    family(
        "bloomberg_container_healthy",
        "1 when the Compose container runs and its Docker health check passes.",
        healthy,
    )
    family(
        "bloomberg_host_metrics_timestamp_seconds",
        "When these metrics were written, as Unix time.",
        [({}, now)],
    )
    return "\n".join(lines) + "\n"


def write_atomically(directory: Path, text: str) -> None:
    # node-exporter must never read a half-written file: write beside it, then rename over it.
    with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".bloomberg-", delete=False) as handle:
        handle.write(text)
        temporary = Path(handle.name)
    temporary.chmod(0o644)
    temporary.replace(directory / OUTPUT_NAME)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textfile-dir", type=Path, required=True)
    parser.add_argument("--certificate", type=Path, required=True)
    parser.add_argument("--compose-project", default="bloomberg")
    args = parser.parse_args(argv)
    write_atomically(args.textfile_dir, render(args.certificate, args.compose_project, time.time()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
