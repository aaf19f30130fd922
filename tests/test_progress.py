"""scripts/progress.sh: a long step's output goes to its log, the terminal gets a line a minute (here a
second) saying how long it has run and what it is on, and a failure shows the end of the log."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from playbook_run import ROOT


def run_logged(tmp_path: Path, command: str) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "step.log"
    step = shlex.join(["build-thing: compiling", "a few seconds", str(log), "sh", "-c", command])
    script = f"source scripts/progress.sh; run_logged {step}"
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PROGRESS_EVERY_S": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return run, log.read_text()


def test_a_long_step_says_how_long_it_has_run_and_what_it_is_on(tmp_path: Path) -> None:
    run, log = run_logged(
        tmp_path, "echo 'go: downloading example.com/a v1.0.0'; sleep 2.5; echo 'Compiling flux'"
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert (
        lines[0]
        == f"build-thing: compiling: started, usually a few seconds (its output: {tmp_path}/step.log)"
    )
    progress = [line for line in lines if "so far" in line]
    assert progress, lines
    assert progress[0].endswith("last output: go: downloading example.com/a v1.0.0")
    assert lines[-1].startswith("build-thing: compiling: done in ")
    assert run.stdout == ""  # the step's own output went to its log only
    assert log.splitlines() == ["go: downloading example.com/a v1.0.0", "Compiling flux"]


def test_a_failed_step_shows_the_end_of_its_log_and_its_exit_code(tmp_path: Path) -> None:
    run, _ = run_logged(tmp_path, "echo 'error[E0308]: mismatched types' >&2; exit 3")
    assert run.returncode == 3
    assert "build-thing: compiling: failed after" in run.stderr
    assert "(exit 3)" in run.stderr
    assert run.stderr.rstrip().endswith("error[E0308]: mismatched types")
