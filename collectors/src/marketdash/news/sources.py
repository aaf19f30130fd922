"""The three kinds of source and how each one's answer becomes entries.

A source says what to request and how to read the answer; fetching, scheduling and storage are the
service's, so every kind gets the same limits, back-off and de-duplication.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marketdash.news.feeds import ParsedFeed, parse_feed
from marketdash.news.items import RawEntry


class MalformedAnswerError(Exception):
    """A JSON API answered something that is not its documented format; nothing of it is used."""


@dataclass(frozen=True)
class Request:
    url: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedAnswerError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedAnswerError("the answer is not a JSON object")
    return document


@dataclass(frozen=True)
class RssSource:
    name: str
    url: str

    kind = "rss"

    def request(self) -> Request:
        return Request(
            self.url,
            headers={"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"},
        )

    def parse(self, body: bytes, content_type: str) -> ParsedFeed:
        return parse_feed(body, content_type)


@dataclass(frozen=True)
class CryptoPanicSource:
    """CryptoPanic's posts API: `GET …/posts/?auth_token=…&public=true&kind=news` → `{"results": [...]}`."""

    token: str
    url: str = "https://cryptopanic.com/api/developer/v2/posts/"
    currencies: str = ""  # e.g. "BTC,ETH"; empty for all
    regions: str = "en"
    name: str = "cryptopanic"

    kind = "cryptopanic"

    def request(self) -> Request:
        params = {"auth_token": self.token, "public": "true", "kind": "news", "regions": self.regions}
        if self.currencies:
            params["currencies"] = self.currencies
        return Request(self.url, params=params, headers={"Accept": "application/json"})

    def parse(self, body: bytes, content_type: str) -> ParsedFeed:
        results = _json_object(body).get("results")
        if not isinstance(results, list):
            raise MalformedAnswerError("no 'results' list in the answer")
        entries, skipped = [], 0
        for post in results:
            if not isinstance(post, dict) or not isinstance(post.get("title"), str):
                skipped += 1
                continue
            source = post.get("source") if isinstance(post.get("source"), dict) else {}
            # v1 calls them currencies, the developer v2 API instruments; both are [{"code": "BTC", ...}].
            coins = post.get("currencies") or post.get("instruments") or []
            codes = tuple(c["code"] for c in coins if isinstance(c, dict) and isinstance(c.get("code"), str))
            metadata = post.get("metadata") if isinstance(post.get("metadata"), dict) else {}
            # The article's own address (paid plans) de-duplicates against RSS copies, else CryptoPanic's.
            url = post.get("original_url") or post.get("url")
            if not url and post.get("id") is not None and post.get("slug"):
                url = f"https://cryptopanic.com/news/{post['id']}/{post['slug']}"
            entries.append(
                RawEntry(
                    title=post["title"],
                    url=_str(url),
                    guid=str(post["id"]) if post.get("id") is not None else None,
                    published=_iso_datetime(post.get("published_at"))
                    or _iso_datetime(post.get("created_at")),
                    summary=_str(post.get("description")) or _str(metadata.get("description")),
                    categories=codes,
                    tickers=codes,
                    publisher=_str(source.get("title"))
                    or _str(source.get("domain"))
                    or _str(post.get("domain")),
                )
            )
        return ParsedFeed(tuple(entries), f"{skipped} posts without a title skipped" if skipped else None)


_NEWSAPI_REMOVED = re.compile(r"^\[Removed\]$")


@dataclass(frozen=True)
class NewsApiSource:
    """NewsAPI.org: `GET /v2/top-headlines` (or `/v2/everything`), `X-Api-Key` -> `{"articles": [...]}`."""

    api_key: str
    url: str = "https://newsapi.org/v2/top-headlines"
    query: dict[str, str] = field(
        default_factory=lambda: {"category": "business", "language": "en", "pageSize": "50"}
    )
    name: str = "newsapi"

    kind = "newsapi"

    def request(self) -> Request:
        # The key goes in a header, not the query string, so it never lands in an access log or a URL we log.
        return Request(
            self.url,
            params=dict(self.query),
            headers={"X-Api-Key": self.api_key, "Accept": "application/json"},
        )

    def parse(self, body: bytes, content_type: str) -> ParsedFeed:
        document = _json_object(body)
        if document.get("status") != "ok":
            raise MalformedAnswerError(
                f"NewsAPI status {document.get('status')!r}: {document.get('code')} {document.get('message')}"
            )
        articles = document.get("articles")
        if not isinstance(articles, list):
            raise MalformedAnswerError("no 'articles' list in the answer")
        entries, skipped = [], 0
        for article in articles:
            if not isinstance(article, dict) or not isinstance(article.get("title"), str):
                skipped += 1
                continue
            if _NEWSAPI_REMOVED.match(
                article["title"].strip()
            ):  # NewsAPI's placeholder for withdrawn articles
                skipped += 1
                continue
            source = article.get("source") if isinstance(article.get("source"), dict) else {}
            entries.append(
                RawEntry(
                    title=article["title"],
                    url=_str(article.get("url")),
                    published=_iso_datetime(article.get("publishedAt")),
                    summary=_str(article.get("description")),
                    publisher=_str(source.get("name")),
                )
            )
        return ParsedFeed(
            tuple(entries), f"{skipped} articles skipped (no title or removed)" if skipped else None
        )


Source = RssSource | CryptoPanicSource | NewsApiSource
