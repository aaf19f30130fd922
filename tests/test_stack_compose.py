"""The stack role's container defaults, as its filter applies them to a service role's fragment."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = Path(__file__).resolve().parents[1] / "roles" / "stack" / "filter_plugins" / "stack_compose.py"
spec = importlib.util.spec_from_file_location("stack_compose", PLUGIN)
stack_compose = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stack_compose)

DEFAULTS = {
    "restart": "unless-stopped",
    "read_only": True,
    "tmpfs": ["/tmp"],
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
}
HEALTHY = {"healthcheck": {"test": ["CMD", "true"]}, "mem_limit": "64m", "cpus": 0.5}


def fragment(**service) -> dict:
    return {"services": {"web": {"image": "web:1", **HEALTHY, **service}}, "volumes": {"data": None}}


def test_every_service_gets_the_defaults_and_the_stack_network():
    web = stack_compose.stack_fragment(fragment(), DEFAULTS, "stack-net")["services"]["web"]
    assert web["read_only"] is True
    assert web["cap_drop"] == ["ALL"]
    assert web["security_opt"] == ["no-new-privileges:true"]
    assert web["restart"] == "unless-stopped"
    assert web["networks"] == ["stack-net"]
    assert web["image"] == "web:1"


def test_the_network_is_declared_external_and_other_top_level_keys_are_kept():
    result = stack_compose.stack_fragment(fragment(), DEFAULTS, "stack-net")
    assert result["networks"] == {"stack-net": {"external": True}}
    assert result["volumes"] == {"data": None}


def test_a_service_adds_to_security_opt_and_tmpfs_but_cannot_drop_a_default():
    web = stack_compose.stack_fragment(
        fragment(security_opt=["apparmor=docker-default"], tmpfs=["/run/web"]), DEFAULTS, "n"
    )["services"]["web"]
    assert web["security_opt"] == ["no-new-privileges:true", "apparmor=docker-default"]
    assert web["tmpfs"] == ["/tmp", "/run/web"]


def test_a_service_overrides_a_plain_default():
    web = stack_compose.stack_fragment(fragment(read_only=False), DEFAULTS, "n")["services"]["web"]
    assert web["read_only"] is False


def test_the_defaults_are_not_shared_between_services():
    two = {"services": {"a": dict(HEALTHY), "b": {**HEALTHY, "tmpfs": ["/run/b"]}}}
    result = stack_compose.stack_fragment(two, DEFAULTS, "n")["services"]
    assert result["a"]["tmpfs"] == ["/tmp"]
    assert DEFAULTS["tmpfs"] == ["/tmp"]


def test_cap_drop_is_the_stacks():
    with pytest.raises(AnsibleFilterError, match="service web: cap_drop is the stack's"):
        stack_compose.stack_fragment(fragment(cap_drop=["NET_RAW"]), DEFAULTS, "n")


@pytest.mark.parametrize("missing", ["healthcheck", "mem_limit", "cpus"])
def test_a_service_without_health_check_or_limits_is_refused(missing):
    service = {key: value for key, value in HEALTHY.items() if key != missing}
    with pytest.raises(AnsibleFilterError, match=f"service web: set {missing}"):
        stack_compose.stack_fragment({"services": {"web": service}}, DEFAULTS, "n")


def test_a_disabled_health_check_is_refused():
    with pytest.raises(AnsibleFilterError, match="cannot be disabled"):
        stack_compose.stack_fragment(fragment(healthcheck={"disable": True}), DEFAULTS, "n")


def test_a_fragment_without_services_is_refused():
    with pytest.raises(AnsibleFilterError, match="non-empty `services`"):
        stack_compose.stack_fragment({"volumes": {}}, DEFAULTS, "n")


def test_a_single_tmpfs_path_is_added_whole():
    web = stack_compose.stack_fragment(fragment(tmpfs="/run/web"), DEFAULTS, "n")["services"]["web"]
    assert web["tmpfs"] == ["/tmp", "/run/web"]
