"""News items, from what a source sent (`RawEntry`) to what we store (`NewsItem`), and their identities."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from marketdash.news.text import plain_text, safe_url

MAX_TITLE_CHARS = 300
MAX_SUMMARY_CHARS = 600
MAX_TAGS = 10

# Query parameters that only say how a reader arrived; two links differing only by them are one article.
_TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|ref|ref_src|cmpid|ncid|guccounter|"
    r"guce_referrer\w*|smid|sr_share|__twitter_impression)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RawEntry:
    """One entry as a source gave it: untrusted text, maybe HTML, maybe missing fields."""

    title: str | None
    url: str | None
    guid: str | None = None
    published: datetime | None = None
    summary: str | None = None
    categories: tuple[str, ...] = ()
    # The outlet behind an aggregator (NewsAPI's source.name, CryptoPanic's source title).
    publisher: str | None = None
    # Currency codes the source itself attached (CryptoPanic): trusted for tagging, unlike RSS categories.
    tickers: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewsItem:
    source: str  # the configured source that brought it (feed name, "cryptopanic", "newsapi")
    title: str
    url: str
    published: datetime  # UTC
    summary: str
    tags: tuple[str, ...]  # the source's own categories / currencies, cleaned
    guid: str | None
    publisher: str
    assets: tuple[str, ...] = ()  # catalogue symbols the text mentions
    sentiment: float = 0.0

    @cached_property  # frozen dataclasses keep a __dict__, which is where cached_property stores it
    def item_id(self) -> str:
        """Stable across sources and restarts: the hash of the canonical URL."""
        return hashlib.sha256(canonical_url(self.url).encode()).hexdigest()[:16]

    def dedup_keys(self) -> tuple[str, ...]:
        keys = [f"url:{self.item_id}"]
        if self.guid:
            keys.append("guid:" + hashlib.sha256(f"{self.source}\0{self.guid}".encode()).hexdigest()[:24])
        fingerprint = title_fingerprint(self.title)
        if len(fingerprint) >= 24:  # short titles ("Markets wrap") are too generic to identify a story
            keys.append("title:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:24])
        return tuple(keys)


def canonical_url(url: str) -> str:
    """One spelling per article: scheme and host folded, default port, fragment and tracking dropped."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = parts.port
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    query = urlencode(
        sorted(
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k)
        )
    )
    path = parts.path.rstrip("/") or "/"
    # http and https of the same article are the same article; the scheme is not part of its identity.
    return urlunsplit(("https", netloc, path, query, ""))


_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def title_fingerprint(title: str) -> str:
    """What two outlets' copies of one wire headline share: letters and digits, lower case."""
    return _NON_ALNUM.sub(" ", title.casefold()).strip()


def normalise(entry: RawEntry, source: str, fetched_at: datetime) -> NewsItem | None:
    """A cleaned item, or None when the entry has no usable title or no safe http(s) link."""
    title = plain_text(entry.title, MAX_TITLE_CHARS)
    url = safe_url(entry.url)
    if url is None and entry.guid:
        url = safe_url(entry.guid)  # RSS guid isPermaLink: the guid is the link
    if not title or url is None:
        return None
    published = entry.published or fetched_at
    published = published.replace(tzinfo=UTC) if published.tzinfo is None else published.astimezone(UTC)
    # A date in the future is a feed's clock or time zone error; it would pin the item atop the panel.
    published = min(published, fetched_at)
    tags: list[str] = []
    for category in entry.categories:
        tag = plain_text(category, 40)
        if tag and tag not in tags:
            tags.append(tag)
    return NewsItem(
        source=source,
        title=title,
        url=url,
        published=published,
        summary=plain_text(entry.summary, MAX_SUMMARY_CHARS),
        tags=tuple(tags[:MAX_TAGS]),
        guid=(entry.guid or "").strip()[:500] or None,
        publisher=plain_text(entry.publisher, 100) or source,
    )
