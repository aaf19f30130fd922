"""The requests a team's browsers send through the edge, counted from the provisioned dashboards' JSON,
and the per-address limits that never refuse them (the rule: marketdash_dashboards.traffic).

    .venv/bin/python bench/dashboard_traffic.py [PEOPLE behind one address, default 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from marketdash_dashboards.traffic import budget, of_directory

DASHBOARDS = Path(__file__).resolve().parents[1] / "files" / "grafana" / "dashboards"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("people", type=int, nargs="?", default=10)
    people = parser.parse_args().people
    counted = of_directory(DASHBOARDS)
    team = f"r/s for {people}"
    print(f"{'dashboard':24} {'refresh':>8} {'per refresh':>12} {'on load':>8} {team:>10}")
    for one in counted:
        refresh = f"{one.refresh_seconds} s" if one.refresh_seconds else "off"
        print(
            f"{one.uid:24} {refresh:>8} {one.per_refresh:>12} {one.on_load:>8}"
            f" {one.per_second(people):>10.1f}"
        )
    needed = budget(counted, people)
    print(
        f"\n{people} people behind one address, every browser refreshing and loading at the same instant:\n"
        f"  edge_rate_limit_rate: {needed.rate_per_second}r/s\n"
        f"  edge_rate_limit_burst: {needed.burst}\n"
        f"  edge_connection_limit: {needed.burst}"
    )


if __name__ == "__main__":
    main()
