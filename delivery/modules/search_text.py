"""One normalisation for search, shared by indexing and querying on both backends.

Pure functions: the index writers (:mod:`delivery.modules.search_index`) and the query
parser (:mod:`delivery.modules.search_query`) both go through :func:`analyse`, so the
words a name is stored under and the words a query asks for are made by the same code,
and neither database's tokenizer gets to decide anything: SQLite's FTS5 splits our
space-separated tokens (``unicode61`` with every letter, digit and mark a token
character) and PostgreSQL gets its ``tsvector`` built from them position by position
(its own parser would make ``file`` / ``host`` tokens of ``Mr.Children``, and in a
C-locale database ``pg_trgm`` ignores every non-ASCII letter).

Steps, with examples (``fold`` -> tokens of one field; ``key``)::

    Beyoncé, BEYONCE, Beyonce\u0301    -> beyonce                         key beyonce
    Sigur Rós / Motörhead / Ægir      -> sigur ros / motorhead / aegir
    AC/DC                             -> ac dc + acdc                     key acdc
    Mr.Children / will.i.am           -> mr children + mrchildren / will i am + william
    P!nk / Ke$ha / A$AP Rocky         -> p nk + pnk pink / ke ha + keha kesha / ...
    Simon & Garfunkel, Florence + The Machine   & and a lone + read "and"
    !!!                               -> sym21x21x21 (symbols only: kept, encoded)
    宇多田ヒカル                        -> 宇多 多田 田ヒ ヒカ カル + 宇 多 田 ヒ カ ル
    Кино / Земфира                    -> кино / земфира (Cyrillic is a segmented script)

* **fold**: NFKC (full-width letters, ligatures), case folding, accents removed
  (combining marks U+0300-U+036F after NFKD; ø æ œ ł đ ð þ ı spelt out), NFC again
  (so kana keep their dakuten and Hangul its syllables).
* **chunks**: the folded text split at white space; in each chunk the runs of
  letters, digits and marks are its *parts* (``ac/dc`` -> ``ac``, ``dc``). A chunk of
  several parts is also indexed joined (``acdc``), and, where ``!``, ``$`` or ``@``
  stand between letters, read as letters (``p!nk`` -> ``pink``, ``ke$ha`` ->
  ``kesha``). A chunk of symbols only becomes one encoded token (``!!!`` ->
  ``sym21x21x21``), so a band called ``!!!`` is found by typing ``!!!``.
* **unsegmented scripts** (Han, kana, Hangul, Thai, ...) have no spaces between
  words: their runs are indexed as overlapping bigrams (plus each character), and a
  query run becomes the phrase of its bigrams, so ``ヒカル`` and ``杰伦`` match from the
  middle of ``宇多田ヒカル`` and ``周杰伦``.
* **field token**: a field of several words is also indexed with all its words joined,
  and as its key (``the beatles`` -> ``thebeatles``, ``beatles``), so ``thebeatles``
  finds The Beatles and ``acdc`` an artist written ``AC DC``.
* **key**: the folded field with every separator removed (letters substituted as
  above; a leading article dropped; a field of symbols only keeps its symbols): what
  exact-match and prefix ranking compare (``ac dc``, ``AC/DC`` and ``acdc`` all have the
  key ``acdc``; ``the beatles`` and ``beatles`` the key ``beatles``).
* **kana**: katakana are read as hiragana (``ヒカル`` = ``ひかる``).

Typo tolerance works on a vocabulary of the indexed words (:func:`vocab_terms`),
found back by :func:`grams` (single-deletion variants, which catch every word one
edit away, and a consonant :func:`skeleton`, which catches the common two-typo
misspellings) and checked with :func:`edit_distance` (optimal string alignment: a swap
of two letters is one edit).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_TOKEN_CHARS = 64  # longer runs are cut (PostgreSQL lexemes have a size limit)
MAX_KEY_CHARS = 200
MAX_FIELD_TOKEN_CHARS = 40  # a whole-field key is indexed as one token up to this length
SYMBOL_PREFIX = "sym"
# Symbols read as letters when they stand between two letters or digits.
LEET = {"!": "i", "$": "s", "@": "a"}
# Symbols read as a word ("&" anywhere, "+" standing alone).
AND_WORD = "and"

_SPELLED = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŧ": "t",
        "ŀ": "l",
    }
)

# Scripts written without spaces between words: indexed as character bigrams.
_UNSEGMENTED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana (ー included)
    (0x3100, 0x312F),  # Bopomofo
    (0x3130, 0x318F),  # Hangul compatibility jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B-G
)


@lru_cache(maxsize=8192)
def _kind(ch: str) -> str:
    """``w`` word character, ``u`` word character of an unsegmented script, ``s`` space,
    ``p`` anything else (punctuation, symbols)."""
    if ch.isspace():
        return "s"
    cat = unicodedata.category(ch)
    if cat[0] in "LNM":
        cp = ord(ch)
        for lo, hi in _UNSEGMENTED:
            if lo <= cp <= hi:
                return "u"
        return "w"
    return "p"


# Katakana read as hiragana (ヒカル and ひかる are the same word typed two ways).
_KANA = {cp: cp - 0x60 for cp in range(0x30A1, 0x30F7)}


def fold(text: str) -> str:
    """Case, width, accents and kana folded (see the module docstring)."""
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    s = "".join(c for c in s if not 0x300 <= ord(c) <= 0x36F)
    return unicodedata.normalize("NFC", s.translate(_SPELLED).translate(_KANA))


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    unsegmented: bool  # a run of an unsegmented script (indexed as bigrams)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One white-space separated piece of folded text."""

    parts: tuple[Part, ...]
    leet: str | None = None  # the parts joined with symbols read as letters, if that differs
    symbols: str = ""  # the chunk's symbols, when it has no parts

    @property
    def joined(self) -> str:
        return "".join(p.text for p in self.parts)

    @property
    def segmented(self) -> bool:
        return all(not p.unsegmented for p in self.parts)


