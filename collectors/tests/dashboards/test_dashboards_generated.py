"""The committed JSON is exactly what the generator writes, and the command that regenerates it works."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from dashboard_fixtures import COMMITTED, REPO

from marketdash_dashboards.render import rendered, stale


def test_committed_json_is_the_generators_output():
    wanted = rendered()
    committed = {path.name: path.read_text(encoding="utf-8") for path in COMMITTED.glob("*.json")}
    assert sorted(committed) == sorted(wanted), "run: python -m marketdash_dashboards (from the repo root)"
    for filename, text in wanted.items():
        assert committed[filename] == text, f"{filename} is stale: run python -m marketdash_dashboards"


def test_every_dashboard_in_every_look():
    names = set(rendered())
    for board in ("main", "deep-dive", "portfolio", "infra"):
        for look in ("classic", "light", "trading"):
            assert f"{board}-{look}.json" in names


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketdash_dashboards", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_mode_catches_an_edited_a_missing_and_an_unknown_file(tmp_path: Path):
    out = tmp_path / "dashboards"
    shutil.copytree(COMMITTED, out)
    assert _run("--check", "--out", str(out), cwd=tmp_path).returncode == 0

    edited = out / "main-classic.json"
    model = json.loads(edited.read_text())
    model["refresh"] = "1m"
    edited.write_text(json.dumps(model))
    (out / "infra-light.json").unlink()
    (out / "hand-made.json").write_text("{}")
    assert stale(out) == ["hand-made.json", "infra-light.json", "main-classic.json"]
    result = _run("--check", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 1
    assert "main-classic.json" in result.stderr

    # Regenerating repairs all three and leaves nothing stale.
    result = _run("--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stale(out) == []
    assert not (out / "hand-made.json").exists()


def test_default_output_is_the_repositorys_directory_and_a_wrong_cwd_is_refused(tmp_path: Path):
    assert _run("--check", cwd=REPO).returncode == 0
    result = _run(cwd=tmp_path)
    assert result.returncode == 2
    assert "not a directory" in result.stderr
