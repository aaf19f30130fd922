"""Finance-aware sentiment: named hard cases, accuracy against plain VADER, the stdin command."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from marketdash.news import sentiment
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


def test_no_headline_is_both_tuned_on_and_held_out():
    def headlines(name: str) -> set[str]:
        return {" ".join(headline.lower().split()) for _, headline in read_labelled(DATA / name)}

    assert not headlines("headlines.tsv") & headlines("headlines_holdout.tsv")


def every_pattern_applied(text: str) -> str:
    """The rewriting with no word filter: every rule, the phrases and the percentages, in that order."""
    for pattern, token, _ in sentiment._RULES:
        text = pattern.sub(token, text)
    text = MODEL._compile_phrases(MODEL._phrase_keys).sub(MODEL._phrase_token, text)
    return sentiment._PERCENT_DOWN.sub(" zzfinpctdown ", sentiment._PERCENT_UP.sub(" zzfinpctup ", text))


def random_headlines(count: int) -> list[str]:
    """Headlines made of the words the patterns look for, their neighbours and the joints between words."""
    rng = random.Random(20261204)
    extra = (
        "inflation losses gains hopes fears jobless claims job cuts borrowing costs selling pressure "
        "rises falls cools surges fade gives up pared narrows to a record new multi-year lows highs "
        "bitcoin stocks shares the as after highsmith lowsy up down "
        "5% +8% -3.5% \u22122% all-time rate-cut 52-week won't "
        # Letters re.IGNORECASE equates with ASCII ones that str.lower() does not lower to them.
        "\u0130NFLATION g\u0131ve GA\u0130NS h\u0131gh lo\u017fses"
    )
    # The rules' words more often than the phrases' (there are far more of those): each rule fires.
    vocabulary = [word for phrase in MODEL._phrase_tokens for word in phrase.split()] + 5 * extra.split(" ")
    joints = [" ", " ", " ", "  ", "-", ", ", ": ", "'s ", "\n"]
    headlines = []
    for _ in range(count):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 12))]
        words = [word.upper() if rng.random() < 0.1 else word for word in words]
        headlines.append("".join(word + rng.choice(joints) for word in words).strip())
    return headlines


def test_the_word_filter_never_changes_the_rewriting():
    # The filter only skips a pattern that cannot match; a mistake in it would drop a rule silently.
    labelled = [
        headline
        for name in ("headlines.tsv", "headlines_holdout.tsv")
        for _, headline in read_labelled(DATA / name)
    ]
    fired = {"zzfinworsens": 0, "zzfinimproves": 0, "zzfinphrase": 0, "zzfinpctup": 0, "zzfinpctdown": 0}
    for headline in labelled + random_headlines(3000):
        expected = every_pattern_applied(headline)
        assert MODEL.rewrite(headline) == expected, headline
        for token in fired:
            fired[token] += token in expected
    # Each kind of pattern fired often enough for the comparison to mean something.
    assert min(fired.values()) >= 50, fired


def texts_for_vader_rules(count: int) -> list[str]:
    """Short texts dense in what VADER's rules read: negations near scored words, boosters, "but", "kind
    of", "least", capitals, punctuation, emoticons and emojis."""
    rng = random.Random(20261205)
    words = (
        "not never so this without doubt isn't cant no or nor least at very kind of but extremely barely "
        "good bad great awful GOOD BAD plunge rally zzfinworsens zzfinimproves stocks the market :) :-( "
        "\U0001f600 \u2639 \u2014 !!! ? ! sort uh-uh"
    )
    vocabulary = words.split()
    joints = [" ", " ", "  ", ", ", "! ", "? ", "\n"]
    return [
        "".join(rng.choice(vocabulary) + rng.choice(joints) for _ in range(rng.randint(0, 9)))
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    "model",
    # A lexicon may score a booster word or "kind", which VADER then still reads as a modifier.
    [MODEL, FinanceSentiment({"extremely": 2.0, "barely": -1.0, "kind": 1.5})],
    ids=["finance lexicon", "lexicon scoring modifiers"],
)
def test_the_quick_analyzer_scores_exactly_as_vader_does(model):
    # Its shortcuts must change speed only: compared with the unmodified analyzer holding the same lexicon.
    reference = SentimentIntensityAnalyzer()
    reference.lexicon = dict(model._vader.lexicon)
    labelled = [
        headline
        for name in ("headlines.tsv", "headlines_holdout.tsv")
        for _, headline in read_labelled(DATA / name)
    ]
    texts = labelled + [model.rewrite(headline) for headline in labelled] + texts_for_vader_rules(4000)
    assert sum("\U0001f600" in text for text in texts) > 100  # the emoji path is taken too
    for text in texts:
        assert model._vader.polarity_scores(text) == reference.polarity_scores(text), text


def test_the_folding_knows_every_letter_ignorecase_takes_for_an_ascii_one():
    ascii_letter = re.compile("[a-z]", re.IGNORECASE)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if not char.isascii() and ascii_letter.fullmatch(char):
            folded = sentiment._folded(char)
            assert folded.isascii(), hex(code)
            assert re.fullmatch(folded, char, re.IGNORECASE), hex(code)


def test_a_phrase_spelt_with_a_dotless_i_scores_as_the_phrase():
    # It used to stop the whole poll: the phrase matched, its token was not found.
    assert MODEL.score("Bitcoin hits 52-week h\u0131gh") == MODEL.score("Bitcoin hits 52-week high") > 0.3


def test_a_move_to_a_record_ends_on_a_word():
    assert "highsmith" in MODEL.rewrite("Inflation falls to a record highsmith")


def test_a_phrase_without_a_word_is_refused_with_its_text():
    with pytest.raises(ValueError, match="':-\\) :-\\)' has no ASCII word"):
        FinanceSentiment({":-) :-)": 1.0})


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
