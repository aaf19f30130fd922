"""The edge role's default limits hold a team of 10 behind one address on the committed dashboards.

The figures come from the dashboards' JSON (marketdash_dashboards.traffic): adding panels or variables
that refresh makes this fail until the defaults (and docs/edge.md) are raised with them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from marketdash_dashboards.traffic import budget, of_directory

ROOT = Path(__file__).resolve().parents[1]
TEAM_BEHIND_ONE_ADDRESS = 10


def per_second(rate: str) -> float:
    count, unit = rate.removesuffix("r/s").removesuffix("r/m"), rate[-1]
    return int(count) / (60 if unit == "m" else 1)


def test_the_default_limits_never_refuse_ten_people_behind_one_address():
    defaults = yaml.safe_load((ROOT / "roles" / "edge" / "defaults" / "main.yml").read_text())
    dashboards = of_directory(ROOT / "files" / "grafana" / "dashboards")
    assert dashboards, "no committed dashboard found"
    needed = budget(dashboards, TEAM_BEHIND_ONE_ADDRESS)
    assert per_second(defaults["edge_rate_limit_rate"]) >= needed.rate_per_second
    assert defaults["edge_rate_limit_burst"] >= needed.burst
    assert defaults["edge_connection_limit"] >= needed.burst


def test_password_attempts_are_limited_far_below_the_dashboards_budget():
    defaults = yaml.safe_load((ROOT / "roles" / "edge" / "defaults" / "main.yml").read_text())
    assert per_second(defaults["edge_login_rate_limit_rate"]) * 60 <= 30
    assert defaults["edge_login_rate_limit_burst"] < defaults["edge_rate_limit_burst"] / 10
