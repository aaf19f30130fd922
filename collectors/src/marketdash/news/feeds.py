"""RSS 2.0 / Atom / RDF bodies to entries: XML tricks refused first, then feedparser as far as it gets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from marketdash.news.items import RawEntry

# Expat stops at the first well-formedness error, which may come before a DTD that a lenient parser would
# still read; any entity declaration in the document is refused outright. Looked for in the decoded text:
# in UTF-16 or UTF-32 bytes "<!ENTITY" does not appear as such (and expat cannot read UTF-32 at all).
_ENTITY_DECLARATION = re.compile(r"<!ENTITY", re.IGNORECASE)
# XML 1.0 Appendix F: the encoding family told by the first bytes, with or without a byte order mark.
_BYTE_ORDER = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"Lo\xa7\x94", "cp500"),
)
_DECLARED = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DECLARED_TEXT = re.compile(r"""^(<\?xml[^>]*encoding\s*=\s*["'])[A-Za-z0-9._-]+(["'])""")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.IGNORECASE)


class FeedRefusedError(Exception):
    """The body tries an XML trick (entity expansion, external entity); nothing of it is parsed."""


@dataclass(frozen=True)
class ParsedFeed:
    entries: tuple[RawEntry, ...]
    problem: str | None  # why the feed is malformed, when it is; its entries are what could be read


def document_text(body: bytes, content_type: str = "") -> str:
    """The document as text, its encoding found as XML over HTTP says (RFC 7303): a byte order mark or the
    first bytes' family, then the HTTP charset, then the XML declaration, then UTF-8. Refused when that
    encoding is unknown."""
    encoding = next((name for mark, name in _BYTE_ORDER if body.startswith(mark)), None)
    if encoding is None:
        charset = _CHARSET.search(content_type)
        declared = _DECLARED.match(body)
        if charset:
            encoding = charset.group(1)
        elif declared:
            encoding = declared.group(1).decode("ascii")
        else:
            encoding = "utf-8"
    try:
        return body.decode(encoding, errors="replace").removeprefix("\ufeff")
    except LookupError:
        raise FeedRefusedError(f"the feed's encoding {encoding!r} is unknown") from None


def _as_utf8(text: str) -> bytes:
    """The checked text as the only bytes the parsers get: UTF-8, its declaration saying so."""
    return _DECLARED_TEXT.sub(r"\1utf-8\2", text, count=1).encode("utf-8")


def check_xml_safety(body: bytes) -> str | None:
    """Refuse entity tricks in UTF-8 `body` (see `document_text`); return the well-formedness error, if
    any, for the caller to report."""
    if _ENTITY_DECLARATION.search(body.decode("utf-8", errors="replace")):
        raise FeedRefusedError("the feed declares XML entities (entity expansion is refused)")
    try:
        # A DOCTYPE alone is allowed: RSS 0.91 feeds carry Netscape's. Entities and external references not.
        fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedRefusedError(f"{type(exc).__name__}: {exc}") from None
    except ParseError as exc:
        return f"not well-formed XML: {exc}"
    return None


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=UTC)  # feedparser gives UTC struct_time
            except (TypeError, ValueError):
                continue
    return None


def _link(entry: Any) -> str | None:
    if entry.get("link"):
        return entry["link"]
    for link in entry.get("links", ()):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link["href"]
    return None


def parse_feed(body: bytes, content_type: str = "") -> ParsedFeed:
    # What is checked is what is parsed: one decoding, here, and UTF-8 with no charset to the parsers.
    body = _as_utf8(document_text(body, content_type))
    problem = check_xml_safety(body)
    media_type = content_type.split(";", 1)[0].strip()
    headers = {"content-type": media_type} if media_type else {}
    # Bytes, never a string: feedparser.parse("http://...") would fetch the URL itself.
    parsed = feedparser.parse(
        body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if parsed.get("bozo") and problem is None:
        problem = f"{type(parsed.get('bozo_exception')).__name__}: {parsed.get('bozo_exception')}"
    entries = []
    for entry in parsed.entries:
        entries.append(
            RawEntry(
                title=entry.get("title"),
                url=_link(entry),
                guid=entry.get("id"),
                published=_published(entry),
                summary=entry.get("summary"),
                categories=tuple(tag.get("term", "") for tag in entry.get("tags", ()) if tag.get("term")),
            )
        )
    if not entries and not parsed.get("version") and problem is None:
        problem = "no RSS or Atom content found"
    return ParsedFeed(tuple(entries), problem)
