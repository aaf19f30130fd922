"""Accuracy of a headline scorer on a labelled set (label<TAB>headline per line; '#' comments)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

LABELS = ("neg", "neu", "pos")
# VADER's authors' convention for the compound score: within ±0.05 is neutral.
NEUTRAL_BAND = 0.05


def label_of(score: float) -> str:
    if score >= NEUTRAL_BAND:
        return "pos"
    if score <= -NEUTRAL_BAND:
        return "neg"
    return "neu"


def read_labelled(path: Path) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, headline = line.partition("\t")
        if not sep or label not in LABELS or not headline.strip():
            raise ValueError(f"{path}:{number}: expected 'neg|neu|pos<TAB>headline', got {line!r}")
        rows.append((label, headline))
    return rows


@dataclass(frozen=True)
class Evaluation:
    total: int
    correct: int
    per_label: dict[str, tuple[int, int]]  # label -> (correct, total)
    mistakes: list[tuple[str, str, float]]  # (expected, headline, score)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def evaluate(rows: Iterable[tuple[str, str]], score: Callable[[str], float]) -> Evaluation:
    totals: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    mistakes = []
    for expected, headline in rows:
        value = score(headline)
        totals[expected] += 1
        if label_of(value) == expected:
            hits[expected] += 1
        else:
            mistakes.append((expected, headline, value))
    return Evaluation(
        total=sum(totals.values()),
        correct=sum(hits.values()),
        per_label={label: (hits[label], totals[label]) for label in LABELS},
        mistakes=mistakes,
    )
