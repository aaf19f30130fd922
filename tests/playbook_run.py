"""ansible-playbook run for real from the project's directory, with its ansible.cfg, output captured."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ansible_playbook(
    *args: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """The run's exit code and output; the caller decides what a failure means."""
    settings = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        ["ansible-playbook", *args],
        cwd=ROOT,
        env={**os.environ, **settings, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
