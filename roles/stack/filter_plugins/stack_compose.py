"""The stack's container defaults, applied to a service role's Compose fragment.

Rule: every service gets the defaults (read-only root, every capability dropped, no-new-privileges,
/tmp as tmpfs, restart policy, log rotation) and joins the stack's network; a service sets only what
differs. `security_opt` and `tmpfs` are merged, so a role adds to them but cannot drop a default;
`cap_drop` cannot be changed (a service adds what it needs with `cap_add`). Every service must declare
a health check and its memory and CPU limits: a fragment without them is refused with the service's
name, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

MERGED_LISTS = ("security_opt", "tmpfs")
REQUIRED = ("healthcheck", "mem_limit", "cpus")


def _plain(value: Any) -> Any:
    """A plain copy of YAML-like data. Not copy.deepcopy: on Ansible's lazy containers it re-templates
    every value and made this filter take seconds per fragment."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(item) for item in value]
    return value


def _merge_service(
    name: str, service: dict[str, Any], defaults: dict[str, Any], network: str
) -> dict[str, Any]:
    if "cap_drop" in service:
        raise AnsibleFilterError(
            f"service {name}: cap_drop is the stack's (ALL); add what the service needs with cap_add"
        )
    missing = [key for key in REQUIRED if key not in service]
    if missing:
        raise AnsibleFilterError(
            f"service {name}: set {', '.join(missing)} (every service of the stack has them)"
        )
    if service["healthcheck"].get("disable") or not service["healthcheck"].get("test"):
        raise AnsibleFilterError(f"service {name}: the health check needs a test; it cannot be disabled")
    merged = _plain(defaults)
    merged["networks"] = [network]
    for key, value in service.items():
        if key in MERGED_LISTS:
            values = [value] if isinstance(value, str) else value
            merged[key] = list(dict.fromkeys([*merged.get(key, []), *values]))
        else:
            merged[key] = _plain(value)
    return merged


def stack_fragment(fragment: dict[str, Any], defaults: dict[str, Any], network: str) -> dict[str, Any]:
    if (
        not isinstance(fragment, dict)
        or not isinstance(fragment.get("services"), dict)
        or not fragment["services"]
    ):
        raise AnsibleFilterError("a Compose fragment needs a non-empty `services` mapping")
    result = {key: _plain(value) for key, value in fragment.items() if key != "services"}
    result["services"] = {
        name: _merge_service(name, service or {}, defaults, network)
        for name, service in fragment["services"].items()
    }
    networks = result.get("networks") or {}
    networks[network] = {"external": True}
    result["networks"] = networks
    return result


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"stack_fragment": stack_fragment}
