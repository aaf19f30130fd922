"""The backup role on a converged target: the timers, root-only secrets, the snapshots in the S3 stand-in's
bucket, and a stale backup's alert. In the default scenario the backups are the deploy's first ones; in the
restore scenario this runs on the new host that replaced a lost one, deployed and restored (its side effect
compares every value itself)."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

from test_prometheus import STARTED, active_alerts, wait_for

PASSWORD = Path.home() / ".cache" / "bloomberg-sandbox" / "secrets" / "backup_password"
TEXTFILE_DIR = "/var/lib/node-exporter/textfile"


def test_both_timers_are_enabled_and_scheduled(host):
    for kind in ("config", "full"):
        timer = host.service(f"bloomberg-backup@{kind}.timer")
        assert timer.is_enabled
        assert timer.is_running
        next_run = host.check_output(
            f"systemctl show -P NextElapseUSecRealtime bloomberg-backup@{kind}.timer"
        )
        assert next_run.strip(), f"the {kind} timer has no next run"


def test_the_configuration_and_the_repository_secrets_are_roots_alone(host):
    config = host.file("/etc/bloomberg-backup/config.json")
    assert (config.user, config.mode) == ("root", 0o600)
    for name in ("backup-offsite-password", "backup-offsite-environment"):
        secret = host.file(f"/opt/bloomberg/secrets/{name}")
        assert (secret.user, secret.mode) == ("root", 0o400)
    # The configuration names the password's file; the password itself is in that file only.
    password = PASSWORD.read_text().strip()
    assert password not in host.run("cat /etc/bloomberg-backup/config.json").stdout
    assert host.run("cat /opt/bloomberg/secrets/backup-offsite-password").stdout.strip() == password


def test_both_kinds_of_snapshot_are_in_the_stand_ins_bucket(host):
    snapshots = json.loads(host.check_output("bloomberg-backup snapshots"))
    assert {tag for snapshot in snapshots for tag in snapshot["tags"]} >= {"config", "full"}
    # Listed by the S3 server itself, not by restic: one object per snapshot under the repository's path.
    config = json.loads(host.check_output("cat /etc/bloomberg-backup/config.json"))
    url = config["repositories"][0]["url"]
    endpoint, bucket, path = re.fullmatch(r"s3:(http://[^/]+)/([^/]+)/(.+)", url).groups()
    listing = host.check_output(f"curl -fsS '{endpoint}/{bucket}?list-type=2&prefix={path}/snapshots/'")
    assert listing.count("<Key>") == len(snapshots)


def test_the_last_runs_are_good_and_raise_nothing(host):
    metrics = host.check_output(f"cat {TEXTFILE_DIR}/bloomberg-backup-full.prom")
    assert 'bloomberg_backup_last_run_success{kind="full",repository="offsite"} 1.0' in metrics
    if "prometheus" in STARTED:
        assert not active_alerts(host, "BackupFailed", repository="offsite")
        assert not active_alerts(host, "BackupTooOld", repository="offsite")


def test_a_backup_older_than_its_allowance_raises_its_alert(host):
    if "prometheus" not in STARTED:
        return
    stale = f"{TEXTFILE_DIR}/bloomberg-backup-stale-test.prom"
    metric = "bloomberg_backup_last_success_timestamp_seconds"
    # node-exporter drops a series whose HELP and TYPE differ from the same metric's in another file:
    # the script's own, copied.
    header = host.check_output(
        f"grep -E '^# (HELP|TYPE) {metric} ' {TEXTFILE_DIR}/bloomberg-backup-config.prom"
    )
    assert header.count("\n") == 1, header
    # A repository whose last good config backup was a day ago (the config kind allows 3 hours).
    line = f'{metric}{{kind="config",repository="stale-test"}} {int(time.time()) - 86400}'
    content = f"{header}\n{line}\n"
    assert host.run(f"printf '%s' {shlex.quote(content)} > {stale}").rc == 0
    try:
        alert = wait_for(lambda: active_alerts(host, "BackupTooOld", repository="stale-test"), timeout=150)[0]
        assert alert["labels"]["kind"] == "config"
        assert alert["labels"]["severity"] == "critical"
    finally:
        host.run(f"rm -f {stale}")
    wait_for(lambda: not active_alerts(host, "BackupTooOld", repository="stale-test"), timeout=150)
