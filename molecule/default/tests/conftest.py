"""Testinfra fixtures: the converged target and the inventory values it was converged with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SANDBOX_VARS = (
    Path(__file__).resolve().parents[3] / "inventory" / "sandbox" / "group_vars" / "all" / "main.yml"
)
SANDBOX_KEY = Path.home() / ".cache" / "bloomberg-sandbox" / "id_ed25519.pub"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "drill: stops or kills a service and waits for its alert and its return (minutes each); what it "
        "proves does not depend on the data, so the restore scenario leaves it to the default one",
    )


@pytest.fixture(scope="session")
def sandbox_vars() -> dict:
    return yaml.safe_load(SANDBOX_VARS.read_text())


@pytest.fixture(scope="session")
def sandbox_public_key() -> str:
    return SANDBOX_KEY.read_text().strip()
