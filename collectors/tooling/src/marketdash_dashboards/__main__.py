"""`python -m marketdash_dashboards [--out DIR] [--check]`: write (or check) the provisioned JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .render import stale, write

DEFAULT_OUT = Path("files/grafana/dashboards")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketdash_dashboards", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s (run from the repo root)"
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any file is stale")
    args = parser.parse_args(argv)
    if not args.out.is_dir():
        parser.error(f"{args.out} is not a directory: run from the repository root or pass --out")
    if args.check:
        outdated = stale(args.out)
        for filename in outdated:
            print(f"stale: {args.out / filename}", file=sys.stderr)
        if outdated:
            print("regenerate with: python -m marketdash_dashboards", file=sys.stderr)
        return 1 if outdated else 0
    for filename in write(args.out):
        print(f"wrote {args.out / filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
