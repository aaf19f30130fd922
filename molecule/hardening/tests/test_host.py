"""The hardened target seen from inside: effective sshd settings, firewall, fail2ban, kernel, accounts."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import SCENARIO

ADMIN_GROUP = "bloomberg-admins"
# What the role picks from Debian 12's OpenSSH 9.2 (ML-KEM is not in it), in its order of preference.
EXPECTED_ALGORITHMS = {
    "kexalgorithms": "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
    "diffie-hellman-group-exchange-sha256",
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,"
    "aes128-gcm@openssh.com,aes128-ctr",
    "macs": "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com",
}


@pytest.fixture(scope="module")
def sshd_effective(host, admin_name) -> dict[str, str]:
    """sshd -T for a connection from an admin: the settings sshd really applies, all files merged."""
    output = host.check_output(f"sshd -T -C user={admin_name},host=prober,addr=192.0.2.1")
    settings: dict[str, str] = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, value)
    return settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("permitrootlogin", "no"),
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("pubkeyauthentication", "yes"),
        ("authenticationmethods", "publickey"),
        ("permitemptypasswords", "no"),
        ("allowgroups", ADMIN_GROUP),
        ("maxauthtries", "3"),
        ("logingracetime", "30"),
        ("x11forwarding", "no"),
        ("allowtcpforwarding", "no"),
        ("allowagentforwarding", "no"),
        ("permittunnel", "no"),
        ("loglevel", "VERBOSE"),
        ("banner", "/etc/issue.net"),
    ],
)
def test_sshd_effective_setting(sshd_effective, key, value):
    assert sshd_effective.get(key) == value


def test_sshd_listens_on_the_configured_port_only(sshd_effective, ssh_port, host):
    assert sshd_effective["port"] == str(ssh_port)
    assert host.socket(f"tcp://0.0.0.0:{ssh_port}").is_listening
    assert not host.socket("tcp://0.0.0.0:22").is_listening


@pytest.mark.parametrize("key", sorted(EXPECTED_ALGORITHMS))
def test_sshd_offers_only_modern_algorithms(sshd_effective, key):
    assert sshd_effective[key] == EXPECTED_ALGORITHMS[key]


def test_sshd_host_keys_are_ed25519_and_4096_bit_rsa(sshd_effective, host):
    assert "ecdsa" not in sshd_effective["hostkeyalgorithms"]
    assert host.check_output("ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub").startswith("4096 ")


def test_no_small_diffie_hellman_moduli_remain(host):
    sizes = [
        int(line.split()[4])
        for line in host.file("/etc/ssh/moduli").content_string.splitlines()
        if line and not line.startswith("#")
    ]
    assert sizes
    assert min(sizes) >= 3071


def test_cloud_init_cannot_turn_passwords_back_on(host):
    assert (
        host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").content_string.strip()
        == "PasswordAuthentication no"
    )
    assert "ssh_pwauth: false" in host.file("/etc/cloud/cloud.cfg.d/99-bloomberg-ssh.cfg").content_string


def test_ufw_denies_by_default_and_allows_only_ssh_and_the_edge(host, ssh_port):
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Default: deny (incoming), allow (outgoing), deny (routed)" in status
    table = status.split("\n--")[1].splitlines()[1:]
    rules = sorted(re.sub(r"\s+", " ", line).strip() for line in table if line.strip())
    assert rules == sorted(
        [
            f"{ssh_port}/tcp LIMIT IN Anywhere # ssh",
            "80/tcp ALLOW IN Anywhere # edge",
            "443/tcp ALLOW IN Anywhere # edge",
            f"{ssh_port}/tcp (v6) LIMIT IN Anywhere (v6) # ssh",
            "80/tcp (v6) ALLOW IN Anywhere (v6) # edge",
            "443/tcp (v6) ALLOW IN Anywhere (v6) # edge",
        ]
    )


def test_forwarding_stays_on_for_docker(host):
    settings = host.file("/etc/sysctl.d/90-bloomberg-hardening.conf").content_string
    assert "net.ipv4.ip_forward = 1" in settings
    assert "net.ipv4.conf.all.accept_redirects = 0" in settings
    assert "kernel.kptr_restrict = 2" in settings


def test_the_platform_applies_exactly_the_roles_network_sysctls(host):
    """The scenario's container gets at start what a VM's boot applies from the role's file."""
    platform = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["platforms"][0]["sysctls"]
    role_file = dict(
        line.replace(" ", "").split("=", 1)
        for line in host.file("/etc/sysctl.d/90-bloomberg-hardening.conf").content_string.splitlines()
        if line and not line.startswith("#")
    )
    assert platform
    for key, value in platform.items():
        assert role_file.get(key) == value, key
        assert host.file("/proc/sys/" + key.replace(".", "/")).content_string.strip() == value, key


def test_fail2ban_watches_sshd_through_the_journal_and_runs_recidive(host, ssh_port):
    jails = host.check_output("fail2ban-client status")
    assert re.search(r"Jail list:\s+recidive, sshd$", jails, re.M), jails
    sshd = host.check_output("fail2ban-client status sshd")
    assert "Journal matches:" in sshd
    assert "_COMM=sshd" in sshd
    assert host.check_output("fail2ban-client get sshd maxretry") == "5"
    # The ban covers the port sshd really uses, not the default 22.
    assert host.check_output("fail2ban-client get sshd action iptables-multiport port") == str(ssh_port)


def test_the_hardening_knows_no_nginx_jail(host):
    # Layers point one way: the edge role drops nginx's jails into jail.d/ when it installs nginx.
    assert "nginx" not in host.file("/etc/fail2ban/jail.local").content_string
    assert not host.file("/etc/fail2ban/jail.d/bloomberg-nginx.local").exists


def test_core_dumps_are_off(host):
    assert "* hard core 0" in host.file("/etc/security/limits.d/90-bloomberg-coredump.conf").content_string
    assert "Storage=none" in host.file("/etc/systemd/coredump.conf.d/90-bloomberg.conf").content_string


def test_passwords_age_and_must_be_strong(host):
    assert re.search(r"^PASS_MAX_DAYS\s+365$", host.file("/etc/login.defs").content_string, re.M)
    aging = host.check_output("chage -l provider")
    assert re.search(r"Maximum number of days between password change\s*:\s*365", aging)
    assert re.search(r"Minimum number of days between password change\s*:\s*1", aging)
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


def test_banners_warn_and_do_not_name_the_system(host):
    for path in ("/etc/issue", "/etc/issue.net"):
        banner = host.file(path).content_string
        assert "Authorised access only" in banner
        assert "Debian" not in banner
        assert "\\" not in banner


def test_accounting_runs_and_auditd_is_left_to_virtual_machines(host):
    assert host.package("acct").is_installed
    assert host.service("sysstat").is_enabled
    # A container has no kernel audit socket: auditd is for VMs (the role installs it there).
    assert not host.package("auditd").is_installed
