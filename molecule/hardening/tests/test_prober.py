"""The hardened target seen from another host on its network: scan, logins, and fail2ban's ban.

The ban test comes last in this file and lifts its ban when done: the prober is the same address for
every test of the session.
"""

from __future__ import annotations

import re
import time

PASSWORD_ACCOUNT = "provider"
PASSWORD = "provider-password"  # set by prepare.yml: a valid password that sshd must refuse anyway


def test_a_full_port_scan_finds_only_ssh_open(prober, target_address, ssh_port):
    scan = prober.run(
        f"nmap -Pn -n -p- --min-rate 5000 -T4 --max-retries 1 -oG - {target_address}", timeout=180
    )
    assert scan.returncode == 0, scan.stderr
    ports = re.search(r"Ports: (.*?)(\t|$)", scan.stdout, re.M)
    assert ports, scan.stdout
    open_ports = sorted(int(entry.split("/")[0]) for entry in ports.group(1).split(", ") if "/open/" in entry)
    assert open_ports == [ssh_port]


def test_the_admin_logs_in_with_their_key(prober, target_address, ssh_port, admin_name):
    login = prober.ssh(
        target_address,
        ssh_port,
        admin_name,
        "id -nG; ulimit -Hc; bash -lc umask",
        "-i",
        "/root/admin_key",
        "-o",
        "BatchMode=yes",
    )
    assert login.returncode == 0, login.stderr
    groups, core_limit, umask = login.stdout.split("\n")[:3]
    assert "bloomberg-admins" in groups.split()
    assert core_limit == "0"
    assert umask == "0027"


def test_a_valid_password_is_refused(prober, target_address, ssh_port):
    # SSH_ASKPASS answers the password prompt, so this would log in if sshd accepted passwords at all.
    prober.run(f"printf '#!/bin/sh\\necho {PASSWORD}\\n' > /root/askpass && chmod 700 /root/askpass")
    attempt = prober.run(
        "SSH_ASKPASS=/root/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none setsid -w ssh -v -p "
        f"{ssh_port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=8 "
        "-o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no "
        f"-o NumberOfPasswordPrompts=1 {PASSWORD_ACCOUNT}@{target_address} true"
    )
    assert attempt.returncode == 255
    assert "Permission denied (publickey)" in attempt.stderr
    assert "Authentications that can continue: publickey\n" in attempt.stderr


def test_root_is_refused_even_with_the_admin_key(prober, target_address, ssh_port):
    attempt = prober.ssh(
        target_address, ssh_port, "root", "true", "-i", "/root/admin_key", "-o", "BatchMode=yes"
    )
    assert attempt.returncode == 255
    assert "Permission denied" in attempt.stderr


def test_repeated_failed_logins_get_the_prober_banned(host, prober, target_address, ssh_port, admin_name):
    try:
        for attempt in range(8):
            prober.ssh(
                target_address, ssh_port, f"intruder{attempt}", "true", "-o", "BatchMode=yes", timeout=20
            )
            if prober.address in _banned(host):
                break
        deadline = time.monotonic() + 20
        while prober.address not in _banned(host) and time.monotonic() < deadline:
            time.sleep(1)
        assert prober.address in _banned(host)
        # Banned means shut out, even with the right key.
        login = prober.ssh(
            target_address,
            ssh_port,
            admin_name,
            "true",
            "-i",
            "/root/admin_key",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        )
        assert login.returncode == 255
    finally:
        host.run(f"fail2ban-client unban {prober.address}")


def _banned(host) -> str:
    return host.check_output("fail2ban-client get sshd banip")
