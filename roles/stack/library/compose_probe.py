#!/usr/bin/python
"""One look at a component's services before its `up`: which are already as `up` would leave them, and
which files they read are missing."""

from __future__ import annotations

import json
import os
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: compose_probe
short_description: Whether `docker compose up --wait` has anything to do for a fragment's services
description:
  - C(docker compose up --wait) through community.docker costs more than a second even when every
    container is current. This module asks the engine the same questions in four quick commands and
    lists the services that are current, so that the up runs only for a fragment with something to do.
  - A service is current when each of its containers (there must be one) runs, is healthy or has no
    health check, was created from the fragment's present definition (Compose's config hash label
    equals C(docker compose config --hash)) and runs the image its tag names now (an image rebuilt or
    loaded under the same tag makes it stale, as it does for Compose).
  - Anything it cannot read (a fragment Compose refuses, an image that is gone) makes the services
    concerned not current: the up then runs and says what is wrong.
options:
  project:
    description: The Compose project name.
    type: str
    required: true
  file:
    description: The component's Compose fragment.
    type: path
    required: true
  services:
    description: The services of the fragment to look at.
    type: list
    elements: str
    required: true
  required_files:
    description: Files the services read (secrets another role writes); those missing are returned.
    type: list
    elements: path
    default: []
"""

RETURN = r"""
current:
  description: The services among I(services) that C(up) would leave as they are.
  type: list
missing_files:
  description: The files among I(required_files) that do not exist.
  type: list
"""


def config_hashes(started: subprocess.Popen) -> dict[str, str]:
    out, _ = started.communicate()
    if started.returncode != 0:
        return {}
    return dict(line.split(None, 1) for line in out.splitlines() if len(line.split()) == 2)


def containers(module: AnsibleModule, project: str, services: list[str]) -> list[dict]:
    # Not the one-off containers of `docker compose run`: up leaves them alone.
    listed = ["--filter", f"label=com.docker.compose.project={project}"]
    listed += ["--filter", "label=com.docker.compose.oneoff=False"]
    rc, out, _ = module.run_command(["docker", "ps", "--all", "--quiet", "--no-trunc", *listed])
    ids = out.split() if rc == 0 else []
    if not ids:
        return []
    rc, out, _ = module.run_command(["docker", "inspect", *ids])
    found = json.loads(out) if rc == 0 else []
    return [c for c in found if c["Config"]["Labels"].get("com.docker.compose.service") in services]


def image_ids(module: AnsibleModule, names: set[str]) -> dict[str, str]:
    """The image each reference names now. `docker image inspect` prints those it found even when
    another is missing."""
    if not names:
        return {}
    _, out, _ = module.run_command(["docker", "image", "inspect", *sorted(names)])
    try:
        images = json.loads(out or "[]")
    except ValueError:
        return {}
    ids = {}
    for name in names:
        # Compose writes the reference as given; the engine lists a bare name under its :latest tag.
        spelled = {name, f"{name}:latest"}
        for image in images:
            if spelled & set((image.get("RepoTags") or []) + (image.get("RepoDigests") or [])):
                ids[name] = image["Id"]
    return ids


def is_current(container: dict, hashes: dict[str, str], images: dict[str, str]) -> bool:
    labels = container["Config"]["Labels"]
    state = container["State"]
    health = (state.get("Health") or {}).get("Status", "healthy")
    return (
        state["Status"] == "running"
        and health == "healthy"
        and labels.get("com.docker.compose.config-hash") == hashes.get(labels["com.docker.compose.service"])
        and container["Image"] == images.get(container["Config"]["Image"])
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project": {"type": "str", "required": True},
            "file": {"type": "path", "required": True},
            "services": {"type": "list", "elements": "str", "required": True},
            "required_files": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    project, services = module.params["project"], module.params["services"]
    missing = [path for path in module.params["required_files"] if not os.path.exists(path)]
    current: list[str] = []
    if services and os.path.exists(module.params["file"]):
        # Compose takes the longest to answer: it reads the fragment while the engine is asked the rest.
        compose = ["docker", "compose", "--project-name", project, "--file", module.params["file"]]
        hashing = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            [*compose, "config", "--hash", "*"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            running = containers(module, project, services)
            images = image_ids(module, {c["Config"]["Image"] for c in running})
        finally:
            hashes = config_hashes(hashing)
        for service in services:
            own = [c for c in running if c["Config"]["Labels"]["com.docker.compose.service"] == service]
            if own and all(is_current(c, hashes, images) for c in own):
                current.append(service)
    module.exit_json(changed=False, current=current, missing_files=missing)


if __name__ == "__main__":
    main()
