"""Parse a search box string into words and field filters, and render it per backend.

Syntax (Spotify's, minus what we do not index)::

    daft pun                    words; the last one is a prefix (type-ahead)
    "around the world"          a phrase
    artist:daft  artist:"daft punk"   album:discovery   track:one
    year:2001    year:1995-2001

Words are the runs of letters and digits (Unicode), as both backends' tokenizers
see them, so user text never reaches either query language unquoted: it is
rebuilt from these pieces (no operators, quotes or column names get through).
Unknown ``field:value`` pairs are searched as plain words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from delivery.errors import BadRequest

MAX_QUERY_CHARS = 500
MAX_WORDS = 32
FIELDS = ("track", "artist", "album")

_TOKEN_RE = re.compile(r'(\w+):"([^"]*)"?|(\w+):(\S+)|"([^"]*)"?|(\S+)')
_WORD_RE = re.compile(r"[^\W_]+")
_YEAR_RE = re.compile(r"(\d{4})(?:-(\d{4}))?")


def words_of(text: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD_RE.findall(text))


@dataclass(frozen=True)
class SearchQuery:
    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    prefix: bool = False  # the last of ``words`` is a prefix
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (field, words)
    year: tuple[int, int] | None = None

    @property
    def has_text(self) -> bool:
        return bool(self.words or self.phrases or self.filters)


def parse_query(q: str) -> SearchQuery:
    if not isinstance(q, str) or not q.strip():
        raise BadRequest("q is required", code="invalid_query")
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is longer than {MAX_QUERY_CHARS} characters", code="invalid_query")
    q = unicodedata.normalize("NFC", q)
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    filters: list[tuple[str, tuple[str, ...]]] = []
    year: tuple[int, int] | None = None
    last_is_bare = False
    for m in _TOKEN_RE.finditer(q):
        field = (m.group(1) or m.group(3) or "").lower()
        value = m.group(2) if m.group(1) else m.group(4)
        last_is_bare = False
        if field == "year":
            year = _parse_year(value or "")
        elif field in FIELDS:
            pieces = words_of(value or "")
            if pieces:
                filters.append((field, pieces))
        elif field:  # unknown field: plain words
            words.extend(words_of(f"{field} {value}"))
            last_is_bare = True
        elif m.group(5) is not None:
            pieces = words_of(m.group(5))
            if len(pieces) > 1:
                phrases.append(pieces)
            else:
                words.extend(pieces)
        else:
            pieces = words_of(m.group(6))
            words.extend(pieces)
            last_is_bare = bool(pieces)
    total = len(words) + sum(len(p) for p in phrases) + sum(len(w) for _, w in filters)
    if total > MAX_WORDS:
        raise BadRequest(f"q has more than {MAX_WORDS} words", code="invalid_query")
    query = SearchQuery(
        words=tuple(words),
        phrases=tuple(phrases),
        prefix=last_is_bare and not q[-1].isspace(),
        filters=tuple(filters),
        year=year,
    )
    if not query.has_text and query.year is None:
        raise BadRequest("q has nothing to search for", code="invalid_query")
    return query


def _parse_year(value: str) -> tuple[int, int]:
    m = _YEAR_RE.fullmatch(value.strip())
    if not m:
        raise BadRequest(
            f"invalid year filter {value[:20]!r}: use year:2001 or year:1990-1999",
            code="invalid_query",
        )
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    if lo > hi:
        raise BadRequest(f"invalid year range {lo}-{hi}", code="invalid_query")
    return lo, hi


@dataclass(frozen=True)
class Target:
    """What one searchable table offers: filter field -> (FTS5 column, tsvector weight)."""

    fields: dict[str, tuple[str, str]]
    has_year: bool


def applicable(query: SearchQuery, target: Target) -> bool:
    """False when the query filters on something this table cannot hold (no results)."""
    if query.year is not None and not target.has_year:
        return False
    return all(field in target.fields for field, _ in query.filters)


def fts5_match(query: SearchQuery, target: Target) -> str | None:
    """An FTS5 MATCH expression, every word double-quoted; None when there is no text."""
    parts = []
    for i, w in enumerate(query.words):
        star = "*" if query.prefix and i == len(query.words) - 1 else ""
        parts.append(f'"{w}"{star}')
    for phrase in query.phrases:
        parts.append('"' + " ".join(phrase) + '"')
    for field, ws in query.filters:
        column = target.fields[field][0]
        parts.extend(f'{column} : "{w}"' for w in ws)
    return " AND ".join(parts) or None


def _lexeme(text: str) -> str:
    # Quoted for to_tsquery: inside quotes only ' and \\ are special.
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery(
    query: SearchQuery,
    target: Target,
    *,
    filters_only: bool = False,
    alternatives: dict[str, list[str]] | None = None,
) -> str | None:
    """A ``to_tsquery`` string. ``alternatives`` replaces words (typos) by indexed words,
    matched whole; a word with an empty list of alternatives makes the query None."""
    alternatives = alternatives or {}

    def term(word: str, star: str = "") -> str | None:
        if word not in alternatives:
            return f"{_lexeme(word)}{star}"
        options = alternatives[word]
        if not options:
            return None
        return "(" + " | ".join(_lexeme(o) for o in options) + ")"

    parts = []
    if not filters_only:
        for i, w in enumerate(query.words):
            star = ":*" if query.prefix and i == len(query.words) - 1 else ""
            part = term(w, star)
            if part is None:
                return None
            parts.append(part)
        for phrase in query.phrases:
            words = [term(w) for w in phrase]
            if None in words:
                return None
            parts.append("(" + " <-> ".join(words) + ")")
    for field, ws in query.filters:
        weight = target.fields[field][1]
        parts.extend(f"{_lexeme(w)}:{weight}" for w in ws)
    return " & ".join(parts) or None


def free_words(query: SearchQuery) -> list[str]:
    """The free words, phrases' words included, each once (for trigram similarity)."""
    out: list[str] = []
    for word in [*query.words, *(w for p in query.phrases for w in p)]:
        if word not in out:
            out.append(word)
    return out
