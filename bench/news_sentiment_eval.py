"""Accuracy of the finance-aware sentiment beside plain VADER on the labelled headline sets.

    .venv/bin/python bench/news_sentiment_eval.py [--mistakes]

headlines.tsv is the set the lexicon was tuned on; headlines_holdout.tsv was written at the same time and
never used for tuning, so its figure is the honest one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from marketdash.news.evaluation import evaluate, read_labelled
from marketdash.news.sentiment import FinanceSentiment, plain_score

DATA = Path(__file__).resolve().parent.parent / "collectors/tests/news/data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mistakes", action="store_true", help="list the tuning set's misclassified headlines"
    )
    args = parser.parse_args()
    model = FinanceSentiment()
    print(f"{'set':24s} {'n':>4s} {'plain VADER':>12s} {'ours':>8s}   ours per label (neg / neu / pos)")
    for name in ("headlines.tsv", "headlines_holdout.tsv"):
        rows = read_labelled(DATA / name)
        ours, plain = evaluate(rows, model.score), evaluate(rows, plain_score)
        per_label = " / ".join(f"{c}/{t}" for c, t in ours.per_label.values())
        print(f"{name:24s} {ours.total:4d} {plain.accuracy:12.1%} {ours.accuracy:8.1%}   {per_label}")
        if args.mistakes and name == "headlines.tsv":
            for expected, headline, score in ours.mistakes:
                print(f"    {expected}  {score:+.3f}  {headline}")


if __name__ == "__main__":
    main()
