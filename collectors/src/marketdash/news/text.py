"""Turn whatever a feed sends into plain, safe, single-line text and checked URLs.

The dashboard shows titles and summaries in panels that render HTML/Markdown, so the output of `plain_text`
holds no markup at all: tags are dropped (script/style content with them), entities decoded once and the
result decoded again until stable (double-escaped `&amp;lt;script&amp;gt;` stays text), and the characters
that could open markup or a template expression afterwards are replaced by look-alikes.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import urlsplit

_SKIPPED_ELEMENTS = frozenset({"script", "style", "noscript", "template", "iframe", "object", "svg", "math"})
# Block elements become a space so "<p>a</p><p>b</p>" does not read "ab".
_BREAKING_ELEMENTS = frozenset(
    {"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
)
# Look-alikes (single angle quotation marks) keep "P/E < 10" readable without being markup.
_NEUTRALISED = str.maketrans({"<": "\u2039", ">": "\u203a", "{": "(", "}": ")", "`": "'"})
_WHITESPACE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skipping += 1
        elif tag in _BREAKING_ELEMENTS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BREAKING_ELEMENTS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BREAKING_ELEMENTS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _strip_tags(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def _is_unwanted(char: str) -> bool:
    # Control characters, bidi overrides and zero-width characters (Cc, Cf) can reorder or hide text in a
    # panel; private-use and unassigned code points (Co, Cn) have no business in a headline.
    return unicodedata.category(char) in {"Cc", "Cf", "Co", "Cn", "Cs"}


def plain_text(markup: str | None, max_chars: int = 1000) -> str:
    if not markup:
        return ""
    text = markup
    for _ in range(3):  # decode nested escaping, but boundedly
        stripped = _strip_tags(text) if "<" in text or "&" in text else text
        if stripped == text:
            break
        text = stripped
    text = html.unescape(text)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        " " if char.isspace() else char for char in text if char.isspace() or not _is_unwanted(char)
    )
    text = _WHITESPACE.sub(" ", text).strip().translate(_NEUTRALISED)
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


_URL_FORBIDDEN = re.compile(r"[\s<>\"'`{}|\\^]")


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL that can go into an href as is, else None."""
    if not url:
        return None
    url = url.strip()
    if len(url) > 2048 or _URL_FORBIDDEN.search(url) or any(_is_unwanted(c) for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return url
