"""The asset catalogue in memory: listed by class and searched as the database would search it.

The search rule, the one routes/assets.py's SQL applies: each asset takes the best rank it reaches,
0. q is its symbol, its symbol without the '/', or one of its aliases;
1. its symbol, name or an alias starts with q;
2. q appears in its symbol, its symbol without the '/', its name or an alias;
case ignored throughout; ties keep the database's order of symbols (its collation, which the rows arrive
in). Only ASCII is folded here, and only where the database folds it as Python does: beyond ASCII, case
depends on the database's locale (Python upper-cases 'ß' to 'SS', PostgreSQL leaves it), and under a
Turkic one even 'I' lowers to a dotless i. Then ``search`` returns None and the caller asks the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Joins an entry's texts into one string, so that "starts one of them" and "appears in one of them" are
# each one substring test. Neither q (the route refuses NUL) nor PostgreSQL text can hold it.
_SEP = "\0"


@dataclass(frozen=True)
class _Entry:
    asset_class: str
    json: bytes
    exact: frozenset[str]
    starts: str  # _SEP before each text q may start
    contains: str  # the texts q may appear in, _SEP between them


def _entry(row: Mapping[str, Any], to_json: Callable[[Mapping[str, Any]], bytes]) -> _Entry:
    symbol, name = row["symbol"].lower(), row["name"].lower()
    aliases = tuple(alias.lower() for alias in row["aliases"])
    unslashed = symbol.replace("/", "")
    return _Entry(
        asset_class=row["asset_class"],
        json=to_json(row),
        exact=frozenset((symbol, unslashed, *aliases)),
        starts="".join(_SEP + text for text in (symbol, name, *aliases)),
        contains=_SEP.join((symbol, unslashed, name, *aliases)),
    )


def _json_array(parts: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


class Catalogue:
    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        to_json: Callable[[Mapping[str, Any]], bytes],
        *,
        folds_ascii: bool,
    ) -> None:
        """rows in the database's order of symbols; to_json(row) -> the row as the API answers it;
        folds_ascii: the database's lower() and upper() map A-Z and a-z onto each other."""
        rows = list(rows)
        self._entries = [_entry(row, to_json) for row in rows]
        self._searchable = folds_ascii and all(
            " ".join((row["symbol"], row["name"], *row["aliases"])).isascii() for row in rows
        )

    def listing(self, asset_class: str | None) -> bytes:
        return _json_array(
            e.json for e in self._entries if asset_class is None or e.asset_class == asset_class
        )

    def search(self, q: str, limit: int) -> bytes | None:
        """The JSON array of the best `limit` matches, or None when the rule above leaves it to SQL."""
        if not (self._searchable and q.isascii()):
            return None
        wanted = q.lower()
        starting = _SEP + wanted
        ranks: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
        for entry in self._entries:
            if wanted in entry.exact:
                ranks[0].append(entry.json)
            elif starting in entry.starts:
                ranks[1].append(entry.json)
            elif wanted in entry.contains:
                ranks[2].append(entry.json)
        return _json_array([*ranks[0], *ranks[1], *ranks[2]][:limit])