def _parts(chunk: str) -> list[Part]:
    out: list[Part] = []
    buf: list[str] = []
    kind = ""
    for ch in chunk:
        k = _kind(ch)
        if k != kind and buf:
            if kind != "p":
                out.append(Part("".join(buf)[:MAX_TOKEN_CHARS], kind == "u"))
            buf = []
        buf.append(ch)
        kind = k
    if buf and kind != "p":
        out.append(Part("".join(buf)[:MAX_TOKEN_CHARS], kind == "u"))
    return out


def _leet(chunk: str) -> str | None:
    if not any(c in LEET for c in chunk):
        return None
    chars = list(chunk)
    changed = False
    for i in range(1, len(chars) - 1):
        if chars[i] in LEET and _kind(chars[i - 1]) == "w" and _kind(chunk[i + 1]) == "w":
            chars[i] = LEET[chars[i]]
            changed = True
    if not changed:
        return None
    return "".join(p.text for p in _parts("".join(chars)))


@lru_cache(maxsize=4096)
def analyse(text: str) -> tuple[Chunk, ...]:
    """``text`` folded and cut into chunks (the one tokenizer of both sides)."""
    folded = fold(text).replace("&", f" {AND_WORD} ")
    out = []
    for raw in folded.split():
        if raw == "+":
            raw = AND_WORD
        parts = tuple(_parts(raw))
        if parts:
            leet = _leet(raw) if len(parts) > 1 else None
            if leet == "".join(p.text for p in parts):
                leet = None
            out.append(Chunk(parts, leet))
        else:
            out.append(Chunk((), symbols=raw[:MAX_TOKEN_CHARS]))
    return tuple(out)


def symbol_token(symbols: str) -> str:
    """A chunk of symbols only, as a token both backends keep whole: ``!!!`` ->
    ``sym21x21x21``."""
    return SYMBOL_PREFIX + "x".join(f"{ord(c):x}" for c in symbols)


