"""What a feed sends becomes plain text and safe links; items get one identity across sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from marketdash.news.items import RawEntry, canonical_url, normalise
from marketdash.news.text import plain_text, safe_url

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Bitcoin <b>surges</b></p><p>again</p>", "Bitcoin surges again"),
        ("Hello <script>alert('x')</script>world", "Hello world"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Gold up", "Gold up"),
        ("&amp;lt;img src=x onerror=alert(1)&amp;gt;Oil", "Oil"),
        ("P/E < 10 &amp; rising", "P/E \u2039 10 & rising"),
        ("{{ constructor.constructor('x')() }} text", "(( constructor.constructor('x')() )) text"),
        ("a\u202eevil\u200b \u0007bell\n\nnew   line", "aevil bell new line"),
        ("<style>p{}</style><iframe src=x>inner</iframe>Clean", "Clean"),
        ("\uff21\uff22\uff23 fullwidth", "ABC fullwidth"),
    ],
)
def test_plain_text_leaves_no_markup(markup, expected):
    assert plain_text(markup) == expected


def test_long_text_is_cut_with_an_ellipsis():
    assert plain_text("word " * 100, max_chars=20) == "word word word word\u2026"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "https://e.org/a b",
        'https://e.org/"onmouseover=x',
        "ftp://e.org/f",
        "/relative",
        "https://",
    ],
)
def test_unsafe_urls_are_refused(url):
    assert safe_url(url) is None


def test_canonical_url_folds_spellings_of_one_article():
    variants = [
        "https://www.example.com/news/story/?utm_source=twitter&utm_medium=social",
        "http://example.com/news/story",
        "https://EXAMPLE.com:443/news/story#comments",
        "https://example.com/news/story?fbclid=abc",
    ]
    assert {canonical_url(v) for v in variants} == {"https://example.com/news/story"}
    assert canonical_url("https://e.com/a?id=2&b=1") == canonical_url("https://e.com/a?b=1&id=2")
    assert canonical_url("https://e.com/a?id=1") != canonical_url("https://e.com/a?id=2")


def test_normalise_cleans_dates_and_refuses_items_without_a_safe_link():
    paris = timezone(timedelta(hours=2))
    item = normalise(
        RawEntry(
            "<b>ETH</b> &amp; BTC",
            "https://e.org/1",
            "g",
            datetime(2026, 5, 1, 13, 0, tzinfo=paris),
            "<p>s</p>",
            ("A", "A", "B"),
        ),
        "feed",
        NOW,
    )
    assert item is not None
    assert (item.title, item.summary, item.tags) == ("ETH & BTC", "s", ("A", "B"))
    assert item.published == datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    future = normalise(RawEntry("t", "https://e.org/2", published=NOW + timedelta(days=1)), "feed", NOW)
    assert future is not None
    assert future.published == NOW
    assert normalise(RawEntry("t", "javascript:alert(1)"), "feed", NOW) is None
    assert normalise(RawEntry("<p></p>", "https://e.org/3"), "feed", NOW) is None


def test_same_article_same_identity_across_sources():
    a = normalise(
        RawEntry("Bitcoin plunges as exchange hack drains funds", "https://www.e.org/x?utm_source=rss"),
        "one",
        NOW,
    )
    b = normalise(
        RawEntry("Bitcoin plunges as exchange hack drains funds!", "https://other.org/copy"), "two", NOW
    )
    c = normalise(RawEntry("Something else", "http://e.org/x"), "two", NOW)
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.item_id == c.item_id  # same canonical URL
    assert set(a.dedup_keys()) & set(b.dedup_keys())  # same wire headline under another URL
