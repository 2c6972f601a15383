"""Parse a search box string into terms and field filters, and render it per backend.

Syntax (Spotify's, for what we index)::

    daft pun                    words; the last one is a prefix while typed (no space after)
    radio*                      an explicit prefix
    "around the world"          a phrase
    artist:daft  artist:"daft punk"   album:discovery   track:one (title:one)   genre:"hip hop"
    year:2001    year:1995-2001
    *                           everything (with filters: everything they let through)

Every piece of text goes through :mod:`delivery.modules.search_text` (the normalisation
the index uses): a word becomes a *term*, the alternatives any of which satisfies it
(``ac/dc``: the phrase ``ac dc`` or the token ``acdc``; ``p!nk``: also ``pink``; a word
being typed: also any word it begins). Typo corrections are added to terms later, by the
search service, from the indexed vocabulary. User text never reaches either query
language unquoted: the expressions are rebuilt from tokens made only of letters, digits
and marks. An unknown ``field:value`` (ASCII letters before the colon) is a 400 naming
the known fields; ``12:30`` or ``ラブ:ソング`` are text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from delivery.errors import BadRequest
from delivery.modules.search_text import (
    MAX_FIELD_TOKEN_CHARS,
    Chunk,
    analyse,
    chunk_tokens,
    chunks_key,
    fuzzy_eligible,
    max_edits,
)

MAX_QUERY_CHARS = 500
MAX_WORDS = 32
FIELDS = ("track", "artist", "album", "genre")
FIELD_ALIASES = {"title": "track"}
KNOWN_FIELDS = (*FIELDS, "year")
PREFIX_COST = 0.05  # a word the typed prefix begins ranks just below the word itself
SAME_WORDS = {"and": "n", "n": "and"}  # a query word also matches the other ("rock n roll")

_TOKEN_RE = re.compile(r'([^\s:"]+):"([^"]*)"?|([^\s:"]+):(\S+)|"([^"]*)"?|(\S+)')
_FIELD_NAME_RE = re.compile(r"[A-Za-z]+")
_YEAR_RE = re.compile(r"(\d{4})(?:-(\d{4}))?")


@dataclass(frozen=True, slots=True)
class Alt:
    """One way to satisfy a term: a token, or a phrase of tokens; ``prefix``: the last
    token is a prefix; ``cost``: the ranking penalty (0 exact, > 0 prefix or typo)."""

    tokens: tuple[str, ...]
    prefix: bool = False
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Term:
    alts: tuple[Alt, ...]
    field: str | None = None  # a filter's field; None: the free text
    key: str = ""  # this piece's share of the free text's key
    fuzzy: str = ""  # the word typo tolerance may replace ("" when none)
    typing: bool = False  # that word is a prefix being typed
    symbols: bool = False  # a chunk of symbols only


@dataclass(frozen=True)
class SearchQuery:
    terms: tuple[Term, ...] = ()
    year: tuple[int, int] | None = None
    wildcard: bool = False  # "*": everything
    prefix: bool = False  # the free text's last word is being typed
    # (key, weight) of the free text (exact / prefix ranking); typo corrections add more
    keys: tuple[tuple[str, float], ...] = ()
    whole: str = ""  # the free text of several words as one token ("radio head" -> radiohead)
    field_keys: tuple[tuple[str, str], ...] = field(default=())  # (filter field, its key)

    @property
    def free(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.field is None)

    @property
    def filters(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.field is not None)

    @property
    def has_text(self) -> bool:
        return bool(self.terms)


def _chunk_term(chunk: Chunk, field: str | None, typing: bool) -> Term:
    tokens = tuple(chunk_tokens(chunk))
    if not chunk.parts:
        return Term((Alt(tokens, typing),), field, chunk.symbols, symbols=True)
    alts = [Alt(tokens)]
    if len(chunk.parts) > 1 and chunk.segmented:
        alts.append(Alt((chunk.joined,)))
    if chunk.leet:
        alts.append(Alt((chunk.leet,)))
    typing = typing and not chunk.parts[-1].unsegmented
    if typing:
        alts += [Alt(a.tokens, True, PREFIX_COST) for a in alts]
    if chunk.joined in SAME_WORDS:  # "guns and roses" finds Guns N' Roses, and back
        alts.append(Alt((SAME_WORDS[chunk.joined],)))
    word = (chunk.leet or chunk.joined) if chunk.segmented else ""
    fuzzy = word if word and fuzzy_eligible(word) and max_edits(word, known=False) else ""
    return Term(_unique(alts), field, chunk.leet or chunk.joined, fuzzy, typing)


def _phrase_term(chunks: tuple[Chunk, ...], field: str | None) -> Term | None:
    tokens = tuple(t for c in chunks for t in chunk_tokens(c))
    if not tokens:
        return None
    alts = [Alt(tokens)]
    key = chunks_key(chunks)
    if len(tokens) > 1 and key and all(c.segmented and c.parts for c in chunks):
        alts.append(Alt((key,)))
    return Term(_unique(alts), field, key)


def _unique(alts: list[Alt]) -> tuple[Alt, ...]:
    seen: dict[tuple[tuple[str, ...], bool], Alt] = {}
    for alt in alts:
        k = (alt.tokens, alt.prefix)
        if k not in seen or alt.cost < seen[k].cost:
            seen[k] = alt
    return tuple(sorted(seen.values(), key=lambda a: a.cost))


def parse_query(q: str) -> SearchQuery:
    if not isinstance(q, str) or not q.strip():
        raise BadRequest("q is required", code="invalid_query")
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is longer than {MAX_QUERY_CHARS} characters", code="invalid_query")
    q = unicodedata.normalize("NFC", q)
    matches = list(_TOKEN_RE.finditer(q))
    typing_ends = not q[-1].isspace()
    terms: list[Term] = []
    free_chunks: list[Chunk] = []
    field_keys: list[tuple[str, str]] = []
    year: tuple[int, int] | None = None
    wildcard = False
    prefix = False
    for i, m in enumerate(matches):
        last = i == len(matches) - 1 and typing_ends
        name = m.group(1) or m.group(3)
        if name is not None and not _FIELD_NAME_RE.fullmatch(name):
            name = None  # "12:30", "ラブ:ソング": text, not a field
        if name is not None:
            name = name.lower()
            name = FIELD_ALIASES.get(name, name)
            value = m.group(2) if m.group(1) else m.group(4)
            if name not in KNOWN_FIELDS:
                raise BadRequest(
                    f"unknown field {name[:20]!r}: use "
                    + ", ".join(f"{f}:" for f in KNOWN_FIELDS)
                    + " (or quote the text)",
                    code="invalid_query",
                )
            if name == "year":
                year = _parse_year(value or "")
                continue
            chunks = analyse(value or "")
            if not chunks:
                continue
            field_keys.append((name, chunks_key(chunks)))
            if m.group(1):
                phrase = _phrase_term(chunks, name)
                if phrase is not None:
                    terms.append(phrase)
            else:
                for j, chunk in enumerate(chunks):
                    typing = last and j == len(chunks) - 1
                    terms.append(_chunk_term(chunk, name, typing))
            continue
        if m.group(5) is not None:  # a quoted phrase
            chunks = analyse(m.group(5))
            phrase = _phrase_term(chunks, None)
            if phrase is not None:
                terms.append(phrase)
                free_chunks.extend(chunks)
            continue
        text = m.group(0)
        if text.strip("*") == "":
            wildcard = True
            continue
        star = text.endswith("*")
        chunks = analyse(text.rstrip("*") if star else text)
        for j, chunk in enumerate(chunks):
            at_end = j == len(chunks) - 1
            typing = at_end and (star or last)
            terms.append(_chunk_term(chunk, None, typing))
            free_chunks.append(chunk)
            prefix = prefix or typing
    free = [t for t in terms if t.field is None]
    if any(not t.symbols for t in free):  # "ac / dc": the lone "/" asks for nothing
        terms = [t for t in terms if t.field is not None or not t.symbols]
        free_chunks = [c for c in free_chunks if c.parts]
    if len(terms) > MAX_WORDS:
        raise BadRequest(f"q has more than {MAX_WORDS} words", code="invalid_query")
    keys: list[tuple[str, float]] = []
    whole = ""
    if free_chunks:
        full = chunks_key(tuple(free_chunks))
        plain = "".join(c.joined for c in free_chunks)
        keys = [(k, 1.0) for k in dict.fromkeys([full, plain]) if k]
        segmented = all(c.segmented and c.parts for c in free_chunks)
        if len(free_chunks) > 1 and segmented and len(full) <= MAX_FIELD_TOKEN_CHARS:
            whole = full
    query = SearchQuery(
        terms=tuple(terms),
        year=year,
        wildcard=wildcard,
        prefix=prefix,
        keys=tuple(keys),
        whole=whole,
        field_keys=tuple(field_keys),
    )
    if not query.has_text and query.year is None and not query.wildcard:
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


# -- what a table offers, and the two renderings --------------------------------------------


@dataclass(frozen=True)
class Field:
    """One searchable field of a table: its token column (FTS5 column; tsvector weight)
    and key column, and what a match in it is worth in ranking."""

    column: str
    weight: str  # tsvector weight letter
    score: float  # a word found here counts this much (title 1.0 > artist > album)
    key: str | None = None
    exact: float = 0.0  # bonus when the whole query is this field's key
    prefix: float = 0.0  # bonus when the query begins this field's key
    free: bool = True  # free text searches it (False: only its filter does, e.g. genre)
    mark: str = ""  # PostgreSQL: its lexemes begin with this (free text never matches them)


@dataclass(frozen=True)
class Target:
    """What one searchable table offers: field name -> :class:`Field`; the names a query
    may filter on; ``combos``: key columns whose concatenation the whole query may equal
    (``radiohead creep`` = artist key + title key)."""

    fields: dict[str, Field]
    has_year: bool
    filters: frozenset[str] = frozenset()
    combos: tuple[tuple[str, str], ...] = ()
    combo_bonus: float = 0.0

    @property
    def free_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.free]


def applicable(query: SearchQuery, target: Target) -> bool:
    """False when the query filters on something this table cannot hold (no results)."""
    if query.year is not None and not target.has_year:
        return False
    return all(t.field in target.filters for t in query.filters)


def _fts_alt(alt: Alt) -> str:
    return '"' + " ".join(alt.tokens).replace('"', '""') + '"' + ("*" if alt.prefix else "")


def _matching(term: Term) -> list[Alt]:
    """The alternatives the index must look up: a token whose prefix is also looked up
    adds no row (ranking still tells the two apart)."""
    prefixes = {a.tokens for a in term.alts if a.prefix}
    return [a for a in term.alts if a.prefix or a.tokens not in prefixes]


def _fts_term(term: Term) -> str:
    return "(" + " OR ".join(dict.fromkeys(_fts_alt(a) for a in _matching(term))) + ")"


def fts5_match(query: SearchQuery, target: Target) -> str | None:
    """An FTS5 MATCH expression (every token double-quoted); None when there is no text."""
    parts = []
    free = query.free
    if free:
        expr = " AND ".join(_fts_term(t) for t in free)
        if query.whole:
            expr = f"({expr}) OR {_fts_alt(Alt((query.whole,), query.prefix))}"
        columns = " ".join(f.column for f in target.free_fields)
        parts.append(f"{{{columns}}} : ({expr})")
    for term in query.filters:
        parts.append(f"{target.fields[term.field].column} : {_fts_term(term)}")
    return " AND ".join(parts) or None


def _lexeme(token: str, prefix: bool, weights: str) -> str:
    # Quoted for tsquery input: inside quotes only ' and \ are special.
    quoted = "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"
    label = ("*" if prefix else "") + weights
    return f"{quoted}:{label}" if label else quoted


def _ts_alt(alt: Alt, weights: str, mark: str = "") -> str:
    n = len(alt.tokens)
    lexemes = [
        _lexeme(mark + t, alt.prefix and i == n - 1, weights) for i, t in enumerate(alt.tokens)
    ]
    return lexemes[0] if n == 1 else "(" + " <-> ".join(lexemes) + ")"


def _ts_term(term: Term, weights: str, mark: str = "") -> str:
    alts = _matching(term)
    return "(" + " | ".join(dict.fromkeys(_ts_alt(a, weights, mark) for a in alts)) + ")"


def tsquery(query: SearchQuery, target: Target) -> str | None:
    """A ``tsquery`` in its input syntax (cast, never parsed by a text search
    configuration); None when there is no text."""
    parts = []
    free = query.free
    weights = ""  # free text: no restriction unless a field it must not see is unmarked
    if any(not f.free and not f.mark for f in target.fields.values()):
        weights = "".join(sorted(f.weight for f in target.free_fields))
    if free:
        expr = " & ".join(_ts_term(t, weights) for t in free)
        if query.whole:
            expr = f"(({expr}) | {_lexeme(query.whole, query.prefix, weights)})"
        parts.append(expr)
    for term in query.filters:
        f = target.fields[term.field]
        parts.append(_ts_term(term, f.weight, f.mark))
    return " & ".join(parts) or None


def fts5_any(pairs: list[tuple[Field, Alt]]) -> str:
    """An FTS5 MATCH expression: a row holding any of these alternatives, each in its field."""
    return " OR ".join(f"({f.column} : {_fts_alt(a)})" for f, a in pairs)


def tsquery_any(pairs: list[tuple[Field, Alt]]) -> str:
    """A ``tsquery``: a row holding any of these alternatives, each in its field (weight)."""
    return " | ".join(_ts_alt(a, f.weight, f.mark) for f, a in pairs)