def bigrams(run: str) -> list[str]:
    """A run of an unsegmented script as overlapping bigrams (one character: itself)."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def chunk_tokens(chunk: Chunk) -> list[str]:
    """The tokens a chunk is a phrase of: its parts, unsegmented runs as bigrams."""
    if not chunk.parts:
        return [symbol_token(chunk.symbols)] if chunk.symbols else []
    out: list[str] = []
    for part in chunk.parts:
        out.extend(bigrams(part.text) if part.unsegmented else [part.text])
    return out


# A leading article is not part of a key: "the beatles", "beatles" and "Beatles, The"
# all rank The Beatles as an exact match (the article is still indexed as a word).
ARTICLES = frozenset(
    {"the", "a", "an", "el", "la", "los", "las", "le", "les", "die", "der", "das", "il"}
)


def chunks_key(chunks: tuple[Chunk, ...]) -> str:
    """The key of a folded text: every separator removed, a leading article dropped (see
    the module docstring)."""
    if len(chunks) > 1 and chunks[0].joined in ARTICLES and chunks[1].parts:
        chunks = chunks[1:]
    key = "".join(c.leet or c.joined for c in chunks)
    if not key:
        key = "".join(c.symbols for c in chunks)
    return key[:MAX_KEY_CHARS]


def key(text: str) -> str:
    return chunks_key(analyse(text))


def field_tokens(text: str) -> str:
    """The tokens a field is indexed under (FTS5 column, tsvector), space-separated with
    a space at each end, so ranking finds a token as `` token `` and a prefix as `` tok``.

    First the phrase stream (parts in order, unsegmented runs as bigrams), then the
    variants (joined chunks, letter readings, single characters of unsegmented runs,
    the whole field's key), so phrases match the stream and single tokens match
    anywhere.
    """
    chunks = analyse(text)
    stream: list[str] = []
    variants: list[str] = []
    words = 0
    for chunk in chunks:
        tokens = chunk_tokens(chunk)
        stream.extend(tokens)
        words += len(chunk.parts)
        if len(chunk.parts) > 1 and chunk.segmented:
            variants.append(chunk.joined)
        if chunk.leet:
            variants.append(chunk.leet)
        for part in chunk.parts:
            if part.unsegmented and len(part.text) > 1:
                variants.extend(part.text)
    if words > 1 and any(c.parts for c in chunks):
        joined = "".join(c.leet or c.joined for c in chunks)
        for whole in dict.fromkeys([joined, chunks_key(chunks)]):
            if len(whole) <= MAX_FIELD_TOKEN_CHARS:
                variants.append(whole)
    seen = set(stream)
    for v in variants:
        if v not in seen:
            seen.add(v)
            stream.append(v)
    return f" {' '.join(stream)} " if stream else ""


# -- typo tolerance -------------------------------------------------------------------------

MIN_FUZZY_CHARS = 4  # shorter words are too ambiguous to correct
MIN_VOCAB_CHARS = 3
MAX_VOCAB_CHARS = 24


def fuzzy_eligible(word: str) -> bool:
    """Whether a word takes part in typo tolerance (as a query word or in the vocabulary):
    letters of a segmented script, not an encoded symbol chunk, not a number."""
    return (
        MIN_VOCAB_CHARS <= len(word) <= MAX_VOCAB_CHARS
        and not word.startswith(SYMBOL_PREFIX)
        and any(c.isalpha() for c in word)
        and all(_kind(c) == "w" for c in word)
    )


def vocab_terms(tokens: str) -> set[str]:
    """The words of a field's tokens that go into the typo vocabulary."""
    return {t for t in tokens.split() if fuzzy_eligible(t)}


def max_edits(word: str, *, known: bool = True) -> int:
    """Edits tolerated in a word of this length: none below 3 letters; 3 letters: one if
    the index does not know the word (``yuo``), else none (too ambiguous); 1 up to 5
    letters; else 2."""
    n = len(word)
    if n < MIN_FUZZY_CHARS:
        return 0 if known or n < MIN_VOCAB_CHARS else 1
    return 1 if n <= 5 else 2


def deletions(word: str) -> set[str]:
    """The word and every way of deleting one of its characters."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def deletions2(word: str) -> set[str]:
    """Every way of deleting up to two of the word's characters."""
    out = deletions(word)
    for d in list(out):
        out |= deletions(d)
    return out


MIN_SKELETON = 3  # shorter skeletons are shared by too many words to be worth a lookup
_VOWELS = frozenset("aeiouyаеёиоуыэюя")
_SOUNDS = (("ph", "f"), ("ck", "k"), ("qu", "k"), ("q", "k"), ("x", "ks"), ("z", "s"), ("w", "v"))


def skeleton(word: str) -> str:
    """The word's consonants as heard: soft c as s, hard c/k/q as k, z as s, ph as f,
    doubled letters once, vowels dropped after the first letter. Two typos of the kinds
    people make most (a doubled or dropped letter, a vowel or a sound spelt differently)
    leave it alone: ``metalika`` and ``metallica`` are both ``mtlk``."""
    w = word
    for a, b in _SOUNDS:
        w = w.replace(a, b)
    w = "".join(
        ("s" if i + 1 < len(w) and w[i + 1] in "eiy" else "k") if c == "c" else c
        for i, c in enumerate(w)
    )
    out: list[str] = []
    for i, c in enumerate(w):
        if i and c in _VOWELS:
            continue
        if out and out[-1] == c:
            continue
        out.append(c)
    return "".join(out)


def grams(word: str) -> set[str]:
    """What a vocabulary word is filed under: ``d`` + the word and each single-deletion
    variant (two words one edit apart share one), ``s`` + its :func:`skeleton`."""
    out = {"d" + d for d in deletions(word)}
    sk = skeleton(word)
    if len(sk) >= MIN_SKELETON:
        out.add("s" + sk)
    return out


def query_grams(word: str, edits: int) -> set[str]:
    """What to look a query word up under to find the vocabulary words ``edits`` away
    (candidates: :func:`edit_distance` decides). One edit: every such word shares a
    deletion variant. Two: the skeleton, and (words of 7+ letters) two deletions from the
    query's side, which catch two extra letters or an extra and a changed one."""
    out = {"d" + d for d in deletions(word)}
    if edits >= 2:
        sk = skeleton(word)
        if len(sk) >= MIN_SKELETON:
            out.add("s" + sk)
        if len(word) >= 7:
            out |= {"d" + d for d in deletions2(word)}
    return out


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours),
    or ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    # The common beginning and end cost nothing: compare what lies between.
    start, shorter = 0, min(len(a), len(b))
    while start < shorter and a[start] == b[start]:
        start += 1
    a, b = a[start:], b[start:]
    tail = 0
    while tail < min(len(a), len(b)) and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    if tail:
        a, b = a[:-tail], b[:-tail]
    if not a or not b:
        return min(max(len(a), len(b)), limit + 1)
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def typo_cost(edits: int, length: int) -> float:
    """The ranking penalty of a word reached with ``edits`` typos (0 for none): grows
    with the edits and with their share of the word, so an exact match beats a fuzzy one
    (one typo in 8 letters: 0.1; in 4: 0.15; two in 8: 0.2)."""
    if edits <= 0:
        return 0.0
    return min(0.6, 0.05 * edits + 0.4 * edits / max(length, 1))
