"""Parsing the search box and rendering it for FTS5 and tsquery (pure functions)."""

from __future__ import annotations

import pytest

from delivery.errors import BadRequest
from delivery.modules.search import TABLES
from delivery.modules.search_query import (
    KNOWN_FIELDS,
    applicable,
    fts5_match,
    parse_query,
    tsquery,
)

TRACK = TABLES["track"].target
ARTIST = TABLES["artist"].target
FREE = "{t_title t_artist t_album}"


def test_words_and_prefix():
    q = parse_query("Daft Pun")
    assert [t.key for t in q.free] == ["daft", "pun"] and q.prefix
    assert fts5_match(q, TRACK) == f'{FREE} : ((("daft") AND ("pun"*)) OR "daftpun"*)'
    assert tsquery(q, TRACK) == "((('daft') & ('pun':*)) | 'daftpun':*)"
    assert [a.prefix for a in q.free[1].alts] == [False, True]  # ranking tells them apart
    assert not parse_query("daft punk ").prefix  # a trailing space ends the word
    assert parse_query("radio*").prefix  # so does an explicit star


def test_filters_and_phrases():
    q = parse_query('artist:"Daft Punk" album:discovery "one more time" year:2001 track:one')
    assert [t.key for t in q.free] == ["onemoretime"]
    assert [(t.field, t.key) for t in q.filters] == [
        ("artist", "daftpunk"),
        ("album", "discovery"),
        ("track", "one"),
    ]
    assert q.year == (2001, 2001)
    match = fts5_match(q, TRACK)
    assert '"one more time"' in match and 't_artist : ("daft punk" OR "daftpunk")' in match
    assert 't_album : ("discovery")' in match and 't_title : ("one"*)' in match
    ts = tsquery(q, TRACK)
    assert "('daft':B <-> 'punk':B)" in ts and "'discovery':C" in ts and "'one':*A" in ts
    assert "('one' <-> 'more' <-> 'time')" in ts


def test_punctuation_is_an_alternative_not_a_requirement():
    q = parse_query("ac/dc ")
    assert fts5_match(q, ARTIST) == '{t_name} : (("ac dc" OR "acdc"))'
    assert [k for k, _ in q.keys] == ["acdc"]
    pink = parse_query("p!nk ")
    assert '"pink"' in fts5_match(pink, ARTIST)
    assert ("pink", 1.0) in pink.keys


def test_symbol_only_queries_are_searchable():
    q = parse_query("!!! ")
    assert fts5_match(q, ARTIST) == '{t_name} : (("sym21x21x21"))'
    # Beside words, a lone symbol asks for nothing.
    assert [t.key for t in parse_query("ac / dc").terms] == ["ac", "dc"]


def test_star_alone_is_everything():
    q = parse_query("*")
    assert q.wildcard and not q.has_text
    assert fts5_match(q, TRACK) is None and tsquery(q, TRACK) is None
    assert parse_query("* year:2001").year == (2001, 2001)


def test_cjk_matches_from_the_middle():
    q = parse_query("杰伦 ")
    assert fts5_match(q, ARTIST) == '{t_name} : (("杰伦"))'
    q = parse_query("宇多田ヒカル ")
    assert '"宇多 多田 田ひ ひか かる"' in fts5_match(q, ARTIST)


def test_genre_is_a_filter_free_text_never_reaches():
    q = parse_query("genre:hip-hop love ")
    assert "t_genre : (" in fts5_match(q, TRACK)
    ts = tsquery(q, TRACK)
    assert "('~hip':D <-> '~hop':D)" in ts and "'~hiphop':D" in ts
    assert "('love')" in ts  # free text needs no weight: genre lexemes are marked
    assert not applicable(q, ARTIST)


def test_year_range():
    assert parse_query("year:1990-1999").year == (1990, 1999)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", '""', "year:abc", "year:2001-1990", "year:19", "x" * 501, " ".join(["w"] * 33)],
)
def test_bad_queries_are_400(bad):
    with pytest.raises(BadRequest) as err:
        parse_query(bad)
    assert err.value.status == 400


def test_unknown_fields_are_400_naming_the_known_ones():
    with pytest.raises(BadRequest) as err:
        parse_query("mood:happy")
    assert err.value.status == 400
    for name in KNOWN_FIELDS:
        assert f"{name}:" in str(err.value)
    # Not a field name: text ("12:30", non-ASCII before the colon).
    assert [t.key for t in parse_query("12:30").terms] == ["1230"]
    assert parse_query("ラブ:ソング").has_text
    assert parse_query("title:creep").filters[0].field == "track"  # an alias


def test_query_syntax_cannot_be_injected():
    q = parse_query('title* OR NEAR(a b) "x" AND {artist}: ^y \' -- ; DROP')
    for rendered in (fts5_match(q, TRACK), tsquery(q, TRACK)):
        # Only quoted tokens, our own operators and column filters survive.
        assert "NEAR(" not in rendered and "{artist" not in rendered and ";" not in rendered
        assert "--" not in rendered and "^" not in rendered
    assert {"or", "near", "drop"} <= {tok for t in q.terms for a in t.alts for tok in a.tokens}


def test_accents_compose_before_splitting():
    decomposed = "Beyonce\u0301"
    assert [t.key for t in parse_query(decomposed).terms] == ["beyonce"]


def test_filters_a_table_cannot_hold_mean_no_results():
    assert not applicable(parse_query("album:x"), ARTIST)
    assert not applicable(parse_query("year:2001"), ARTIST)
    assert applicable(parse_query("artist:x"), ARTIST)
