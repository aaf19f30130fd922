"""Testinfra fixtures: the converged target and the inventory values it was converged with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SANDBOX_VARS = (
    Path(__file__).resolve().parents[3] / "inventory" / "sandbox" / "group_vars" / "all" / "main.yml"
)
SANDBOX_KEY = Path.home() / ".cache" / "bloomberg-sandbox" / "id_ed25519.pub"


@pytest.fixture(scope="session")
def sandbox_vars() -> dict:
    return yaml.safe_load(SANDBOX_VARS.read_text())


@pytest.fixture(scope="session")
def sandbox_public_key() -> str:
    return SANDBOX_KEY.read_text().strip()
