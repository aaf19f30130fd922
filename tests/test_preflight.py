"""The base role's preflight, run for real by ansible-playbook against this machine (read-only tasks).

Each case feeds an inventory that a person could plausibly write and checks that the run stops, or warns,
with a message that says what to set.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from playbook_run import ROOT, ansible_playbook

GOOD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKexampleexampleexampleexampleexampleexample alice@laptop"


def run_preflight(
    tmp_path: Path, group_vars: dict, *, playbook: str = "playbooks/base.yml", base_vars: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`playbook --tags preflight` against this machine, with `group_vars` over the files of `base_vars`."""
    inventory = tmp_path / "inventory"
    group_dir = inventory / "group_vars" / "all"
    group_dir.mkdir(parents=True)
    for source in sorted(base_vars.glob("*.yml")) if base_vars else ():
        (group_dir / source.name).write_text(source.read_text())
    (group_dir / "zz-test.yml").write_text(yaml.safe_dump(group_vars))
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "bloomberg": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        }
                    }
                }
            }
        )
    )
    return ansible_playbook(
        "-i",
        str(inventory),
        playbook,
        "--tags=preflight",
        "-e",
        "ansible_become=false",
        env={"ANSIBLE_CACHE_PLUGIN": "memory"},
    )


def test_a_complete_inventory_passes(tmp_path):
    result = run_preflight(tmp_path, {"base_admin_users": [{"name": "alice", "ssh_keys": [GOOD_KEY]}]})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def test_missing_admin_users_names_the_variable(tmp_path):
    result = run_preflight(tmp_path, {})
    assert result.returncode != 0
    assert "missing required arguments: base_admin_users" in result.stdout


def test_no_present_admin_is_refused_before_anything_changes(tmp_path):
    result = run_preflight(tmp_path, {"base_admin_users": [{"name": "bob", "state": "absent"}]})
    assert result.returncode != 0
    assert "base_admin_users lists no present administrator" in result.stdout
    assert "changed=0" in result.stdout


def test_each_malformed_key_names_its_admin(tmp_path):
    malformed = {
        "alice": [],
        "bob": ["/home/bob/.ssh/id_ed25519.pub"],
        "carol": ["-----BEGIN OPENSSH PRIVATE KEY-----"],
        "dave": ["ssh-ed25519"],
        "frank": ["ssh-ed25519 not-a-key frank@laptop"],
    }
    admins = [{"name": name, "ssh_keys": keys} for name, keys in malformed.items()]
    result = run_preflight(
        tmp_path, {"base_admin_users": [*admins, {"name": "erin", "ssh_keys": [GOOD_KEY]}]}
    )
    assert result.returncode != 0
    for name in malformed:
        assert f"base_admin_users entry '{name}' needs ssh_keys" in result.stdout
    assert "entry 'erin'" not in result.stdout


def test_an_unsupported_system_is_named_with_the_supported_ones(tmp_path):
    result = run_preflight(
        tmp_path,
        {
            "base_admin_users": [{"name": "alice", "ssh_keys": [GOOD_KEY]}],
            "base_supported_distributions": {"Ubuntu": ["24.04"]},
        },
    )
    assert result.returncode != 0
    assert "is not supported. Use one of: Ubuntu 24.04." in result.stdout


def test_a_small_host_gets_a_warning_and_goes_on(tmp_path):
    result = run_preflight(
        tmp_path,
        {
            "base_admin_users": [{"name": "alice", "ssh_keys": [GOOD_KEY]}],
            "base_min_vcpus": 1024,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING: localhost has" in result.stdout
    assert "the documented minimum is 1024 vCPU" in result.stdout


def run_stack_preflight(tmp_path: Path, overrides: dict) -> subprocess.CompletedProcess[str]:
    """The stack roles' preflight with the sandbox's settings (its throwaway secrets) and `overrides`."""
    sandbox = ROOT / "inventory" / "sandbox" / "group_vars" / "all"
    return run_preflight(tmp_path, overrides, playbook="playbooks/stack.yml", base_vars=sandbox)


def test_oauth_without_an_allow_list_is_refused(tmp_path):
    github = {
        "grafana_oauth_github_client_id": "Iv1.0123456789abcdef",
        "grafana_oauth_github_client_secret": "s" * 40,
    }
    refused = run_stack_preflight(tmp_path / "open", github)
    assert refused.returncode != 0
    assert "would let any account in" in refused.stdout
    assert "grafana_oauth_github_allowed_organizations" in refused.stdout
    allowed = run_stack_preflight(
        tmp_path / "closed", {**github, "grafana_oauth_github_allowed_organizations": ["my-team"]}
    )
    assert allowed.returncode == 0, allowed.stdout[-2000:]


def test_an_exchange_the_feeder_cannot_stream_is_refused_by_name(tmp_path):
    refused = run_stack_preflight(tmp_path, {"collectors_market_exchanges": ["binance", "binanse"]})
    assert refused.returncode != 0
    assert "cannot stream: binanse (a typo?" in refused.stdout


def test_the_roles_lists_of_exchanges_are_the_feeders():
    # The role cannot import ccxt; the feeder can: the copies must follow the pinned ccxt.
    from marketdash.market.exchanges import PERPETUALS, streamable_exchanges

    role_vars = yaml.safe_load((ROOT / "roles" / "collectors" / "vars" / "main.yml").read_text())
    assert role_vars["collectors_market_streamable_exchanges"] == streamable_exchanges()
    assert role_vars["collectors_market_funding_capable_exchanges"] == sorted(PERPETUALS)


def test_a_funding_exchange_without_perpetuals_is_refused_by_name(tmp_path):
    refused = run_stack_preflight(tmp_path, {"collectors_market_funding_exchanges": ["binance", "kraken"]})
    assert refused.returncode != 0
    assert (
        "collectors_market_funding_exchanges is a list among binance, bybit; got ['binance', 'kraken']"
        in refused.stdout
    )
