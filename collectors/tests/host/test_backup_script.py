"""The backup role's host script (roles/backup/files/bloomberg-backup.py) against real servers: a real
influxd for InfluxDB's backup and restore API, Debian's restic with a repository on disk.

It lives beside the package's tests because it uses the same real influxd. The whole path — pg_dump in
the postgres container, the S3 repository, the restore playbook — runs in Molecule (molecule/default).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from marketdash_testing.servers import InfluxDB2, ServerUnavailableError, free_port

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "backup" / "files" / "bloomberg-backup.py"
RESTIC = Path("/usr/bin/restic")
# Three days of minutes up to today's midnight: within a 7-day retention, over several 1-day shard groups.
START = (int(time.time()) // 86400 - 3) * 86400
MINUTES = 3 * 24 * 60


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bloomberg_backup", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bloomberg_backup"] = module
    spec.loader.exec_module(module)
    return module


backup = load_script()


@pytest.fixture
def influxd_pair(tmp_path: Path):
    """Two fresh servers: the one backed up, and a new host set up with another operator token."""
    servers = [InfluxDB2(tmp_path / name, free_port()) for name in ("old", "new")]
    try:
        for server in servers:
            server.root.mkdir()
            server.start()
    except ServerUnavailableError as missing:
        pytest.fail(str(missing))
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def make_bucket(server: InfluxDB2, name: str, retention_s: int) -> None:
    response = httpx.post(
        f"{server.url}/api/v2/buckets",
        headers={"Authorization": f"Token {server.token}"},
        json={
            "orgID": server.org_id,
            "name": name,
            "retentionRules": [{"type": "expire", "everySeconds": retention_s}],
        },
    )
    response.raise_for_status()


def write(server: InfluxDB2, bucket: str, lines: list[str]) -> None:
    response = httpx.post(
        f"{server.url}/api/v2/write",
        params={"org": InfluxDB2.ORG, "bucket": bucket, "precision": "s"},
        headers={"Authorization": f"Token {server.token}"},
        content="\n".join(lines),
        timeout=60,
    )
    response.raise_for_status()


def every_value(server: InfluxDB2, token: str, bucket: str) -> str:
    response = httpx.post(
        f"{server.url}/api/v2/query",
        params={"org": InfluxDB2.ORG},
        headers={"Authorization": f"Token {token}", "Accept": "application/csv"},
        json={"query": f'from(bucket: "{bucket}") |> {backup.ALL_TIME}', "type": "flux"},
        timeout=60,
    )
    response.raise_for_status()
    return response.text


def test_a_full_restore_onto_a_new_influxd_brings_back_every_value_and_the_old_tokens(influxd_pair) -> None:
    old, new = influxd_pair
    make_bucket(old, "markets", 7 * 86400)
    make_bucket(old, "markets_5m", 0)
    # Candles of two symbols (floats) and a string field, over three days: several shard groups.
    candles = [
        f'candles,symbol={symbol},interval=1m open={i * 1.5},close={i * 1.25},volume={i}i,source="binance" '
        f"{START + 60 * i}"
        for symbol in ("BTC/USDT", "ETH/USDT")
        for i in range(MINUTES)
    ]
    write(old, "markets", candles)
    write(old, "markets_5m", candles[::5])
    before = backup.Influx(old.url, old.token).describe()["buckets"]
    assert before["markets"]["values"] == len(candles) * 4
    assert before["markets"]["first"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START))

    target = old.root / "backup"
    shards = backup.Influx(old.url, old.token).backup(target)["shards"]
    assert len(shards) >= 4, "three 1-day shard groups of markets and one of markets_5m"

    restoring = backup.Influx(new.url, new.token)
    result = restoring.restore(target)
    assert result["operator_token_changed"] is True
    assert restoring.token == old.token, "the backed-up store's operator token is the one that works now"
    assert (
        httpx.get(f"{new.url}/api/v2/buckets", headers={"Authorization": f"Token {new.token}"}).status_code
        == 401
    )

    assert backup.Influx(new.url, old.token).describe()["buckets"] == before
    for bucket in ("markets", "markets_5m"):
        assert every_value(new, old.token, bucket) == every_value(old, old.token, bucket)


def test_a_restore_lacking_values_is_reported_not_passed() -> None:
    held = {"markets": {"values": 10, "first": "2025-12-01T00:00:00Z", "last": "2025-12-02T00:00:00Z"}}
    assert backup.differences("influxdb", held, held) == []
    more = {"markets": {"values": 12, "first": "2025-12-01T00:00:00Z", "last": "2025-12-02T00:01:00Z"}}
    assert backup.differences("influxdb", held, more) == [], "the feeders wrote while the shards were read"
    fewer = {"markets": {"values": 9, "first": "2025-12-01T00:00:00Z", "last": "2025-12-02T00:00:00Z"}}
    assert backup.differences("influxdb", held, fewer) != []
    later = {"markets": {"values": 10, "first": "2025-12-01T00:01:00Z", "last": "2025-12-02T00:00:00Z"}}
    assert backup.differences("influxdb", held, later) != []
    assert backup.differences("influxdb", held, {}) == ["bucket markets missing"]
    assert backup.differences("postgres", {"public.users": 2}, {"public.users": 1}) == [
        "public.users: 2 rows backed up, 1 restored"
    ]


def config_file(tmp_path: Path, repositories: list[dict]) -> Path:
    (tmp_path / "textfile").mkdir(exist_ok=True)
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "project": "bloomberg",
                "network": "bloomberg-net",
                "home": str(tmp_path / "home"),
                "state_dir": str(tmp_path / "state"),
                "textfile_dir": str(tmp_path / "textfile"),
                "postgres": {
                    "service": "postgres",
                    "os_user": "postgres",
                    "user": "postgres",
                    "database": "db",
                },
                "influxdb": {"service": "influxdb", "token_file": str(tmp_path / "token")},
                "grafana": {"service": "grafana", "volume": "grafana-data", "uid": 472, "gid": 0},
                "repositories": repositories,
                "retention": {"config": {"hourly": 2}, "full": {"daily": 2}},
                "max_age_seconds": {"config": 10800, "full": 108000},
                "exclude": [],
            }
        )
    )
    return path


@pytest.fixture
def restic() -> Path:
    if not RESTIC.exists():
        pytest.fail("restic is missing: apt-get install restic (scripts/install-system-packages.sh)")
    return RESTIC


def disk_repository(tmp_path: Path, password_file: str) -> dict:
    """A restic repository on disk under tmp_path, opened with the password in that file."""
    (tmp_path / password_file).write_text(f"{password_file}-password-of-sixteen+")
    return {
        "name": "disk",
        "url": str(tmp_path / "repo"),
        "password_file": str(tmp_path / password_file),
        "env_file": None,
    }


def test_a_repository_is_created_once_and_a_wrong_password_is_an_error_that_says_so(restic, tmp_path) -> None:
    repository = disk_repository(tmp_path, "right")
    config = backup.Config.load(config_file(tmp_path, [repository]))
    assert backup.ensure_repository(config, config.repository("disk")) is True
    assert backup.ensure_repository(config, config.repository("disk")) is False

    wrong = backup.Config.load(config_file(tmp_path, [disk_repository(tmp_path, "wrong")]))
    with pytest.raises(backup.BackupError, match="wrong password"):
        backup.ensure_repository(wrong, wrong.repository("disk"))
    assert len(list((tmp_path / "repo" / "keys").iterdir())) == 1, "no second repository key was made"


def test_each_run_rewrites_the_metrics_and_a_failure_keeps_the_last_success(tmp_path) -> None:
    repositories = [
        {"name": name, "url": f"/srv/{name}", "password_file": "/dev/null", "env_file": None}
        for name in ("offsite", "second")
    ]
    config = backup.Config.load(config_file(tmp_path, repositories))
    started = time.time()
    backup.record(
        config,
        "full",
        config.repository("offsite"),
        started,
        {"data_added": 1024, "total_bytes_processed": 4096},
    )
    good = time.time()
    backup.record(config, "full", config.repository("offsite"), started, None)
    backup.record(config, "full", config.repository("second"), started, None)

    samples = {}
    for line in (tmp_path / "textfile" / "bloomberg-backup-full.prom").read_text().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    offsite = 'kind="full",repository="offsite"'
    assert samples[f"bloomberg_backup_last_run_success{{{offsite}}}"] == 0
    assert started <= samples[f"bloomberg_backup_last_success_timestamp_seconds{{{offsite}}}"] <= good
    assert samples[f"bloomberg_backup_last_added_bytes{{{offsite}}}"] == 1024
    assert samples['bloomberg_backup_last_success_timestamp_seconds{kind="full",repository="second"}'] == 0
    assert samples['bloomberg_backup_max_age_seconds{kind="full"}'] == 108000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw.update(repositories=[]), "no repository"),
        (lambda raw: raw["retention"].pop("full"), "entry for full"),
        (lambda raw: raw.pop("postgres"), "not a valid backup configuration"),
    ],
)
def test_a_bad_configuration_is_refused_with_what_is_wrong(tmp_path, change, message) -> None:
    path = config_file(tmp_path, [{"name": "a", "url": "/srv/a", "password_file": "/x", "env_file": None}])
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(backup.BackupError, match=message):
        backup.Config.load(path)
    shutil.rmtree(tmp_path / "textfile")


def test_only_a_repository_without_snapshots_gets_a_deploys_first_backups(restic, tmp_path) -> None:
    """A host deployed over an existing history (a lost host being rebuilt) must not make its empty
    stores the newest snapshot: its deploy starts no backup of a kind the repository already holds."""
    config = backup.Config.load(config_file(tmp_path, [disk_repository(tmp_path, "password")]))
    backup.ensure_repository(config, config.repository("disk"))
    assert backup.first_backups_due(config) == ["config", "full"]
    (tmp_path / "data").mkdir()
    backup.restic(config, config.repository("disk"), "backup", "--tag", "config", str(tmp_path / "data"))
    backup.restic(config, config.repository("disk"), "backup", "--tag", "by-hand", str(tmp_path / "data"))
    assert backup.first_backups_due(config) == ["full"]
    assert [s["tags"] for s in backup.snapshots(config, config.repository("disk"))] == [["config"]], (
        "a snapshot someone took by hand is never restored as the newest"
    )


def test_times_from_restic_and_flux_compare_as_times_not_text() -> None:
    assert backup.instant("2026-12-03T02:15:00+01:00") > backup.instant("2026-12-03T02:30:00+02:00")
    assert backup.instant("2026-12-03T00:00:00.5Z") > backup.instant("2026-12-03T00:00:00Z")
    assert backup.instant("2026-12-03T13:41:55.929639107Z").microsecond == 929639
    with pytest.raises(backup.BackupError, match="RFC 3339"):
        backup.instant("yesterday")
