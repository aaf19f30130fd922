"""Every PromQL expression of the dashboards passes promtool (Debian's prometheus package).

`promtool check rules` parses each expression as a recording rule; `promtool test rules` evaluates the
host and container expressions on synthetic series, so the gauges and UP/DOWN tiles mean what they say.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from dashboard_fixtures import committed_models
from grafana_sim import interpolate, queries

MODELS = committed_models()
LAST_GOOD = "bloomberg_backup_last_success_timestamp_seconds"
LAST_MESSAGE = "marketdash_market_stream_last_message_timestamp_seconds"
LAST_NEWS = "marketdash_news_last_success_timestamp_seconds"
PROMQL = sorted({query for model in MODELS.values() for _, kind, query in queries(model) if kind == "promql"})


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: apt-get install prometheus")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def _rules_file(directory: Path, expressions: list[str]) -> Path:
    rules = [
        {"record": f"marketdash:dashboard_check_{i}", "expr": expr} for i, expr in enumerate(expressions)
    ]
    path = directory / "dashboard-queries.rules.yml"
    # JSON is YAML: no YAML library needed to write it.
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    return path


def test_every_expression_parses(tmp_path: Path):
    assert PROMQL, "no PromQL found in the dashboards"
    result = promtool(
        "check", "rules", str(_rules_file(tmp_path, [interpolate(q, "promql") for q in PROMQL])), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(PROMQL)} rules found" in result.stdout


def test_a_broken_expression_is_refused(tmp_path: Path):
    broken = interpolate(PROMQL[0], "promql").replace("(", "[", 1)
    result = promtool("check", "rules", str(_rules_file(tmp_path, [broken])), cwd=tmp_path)
    assert result.returncode != 0


def _expr(title: str, ref_id: str | None = None) -> str:
    panel = next(p for p in MODELS["infra-classic.json"]["panels"] if p.get("title") == title)
    target = next(t for t in panel["targets"] if ref_id in (None, t["refId"]))
    return interpolate(target["expr"], "promql")


def test_host_and_container_expressions_evaluate_as_shown(tmp_path: Path):
    tests = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    # 11.25 s idle per 15 s on one core: 75 % idle, 25 % busy.
                    {"series": 'node_cpu_seconds_total{cpu="0",mode="idle"}', "values": "0+11.25x40"},
                    {"series": "node_memory_MemAvailable_bytes", "values": "250x40"},
                    {"series": "node_memory_MemTotal_bytes", "values": "1000x40"},
                    # `grafana` reports its last-seen time as it goes; `influxdb` stopped at t=0.
                    {"series": 'container_last_seen{name="grafana"}', "values": "0+15x40"},
                    {"series": 'container_last_seen{name="influxdb"}', "values": "0x40"},
                    # A config backup last good at 0 s (3 h allowed), a full one at 2.5 min (30 h allowed).
                    {"series": f'{LAST_GOOD}{{kind="config",repository="s3"}}', "values": "0x40"},
                    {"series": f'{LAST_GOOD}{{kind="full",repository="s3"}}', "values": "150x40"},
                    {"series": 'bloomberg_backup_max_age_seconds{kind="config"}', "values": "10800x40"},
                    {"series": 'bloomberg_backup_max_age_seconds{kind="full"}', "values": "108000x40"},
                    # Binance's stream answers at every scrape; Kraken's two went quiet at 30 s and 60 s;
                    # a news feed last answered at 120 s.
                    {"series": f'{LAST_MESSAGE}{{source="binance",stream="ticker"}}', "values": "0+15x40"},
                    {"series": f'{LAST_MESSAGE}{{source="kraken",stream="ticker"}}', "values": "30x40"},
                    {"series": f'{LAST_MESSAGE}{{source="kraken",stream="ohlcv"}}', "values": "60x40"},
                    {"series": f'{LAST_NEWS}{{source="coindesk"}}', "values": "120x40"},
                ],
                "promql_expr_test": [
                    {"expr": _expr("CPU"), "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 25}]},
                    {"expr": _expr("RAM"), "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 75}]},
                    {
                        "expr": _expr("Containers"),
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": '{name="grafana"}', "value": 1},
                            {"labels": '{name="influxdb"}', "value": 0},
                        ],
                    },
                    # At 5 min: 300 s of 10,800 and 150 s of 108,000.
                    {
                        "expr": _expr("Backups: age, % of the allowed"),
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": '{kind="config",repository="s3"}', "value": 100 * 300 / 10800},
                            {"labels": '{kind="full",repository="s3"}', "value": 100 * 150 / 108000},
                        ],
                    },
                    # At 5 min, each stream silent since its own newest message: a dead one shows beside
                    # a live one.
                    {
                        "expr": _expr("Sources: seconds since their last data", "STREAMS"),
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": '{source="binance",stream="ticker"}', "value": 0},
                            {"labels": '{source="kraken",stream="ohlcv"}', "value": 240},
                            {"labels": '{source="kraken",stream="ticker"}', "value": 270},
                        ],
                    },
                    {
                        "expr": _expr("Sources: seconds since their last data", "NEWS"),
                        "eval_time": "5m",
                        "exp_samples": [{"labels": '{source="coindesk"}', "value": 180}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "dashboard-queries.test.yml"
    path.write_text(json.dumps(tests))
    result = promtool("test", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
