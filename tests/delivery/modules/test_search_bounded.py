"""Bounded ranking of very common terms (``SearchService._bounded``), on both backends.

A word or a typed prefix matching most of the catalogue is ranked from candidates read
in popularity order (the exact-title rows, the most popular matches) instead of every
match; the page must be the one ranking every match gives, and the bounded path must
actually answer (not fall back) for the common cases.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from delivery.modules import search as search_module
from delivery.modules.search import SearchService
from delivery.modules.search_query import parse_query
from delivery.modules.track_index import IndexedTrack, TrackIndex
from tests.delivery.modules import relevance_set
from tests.delivery.modules.conftest import modules_settings

FILLER = ["blue", "night", "river", "golden", "paper", "summer", "stone", "fire", "heart"]
N_TRACKS = 3000


def _catalogue() -> tuple[list[IndexedTrack], dict[str, int]]:
    """3,000 tracks, "love" in two thirds of them (title, artist or album), with the text
    evidence tiers at every popularity: a few exact titles ("Love"), titles beginning with
    the word ("Love Blue Night") or with a longer word ("Lovesong Paper"), titles
    containing it, artist-only and album-only matches."""
    rng = random.Random(42)
    tracks, plays = [], {}
    for i in range(N_TRACKS):
        roll = rng.random()
        words = rng.sample(FILLER, rng.randint(1, 3))
        artist, album = f"Band {i % 300}", f"Record {i % 700}"
        if roll < 0.003:
            title = "Love"
        elif roll < 0.20:
            title = " ".join(["Love", *words]).title()
        elif roll < 0.25:
            title = " ".join(["Lovesong", *words]).title()
        elif roll < 0.45:
            title = " ".join([*words, "love"]).title()
        elif roll < 0.60:
            title, artist = " ".join(words).title(), "Love Parade"
        elif roll < 0.67:
            title, album = " ".join(words).title(), "Love Songs"
        else:
            title = " ".join([*words, rng.choice(FILLER)]).title()
        track_id = f"bnd-{i:05d}"
        year = 1990 + i % 20
        tracks.append(IndexedTrack(track_id, f"{i:016x}", title, artist, album, year, 200_000))
        # Zipf-like popularity, shuffled over the catalogue; a few hundred never played.
        rank = rng.randrange(N_TRACKS)
        plays[track_id] = 0 if rank > 2700 else int(2_000_000 / (rank + 1))
    return tracks, plays


@pytest.fixture(scope="module")
def catalogue(database) -> dict[str, int]:
    tracks, plays = _catalogue()
    with database.transaction() as tx:
        tx.executemany(
            "INSERT INTO track_stats (track_id, plays) VALUES (:t, :p)",
            [{"t": t, "p": p} for t, p in plays.items()],
        )
    index = TrackIndex(database)
    for i in range(0, len(tracks), 500):
        index.upsert(tracks[i : i + 500])
    if database.dialect == "postgresql":
        with database.transaction() as tx:
            tx.execute("ANALYZE")
    return plays


@pytest.fixture
def services(database, catalogue) -> tuple[SearchService, SearchService]:
    """(bounded, full): the first takes the bounded path from 300 matches on, with walks
    sized for this small catalogue; the second ranks every match, always."""
    bounded = SearchService(database, modules_settings())
    bounded.bounded_from = 300
    bounded.bounded_walk = 50
    bounded.bounded_walk_rows = 30
    full = SearchService(database, modules_settings())
    full.bounded_from = 10**12
    return bounded, full


@pytest.fixture
def answered(monkeypatch) -> Iterator[list[bool]]:
    """Whether each bounded attempt proved its page (True) or fell back (False)."""
    calls: list[bool] = []
    original = SearchService._bounded

    def spy(self, *args, **kwargs):
        page, hopeless = original(self, *args, **kwargs)
        calls.append(page is not None)
        return page, hopeless

    monkeypatch.setattr(SearchService, "_bounded", spy)
    yield calls


def _ids(rows) -> list[str]:
    return [r["track_id"] for r in rows]


@pytest.mark.parametrize("q", ["love", "love ", "lo", "lov", "LOVE"])
def test_common_word_first_page_is_the_full_ranking(services, answered, q):
    bounded, full = services
    query = parse_query(q)
    rows, total = bounded.search(query, "track", limit=20, offset=0)
    assert answered and answered[-1], "the bounded path should prove this page"
    expected, expected_total = full.search(query, "track", limit=20, offset=0)
    assert total == expected_total > 1500
    assert _ids(rows) == _ids(expected)
    assert [r["score"] for r in rows] == pytest.approx([r["score"] for r in expected])
    assert [r["plays"] for r in rows] == [r["plays"] for r in expected]


def test_common_word_exact_titles_first_by_popularity(services, answered):
    """The exact-title tracks ("Love") lead, most played first, above titles that only
    begin with the word however popular; then those titles, by popularity."""
    bounded, _ = services
    rows, _ = bounded.search(parse_query("love "), "track", limit=20, offset=0)
    assert answered == [True]
    exact = [r for r in rows if r["title"] == "Love"]
    assert len(exact) == sum(t.title == "Love" for t in _catalogue()[0]) >= 5
    assert rows[: len(exact)] == sorted(exact, key=lambda r: (-r["plays"], r["track_id"]))
    following = rows[len(exact) :]
    assert all(r["title"].startswith("Love ") for r in following)
    assert [r["plays"] for r in following] == sorted((r["plays"] for r in following), reverse=True)
    # text evidence, not plays, put the exact titles first
    assert max(r["plays"] for r in following) > min(r["plays"] for r in exact)


def test_typed_prefix_popular_title_prefixes_first(services, answered):
    bounded, full = services
    rows, _ = bounded.search(parse_query("lo"), "track", limit=10, offset=0)
    assert answered == [True]
    assert all(r["title"].lower().startswith("lo") for r in rows)
    assert [r["plays"] for r in rows] == sorted((r["plays"] for r in rows), reverse=True)
    assert _ids(rows) == _ids(full.search(parse_query("lo"), "track", limit=10, offset=0)[0])


@pytest.mark.parametrize(("offset", "limit"), [(0, 5), (20, 20), (30, 20), (0, 50)])
def test_later_pages_are_the_full_ranking(services, offset, limit):
    bounded, full = services
    for q in (
        "love",
        "lo",
        "love year:2000",
        "love year:1995-2004",
        "lo year:1990",
        "blue",
        "band",
    ):
        query = parse_query(q)
        got = bounded.search(query, "track", limit=limit, offset=offset)
        want = full.search(query, "track", limit=limit, offset=offset)
        assert (_ids(got[0]), got[1]) == (_ids(want[0]), want[1]), (q, offset, limit)


def test_what_candidates_cannot_prove_is_ranked_in_full(services, answered):
    """A page deep in the matches, with a walk of one row: the candidates prove nothing
    (the rows beginning with the word alone, or with the walk), so every match is
    ranked."""
    bounded, full = services
    bounded.bounded_max_need = 10_000
    bounded.bounded_walk, bounded.bounded_walk_rows = 1, 0
    query = parse_query("love")
    got = bounded.search(query, "track", limit=50, offset=1000)
    assert answered and not any(answered)
    assert _ids(got[0]) == _ids(full.search(query, "track", limit=50, offset=1000)[0])


def test_pages_past_the_bounded_ones_are_ranked_in_full(services, answered):
    bounded, full = services
    query = parse_query("love")
    got = bounded.search(query, "track", limit=50, offset=100)
    assert answered == []
    assert _ids(got[0]) == _ids(full.search(query, "track", limit=50, offset=100)[0])


@pytest.mark.slow
def test_relevance_set_ranks_alike_when_bounded(database, answered, monkeypatch):
    """Every query of the relevance set with the bounded path tried whatever the number of
    matches, with a walk of one row (then four): the same top 5 and total as ranking
    every match (a bounded answer is proved or not given), and proved for most queries."""
    relevance_set.load(database)
    monkeypatch.setattr(search_module, "BOUNDED_WALK_SHARE", 0)
    bounded = SearchService(database, modules_settings())
    bounded.bounded_from = 0
    bounded.bounded_walk, bounded.bounded_walk_rows = 1, 0
    full = SearchService(database, modules_settings())
    full.bounded_from = 10**12
    keys = {"track": "track_id", "artist": "artist_id", "album": "album_id"}
    proved = 0
    for case in relevance_set.CASES:
        query = parse_query(case.q)
        before = len(answered)
        got, got_total = bounded.search(query, case.kind, limit=5, offset=0)
        proved += any(answered[before:])
        want, want_total = full.search(query, case.kind, limit=5, offset=0)
        key = keys[case.kind]
        assert [r[key] for r in got] == [r[key] for r in want], case.q
        assert got_total == want_total, case.q
    assert proved >= len(relevance_set.CASES) // 2, proved
