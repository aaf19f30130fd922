"""Feed bodies to entries: RSS 2.0, Atom, broken feeds, XML entity tricks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketdash.news.feeds import FeedRefusedError, parse_feed
from marketdash_testing.news_servers import Item, atom, rss

WHEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_rss_entries_with_dates_in_utc_and_categories():
    body = rss(
        [Item("Gold hits record high", "https://example.org/gold", "g-1", WHEN, "<b>Bullion</b>", ["Metals"])]
    )
    parsed = parse_feed(body.replace("+0000", "+0200").encode())
    assert parsed.problem is None
    (entry,) = parsed.entries
    assert entry.title == "Gold hits record high"
    assert entry.url == "https://example.org/gold"
    assert entry.guid == "g-1"
    assert entry.published == datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # +0200 converted
    assert entry.categories == ("Metals",)


def test_atom_entries():
    parsed = parse_feed(atom([Item("Ether rallies", "https://example.org/eth", "urn:1", WHEN, "s")]).encode())
    (entry,) = parsed.entries
    assert (entry.title, entry.url, entry.guid, entry.published) == (
        "Ether rallies",
        "https://example.org/eth",
        "urn:1",
        WHEN,
    )


def test_a_broken_feed_gives_what_it_has_and_says_why():
    body = rss([Item(f"Headline {i}", f"https://example.org/{i}") for i in range(3)])
    broken = body.replace("<title>Headline 1</title>", "<title>Headline 1 & <oops</title>")
    broken = broken[: broken.index("</channel>") - 20]  # truncated mid-item too
    parsed = parse_feed(broken.encode())
    assert parsed.problem is not None
    assert "well-formed" in parsed.problem
    assert [e.title for e in parsed.entries][:1] == ["Headline 0"]
    assert len(parsed.entries) >= 2


def test_not_a_feed_at_all_is_a_problem_not_a_crash():
    parsed = parse_feed(b"<html><body>Maintenance</body></html>")
    assert parsed.entries == ()
    assert parsed.problem


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><title>t</title><item><title>&lol3;</title><link>https://e.org/1</link></item></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>&secret;</title><link>https://e.org/1</link></item></channel></rss>"""


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, EXTERNAL_ENTITY, BILLION_LAUGHS.replace(b"<?xml", b"garbage<?xml")]
)
def test_entity_tricks_are_refused(body):
    with pytest.raises(FeedRefusedError):
        parse_feed(body)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_entity_tricks_are_refused_whatever_the_encoding(encoding):
    for trick in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        text = trick.decode().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
        with pytest.raises(FeedRefusedError):
            parse_feed(text.encode(encoding))


def test_a_declared_encoding_the_http_charset_overrides_hides_no_entity():
    # The declaration says UTF-16, the bytes and the HTTP charset say UTF-8 (which wins, RFC 7303).
    body = BILLION_LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-16"?>')
    with pytest.raises(FeedRefusedError):
        parse_feed(body, "application/rss+xml; charset=utf-8")


def test_a_feed_in_utf16_is_read():
    body = rss([Item("Gold hits record high", "https://example.org/gold", "g-1", WHEN, "s")])
    body = body.replace('encoding="UTF-8"', 'encoding="utf-16"', 1)
    assert [entry.title for entry in parse_feed(body.encode("utf-16")).entries] == ["Gold hits record high"]


def test_a_plain_doctype_is_fine():
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>t</title><link>https://e.org/</link><description>d</description>
<item><title>Old but fine</title><link>https://e.org/1</link></item></channel></rss>"""
    parsed = parse_feed(body)
    assert parsed.problem is None
    assert [e.title for e in parsed.entries] == ["Old but fine"]
