"""Which catalogue assets a headline mentions.

Terms come from the catalogue: each asset's symbol (and the base of a pair, BTC for BTC/USDT), its name
and its aliases. Matching respects word boundaries, and the words that also mean something in plain
language (common_words.txt: LINK, SOL, ONE, Apple, Total, ...) are matched only in the catalogue's own
spelling and never in shouted ALL-CAPS text; upper-case tickers are matched case-sensitively everywhere,
so "sol" in Spanish, "link" as a verb or "DOT" in "ONE DOT AT A TIME" tag nothing. A cashtag ($SOL, $aapl)
is always a mention of that ticker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files

from marketdash.core.catalogue import Asset

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9.]{0,9})(?![\w])")
# Letters and digits on either side break a match; so does a joining '/', '.', or '&' ("EUR/USD" is one term).
_BEFORE = r"(?<![\w/&.])"
_AFTER = r"(?![\w/&]|\.\w)"


def _common_words() -> tuple[frozenset[str], frozenset[str]]:
    """(common words, words too generic to tag alone), lower case."""
    text = files("marketdash.news").joinpath("common_words.txt").read_text(encoding="utf-8")
    words = [line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return frozenset(w.lstrip("!") for w in words), frozenset(w[1:] for w in words if w.startswith("!"))


def _is_ticker(term: str) -> bool:
    return term.isupper() and len(term) <= 6


@dataclass(frozen=True)
class _Terms:
    exact: dict[str, str]  # spelling -> symbol, case-sensitive
    folded: dict[str, str]  # casefolded spelling -> symbol


def _pattern(terms: Iterable[str], *, ignore_case: bool) -> re.Pattern[str] | None:
    ordered = sorted(set(terms), key=len, reverse=True)  # longest first: "S&P 500" before "S&P"
    if not ordered:
        return None
    body = "|".join(re.escape(term).replace(r"\ ", r"\s+") for term in ordered)
    # Names take a plural ("Bitcoins"); tickers do not ("ETHS" is not ETH).
    plural = "s?" if ignore_case else ""
    return re.compile(rf"{_BEFORE}(?:{body}){plural}{_AFTER}", re.IGNORECASE if ignore_case else 0)


class AssetTagger:
    def __init__(self, assets: Iterable[Asset]) -> None:
        common, generic = _common_words()
        exact: dict[str, str] = {}  # matched as written, in any text
        guarded: dict[str, str] = {}  # matched as written, not in shouted text
        folded: dict[str, str] = {}  # matched in any case
        self._tickers: dict[str, str] = {}
        for asset in assets:
            base = asset.symbol.split("/")[0] if asset.asset_class == "crypto" else asset.symbol
            for term in {asset.symbol, base, asset.name, *asset.aliases}:
                term = term.strip()
                if len(term) < 2 or term.lower() in generic:
                    continue
                if _is_ticker(term):
                    self._tickers.setdefault(term.upper(), asset.symbol)
                if term.lower() in common or len(term) <= 2:
                    guarded.setdefault(term, asset.symbol)
                elif _is_ticker(term):
                    exact.setdefault(term, asset.symbol)
                else:
                    folded.setdefault(term.casefold(), asset.symbol)
        self._exact = {**guarded, **exact}
        self._folded = folded
        self._calm = [
            p for p in (_pattern(self._exact, ignore_case=False), _pattern(folded, ignore_case=True)) if p
        ]
        self._shouted = [
            p for p in (_pattern(exact, ignore_case=False), _pattern(folded, ignore_case=True)) if p
        ]

    def _symbol(self, matched: str) -> str | None:
        spelling = " ".join(matched.split())
        folded = spelling.casefold()
        return (
            self._exact.get(spelling)
            or self._folded.get(folded)
            or self._folded.get(folded.removesuffix("s"))
        )

    def tag(self, *texts: str, tickers: Iterable[str] = ()) -> tuple[str, ...]:
        """Catalogue symbols mentioned in the texts (first mention first); `tickers` are codes a source
        attached itself (CryptoPanic's currencies), trusted when the catalogue knows them."""
        found: dict[str, None] = {}
        for ticker in tickers:
            if symbol := self._tickers.get(ticker.upper()):
                found[symbol] = None
        for text in texts:
            if not text:
                continue
            for match in _CASHTAG.finditer(text):
                if symbol := self._tickers.get(match.group(1).upper()):
                    found[symbol] = None
            for pattern in self._shouted if _is_shouted(text) else self._calm:
                for match in pattern.finditer(text):
                    if symbol := self._symbol(match.group(0)):
                        found[symbol] = None
        return tuple(found)


def _is_shouted(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) >= 0.8 * len(letters)
