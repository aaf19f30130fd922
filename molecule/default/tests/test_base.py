"""The base role on a converged target: what an operator relies on after the first run."""

import pytest

ADMIN_GROUP = "bloomberg-admins"


@pytest.mark.parametrize(
    "package", ["sudo", "curl", "unattended-upgrades", "systemd-timesyncd", "python3-apt"]
)
def test_essential_packages_are_installed(host, package):
    assert host.package(package).is_installed


def test_a_successful_index_refresh_is_stamped_so_the_next_runs_skip_theirs(host):
    """The apt module's cache_valid_time reads this stamp; without it Debian refreshes on every run.
    (The converge may not have refreshed after the hook was in place: the check run refreshed first.)"""
    host.run("rm -f /var/lib/apt/periodic/update-success-stamp")
    refresh = host.run("apt-get update -qq")
    assert refresh.rc == 0, refresh.stderr
    assert host.file("/var/lib/apt/periodic/update-success-stamp").is_file


def test_the_sandbox_admin_exists_with_only_its_key(host, sandbox_vars, sandbox_public_key):
    admin = sandbox_vars["base_admin_users"][0]["name"]
    user = host.user(admin)
    assert user.exists
    assert ADMIN_GROUP in user.groups
    assert user.shell == "/bin/bash"
    authorized = host.file(f"/home/{admin}/.ssh/authorized_keys")
    assert authorized.user == admin
    assert authorized.mode & 0o077 == 0
    assert authorized.content_string.strip().splitlines() == [sandbox_public_key]


def test_the_admin_group_gets_passwordless_sudo(host, sandbox_vars):
    admin = sandbox_vars["base_admin_users"][0]["name"]
    sudoers = host.file("/etc/sudoers.d/bloomberg-admins")
    assert sudoers.mode == 0o440
    assert host.run("visudo -cf /etc/sudoers.d/bloomberg-admins").rc == 0
    as_admin = host.run(f"runuser -u {admin} -- sudo -n id -u")
    assert as_admin.rc == 0, as_admin.stderr
    assert as_admin.stdout.strip() == "0"


def test_accounts_outside_the_admin_group_get_no_sudo(host):
    outsider = host.run("runuser -u bloomberg -s /bin/sh -- sudo -n true")
    assert outsider.rc != 0


def test_the_project_account_cannot_log_in(host):
    project = host.user("bloomberg")
    assert project.exists
    assert project.shell == "/usr/sbin/nologin"
    assert project.password in ("!", "*", "!*")
    home = host.file("/opt/bloomberg")
    assert home.is_directory
    assert home.user == "bloomberg"
    assert home.mode == 0o750


def test_time_zone_is_set(host):
    assert host.file("/etc/localtime").linked_to.endswith("/Etc/UTC")


def test_timesyncd_is_enabled(host):
    assert host.service("systemd-timesyncd").is_enabled


def test_unattended_upgrades_run_daily_and_take_security_updates_only(host):
    config = host.run("apt-config dump").stdout
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert 'APT::Periodic::Update-Package-Lists "1";' in config
    patterns = [
        line for line in config.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")
    ]
    assert patterns, "no origins configured"
    assert all("label=Debian-Security" in line for line in patterns), patterns
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config


def test_unattended_upgrade_accepts_its_configuration(host):
    dry_run = host.run("unattended-upgrade --dry-run --debug 2>&1 | head -n 40")
    assert "Allowed origins are:" in dry_run.stdout
    assert "label=Debian-Security" in dry_run.stdout
