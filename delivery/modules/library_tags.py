"""Pure readings of a manifest's tags for the library: positions, sort keys, genres.

The track index (:mod:`.track_index`) stores what these return; the library
(:mod:`.library`) sorts and groups by it, the same way on SQLite and PostgreSQL:

* ``tracknumber`` / ``discnumber`` come as ``3``, ``03`` or ``3/12``: the number before
  the slash, or None for anything else (``A1`` vinyl sides, empty, absurdly large);
* sort keys are the text folded as search folds it (case, width, accents), spaces
  collapsed; the columns holding them compare byte-wise (``COLLATE "C"`` on
  PostgreSQL, SQLite's default), so both databases order alike whatever their locale;
* a genre groups with every spelling equal under :func:`genre_key` (``Électro`` and
  ``electro``); the library shows the form first seen.
"""

from __future__ import annotations

import re

from delivery.modules.search_text import fold

MAX_POSITION = 99_999
_POSITION_RE = re.compile(r"\s*(\d{1,6})\s*(?:/\s*\d{0,6}\s*)?")


def position_number(value: str | None) -> int | None:
    """``"3/12"`` -> 3; None when the tag holds no such number."""
    if not value:
        return None
    m = _POSITION_RE.fullmatch(value)
    if m is None:
        return None
    number = int(m[1])
    return number if number <= MAX_POSITION else None


def sort_key(text: str) -> str:
    """What a name sorts by: folded, single-spaced."""
    return " ".join(fold(text).split())


def genre_key(genre: str) -> str:
    """What genres group by (empty: no genre)."""
    return sort_key(genre)
