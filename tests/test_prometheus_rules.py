"""The prometheus role's alert rules, unit-tested by promtool against the role's own test files.

Uses Debian's promtool (Prometheus 2.42, installed by scripts/install-system-packages.sh); the role also
has the pinned 3.x promtool check the rules on every host. The rules hold no variable, so what is
tested here is byte for byte what every host runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

HOST_METRICS = (
    Path(__file__).resolve().parents[1] / "roles" / "prometheus" / "files" / "bloomberg-host-metrics.py"
)
ROLE_FILES = Path(__file__).resolve().parents[1] / "roles" / "prometheus" / "files"
RULE_FILES = sorted((ROLE_FILES / "rules").glob("*.yml"))
TEST_FILES = sorted((ROLE_FILES / "rules-tests").glob("*.yml"))
PROMTOOL = Path("/usr/bin/promtool")


@pytest.fixture(scope="module")
def promtool() -> Path:
    if not PROMTOOL.exists():
        pytest.fail("promtool is missing: apt-get install prometheus (scripts/install-system-packages.sh)")
    return PROMTOOL


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    argv_text = [str(arg) for arg in argv]
    return subprocess.run(argv_text, capture_output=True, text=True, timeout=120, check=False)


def alert_names(rule_file: Path) -> set[str]:
    groups = yaml.safe_load(rule_file.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def alerts_under_test(test_file: Path) -> set[str]:
    tests = yaml.safe_load(test_file.read_text())["tests"]
    return {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}


def test_rule_files_and_test_files_exist() -> None:
    assert RULE_FILES, "no rule file in roles/prometheus/files/rules"
    assert TEST_FILES, "no promtool test file in roles/prometheus/files/rules-tests"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda path: path.name)
def test_rules_load(promtool: Path, rule_file: Path) -> None:
    result = run(promtool, "check", "rules", rule_file)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(promtool: Path, test_file: Path) -> None:
    result = run(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = set().union(*(alert_names(path) for path in RULE_FILES))
    tested = set().union(*(alerts_under_test(path) for path in TEST_FILES))
    assert alerts - tested == set(), "alerts without a promtool test"
    assert tested - alerts == set(), "tests of alerts that no rule defines"


def test_every_rule_file_is_tested() -> None:
    tested_files = {
        (test_file.parent / rule_file).resolve()
        for test_file in TEST_FILES
        for rule_file in yaml.safe_load(test_file.read_text())["rule_files"]
    }
    assert {path.resolve() for path in RULE_FILES} <= tested_files


def test_r56_alerts_exist() -> None:
    """R5.6: collector crash, InfluxDB or PostgreSQL down, certificate expiry, dead man's switch."""
    alerts = set().union(*(alert_names(path) for path in RULE_FILES))
    required = {"CollectorDown", "InfluxDBDown", "PostgreSQLDown", "TLSCertificateExpiringSoon", "Watchdog"}
    assert required <= alerts


def samples(textfile: Path) -> dict[str, float]:
    lines = [line for line in textfile.read_text().splitlines() if line and not line.startswith("#")]
    return {name: float(value) for name, value in (line.rsplit(" ", 1) for line in lines)}


def test_host_metrics_textfile_feeds_the_certificate_rules(promtool: Path, tmp_path: Path) -> None:
    """The host-metrics script, run as the timer runs it, writes what the certificate rules read."""
    certificate = tmp_path / "fullchain.pem"
    made = run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", tmp_path / "privkey.pem", "-out", certificate, "-days", "10",
        "-subj", "/CN=bloomberg.localhost",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    before = time.time()

    written = run(sys.executable, HOST_METRICS, "--textfile-dir", textfile_dir, "--certificate", certificate)

    assert written.returncode == 0, written.stderr
    textfile = textfile_dir / "bloomberg.prom"
    checked = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=textfile.read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    values = samples(textfile)
    path_label = f'{{path="{certificate}"}}'
    assert values[f"bloomberg_edge_certificate_readable{path_label}"] == 1
    days_left = (
        values[f"bloomberg_edge_certificate_not_after_timestamp_seconds{path_label}"] - before
    ) / 86400
    assert 9.9 < days_left <= 10.0
    assert before <= values["bloomberg_host_metrics_timestamp_seconds"] <= time.time()
    assert list(textfile_dir.iterdir()) == [textfile], "a temporary file was left behind"


def test_host_metrics_textfile_reports_an_unreadable_certificate(tmp_path: Path) -> None:
    not_a_certificate = tmp_path / "fullchain.pem"
    not_a_certificate.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")

    written = run(
        sys.executable, HOST_METRICS, "--textfile-dir", tmp_path, "--certificate", not_a_certificate
    )

    assert written.returncode == 0, written.stderr
    values = samples(tmp_path / "bloomberg.prom")
    assert values[f'bloomberg_edge_certificate_readable{{path="{not_a_certificate}"}}'] == 0
    assert not any(name.startswith("bloomberg_edge_certificate_not_after") for name in values)
