"""Finance-aware sentiment: named hard cases, accuracy against plain VADER, the stdin command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from marketdash.news.evaluation import evaluate, read_labelled
from marketdash.news.sentiment import FinanceSentiment, plain_score, read_lexicon

DATA = Path(__file__).parent / "data"
MODEL = FinanceSentiment()


@pytest.mark.parametrize(
    ("headline", "sign"),
    [
        ("Bitcoin plunges 10% as exchange hack drains $200M", -1),
        ("Apple beats estimates, raises guidance", +1),
        ("Stablecoin depegs as panic spreads", -1),
        ("Crypto lender halts withdrawals", -1),
        ("Rug pull wipes out token holders", -1),
        ("Solana rallies to all-time high", +1),
        ("Inflation cools more than expected", +1),  # a fall of something bad is good
        ("Inflation surges to four-decade high", -1),  # a rise of something bad is bad
        ("Losses narrow at electric carmaker", +1),
        ("Unemployment falls to record low", +1),
        ("Stocks give up early gains", -1),
        ("Rate-cut hopes fade as jobs data surprises", -1),
        ("ETH -8% in 24 hours", -1),
        ("Nvidia up 6% after results", +1),
        ("Nvidia did not beat estimates", -1),  # VADER's negation still applies
        ("Crude oil holds steady ahead of OPEC meeting", 0),  # "crude" is no insult here
        ("Company reports gross margin for the quarter", 0),
        ("Markets closed for holiday", 0),
    ],
)
def test_hard_cases(headline, sign):
    score = MODEL.score(headline)
    if sign > 0:
        assert score >= 0.3, (headline, score)
    elif sign < 0:
        assert score <= -0.3, (headline, score)
    else:
        assert abs(score) < 0.05, (headline, score)


def test_the_issue_example_is_clearly_negative_where_plain_vader_sees_nothing():
    headline = "Bitcoin plunges 10% as exchange hack drains $200M"
    assert plain_score(headline) == 0.0
    assert MODEL.score(headline) <= -0.6


def test_scores_stay_in_range():
    for text in ["", "!!!", "SCAM SCAM SCAM HACK RUG PULL CRASH!!!", "moon moon ATH all-time high rally!!!"]:
        assert -1.0 <= MODEL.score(text) <= 1.0


@pytest.mark.parametrize("name", ["headlines.tsv", "headlines_holdout.tsv"])
def test_beats_plain_vader_on_the_labelled_sets(name):
    rows = read_labelled(DATA / name)
    assert {label for label, _ in rows} == {"neg", "neu", "pos"}
    ours, plain = evaluate(rows, MODEL.score), evaluate(rows, plain_score)
    assert ours.accuracy >= plain.accuracy + 0.15, (ours.accuracy, plain.accuracy)
    assert ours.accuracy >= 0.85
    for label, (correct, total) in ours.per_label.items():
        assert correct / total >= 0.8, (label, correct, total)


def test_labelled_set_is_balanced_and_a_few_hundred_strong():
    rows = read_labelled(DATA / "headlines.tsv")
    counts = {label: sum(1 for got, _ in rows if got == label) for label in ("neg", "neu", "pos")}
    assert len(rows) >= 300
    assert max(counts.values()) - min(counts.values()) <= 10
    assert len({headline for _, headline in rows}) == len(rows)


def test_lexicon_lines_must_be_term_tab_valence():
    assert read_lexicon(["# comment", "", "moon\t2.0", "rug pull\t-3"]) == {"moon": 2.0, "rug pull": -3.0}
    with pytest.raises(ValueError, match="line 2"):
        read_lexicon(["ok\t1", "missing valence"])


def test_the_command_prints_one_score_per_input_line():
    headlines = [
        "Bitcoin plunges 10% as exchange hack drains $200M",
        "",
        "Apple beats estimates, raises guidance",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "marketdash.news.sentiment"],
        input="\n".join(headlines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    scores = [float(line) for line in done.stdout.splitlines()]
    assert len(scores) == 3
    assert scores[0] < -0.6
    assert scores[1] == 0.0
    assert scores[2] > 0.6
    plain = subprocess.run(
        [sys.executable, "-m", "marketdash.news.sentiment", "--plain", "--with-text"],
        input=headlines[0] + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert plain.stdout == f"+0.0000\t{headlines[0]}\n"
