"""Parsing the search box and rendering it for FTS5 and tsquery (pure functions)."""

from __future__ import annotations

import pytest

from delivery.errors import BadRequest
from delivery.modules.search import TABLES
from delivery.modules.search_query import (
    applicable,
    fts5_match,
    parse_query,
    tsquery,
)

TRACK = TABLES["track"].target
ARTIST = TABLES["artist"].target


def test_words_and_prefix():
    q = parse_query("Daft Pun")
    assert q.words == ("daft", "pun") and q.prefix
    assert fts5_match(q, TRACK) == '"daft" AND "pun"*'
    assert tsquery(q, TRACK) == "'daft' & 'pun':*"
    assert not parse_query("daft punk ").prefix  # a trailing space ends the word


def test_filters_and_phrases():
    q = parse_query('artist:"Daft Punk" album:discovery "one more time" year:2001 track:one')
    assert q.words == ()
    assert q.phrases == (("one", "more", "time"),)
    assert dict(q.filters) == {
        "artist": ("daft", "punk"),
        "album": ("discovery",),
        "track": ("one",),
    }
    assert q.year == (2001, 2001)
    match = fts5_match(q, TRACK)
    assert '"one more time"' in match and 'artist : "daft"' in match
    assert 'album : "discovery"' in match and 'title : "one"' in match
    ts = tsquery(q, TRACK)
    assert "'daft':B" in ts and "'discovery':C" in ts and "'one':A" in ts
    assert "('one' <-> 'more' <-> 'time')" in ts


def test_year_range():
    assert parse_query("year:1990-1999").year == (1990, 1999)


@pytest.mark.parametrize(
    "bad", ["", "   ", "year:abc", "year:2001-1990", "year:19", "x" * 501, " ".join(["w"] * 33)]
)
def test_bad_queries_are_400(bad):
    with pytest.raises(BadRequest) as err:
        parse_query(bad)
    assert err.value.status == 400


def test_query_syntax_cannot_be_injected():
    q = parse_query('title* OR NEAR(a b) "x" AND {artist}: ^y \' -- ; DROP')
    for rendered in (fts5_match(q, TRACK), tsquery(q, TRACK)):
        # Only quoted words, our own operators and column filters survive.
        assert "NEAR(" not in rendered and "{" not in rendered and ";" not in rendered
        assert "--" not in rendered and "^" not in rendered
    assert set(q.words) >= {"title", "or", "near", "drop"}


def test_unknown_fields_are_plain_words():
    q = parse_query("genre:rock")
    assert q.words == ("genre", "rock") and q.filters == ()


def test_accents_compose_before_splitting():
    decomposed = "Beyonce\u0301"
    assert parse_query(decomposed).words == ("beyoncé",)


def test_filters_a_table_cannot_hold_mean_no_results():
    assert not applicable(parse_query("album:x"), ARTIST)
    assert not applicable(parse_query("year:2001"), ARTIST)
    assert applicable(parse_query("artist:x"), ARTIST)
