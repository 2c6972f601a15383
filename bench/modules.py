"""Benchmark of the playlists, search and social modules on SQLite and PostgreSQL.

    python bench/modules.py              # both backends, the issue's sizes
    python bench/modules.py --quick      # smaller data, a smoke run
    python bench/modules.py --backend sqlite
    python bench/modules.py --only search   # one section (repeatable)

What it measures (service calls, in process — no HTTP), each as p50 / p99 in ms:

* a 10,000-item playlist: read of 100 items (through the hot-playlist cache, and
  with no cache), add 1 item at a random position, move 1 item between random
  positions, remove 1 item at a random position; the same on a 100-item
  playlist, and the ratio 10,000 / 100 (goal: about 1 for add and move);
* search over 100,000 synthetic tracks (goal p99 <= 20 ms), by query kind: words
  (one very common word matches ~15% of the tracks), prefixes (a common word's first
  2-3 letters as typed match up to half of them), filters, typos, names with
  punctuation, accents, CJK and Cyrillic; summarised at the end as a table of p99
  per query kind and backend against the goal;
* friends-listened for a user following 1,000 people, with 1,000,000 plays
  (goal p99 <= 20 ms).

Every figure is also printed as a ratio to a baseline measured in the same run on
the same database: the primary-key read of one playlist header. PostgreSQL is a
throwaway server (tests.support.servers.postgres_server, fsync off), so compare
ratios across machines rather than raw milliseconds. Data is generated with bulk
inserts (executemany on SQLite, COPY on PostgreSQL) and bypasses the event bus.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from delivery.db import Database, open_database  # noqa: E402
from delivery.modules.container import Modules, build_modules  # noqa: E402
from delivery.modules.fractional import spread_keys  # noqa: E402
from delivery.modules.ids import normalize_name, now_ms, stable_id  # noqa: E402
from delivery.modules.playlists import PlaylistService  # noqa: E402
from delivery.modules.search_index import add_vocab, track_columns  # noqa: E402
from delivery.modules.search_query import parse_query  # noqa: E402
from delivery.modules.search_text import key  # noqa: E402
from delivery.outbox import OutboxEventBus  # noqa: E402
from delivery.settings import DeliverySettings  # noqa: E402

SECTIONS = ("playlists", "search", "friends")
SEARCH_GOAL_MS = 20.0  # p99 at 100k tracks (issue 15)
SYLLABLES = [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]


@dataclass(frozen=True, slots=True)
class BenchModules(Modules):
    """The modules' services and what they run on (the app keeps these in its Services)."""

    db: Database
    settings: DeliverySettings
    events: OutboxEventBus


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def zipf_cum(n: int, s: float = 1.0) -> list[float]:
    return list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))


def zipf_pick(rng: random.Random, items: list, cum: list[float]) -> object:
    return items[bisect.bisect_left(cum, rng.random() * cum[-1])]


def measure(fn: Callable[[], object], n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Report:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.rows: list[tuple[str, float, float, str]] = []
        self.baseline = 1.0

    def add(self, name: str, samples: list[float], note: str = "") -> tuple[float, float]:
        p50, p99 = statistics.median(samples), pct(samples, 0.99)
        self.rows.append((name, p50, p99, note))
        return p50, p99

    def print(self) -> None:
        print(
            f"\n== {self.backend}  (baseline: playlist header PK read, p50 {self.baseline:.3f} ms)"
        )
        print(f"{'operation':<60} {'p50 ms':>8} {'p99 ms':>8} {'p99/base':>9}  note")
        for name, p50, p99, note in self.rows:
            vs_base = "" if note.startswith("ratios") else f"{p99 / self.baseline:9.1f}"
            print(f"{name:<60} {p50:8.3f} {p99:8.3f} {vs_base:>9}  {note}")


# -- bulk loading --------------------------------------------------------------------------


def bulk(db: Database, table: str, columns: list[str], rows: list[tuple]) -> None:
    if db.dialect == "postgresql":
        with db._pool.connection() as conn, conn.cursor() as cur:  # COPY: the fast path
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    with db.transaction() as tx:
        tx.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join(':' + c for c in columns)})",
            [dict(zip(columns, row, strict=True)) for row in rows],
        )


CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 400)] + [chr(c) for c in range(0x30A2, 0x30F3)]
CYRILLIC = [a + b for a in "бвгдзклмнпрстфхц" for b in "аеиоуяыё"]


def artist_name(rng: random.Random) -> str:
    """Mostly two Latin words; some with accents, dots or slashes; some CJK or Cyrillic."""
    roll = rng.random()
    if roll < 0.05:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(3, 6)))
    if roll < 0.10:
        return " ".join(
            "".join(rng.choice(CYRILLIC) for _ in range(rng.randint(2, 3))).capitalize()
            for _ in range(rng.randint(1, 2))
        )
    a, b = word(rng).capitalize(), word(rng).capitalize()
    if roll < 0.15:
        return f"{a}{rng.choice('./!$')}{b.lower()}"
    if roll < 0.20:
        return f"{a.replace('a', 'á', 1).replace('o', 'ö', 1)} {b}"
    return f"{a} {b}"


def load_catalog(db: Database, n: int, rng: random.Random) -> tuple[list[str], list[str], list]:
    """``n`` tracks with Zipf-distributed words and play counts; returns ids and words.

    The search columns are computed as the track index computes them
    (:func:`delivery.modules.search_index.track_columns`), the typo vocabulary filled
    with :func:`delivery.modules.search_index.add_vocab`; on PostgreSQL the tsvector is
    the trigger's, as for any insert."""
    vocab = list(dict.fromkeys(word(rng) for _ in range(8000)))  # in a stable order
    vocab_cum = zipf_cum(len(vocab), 0.9)
    artists = [artist_name(rng) for _ in range(n // 10)]
    genres = ["Rock", "Pop", "Hip Hop", "Jazz", "Electronic", "Folk", "Metal", "Soul"]
    now = now_ms()
    rows, stats = [], []
    ids = [f"trk{i:07d}" for i in range(n)]
    for track_id in ids:
        title = " ".join(str(zipf_pick(rng, vocab, vocab_cum)) for _ in range(rng.randint(1, 4)))
        artist = rng.choice(artists)
        album = f"{word(rng).capitalize()} {rng.choice(('Sessions', 'Live', 'Vol 2', 'EP'))}"
        genre = rng.choice(genres)
        search = track_columns(title.title(), artist, album, genre)
        rows.append(
            (
                track_id,
                "0123456789abcdef",
                title.title(),
                artist,
                album,
                stable_id("artist", normalize_name(artist)),
                stable_id("album", normalize_name(artist), normalize_name(album)),
                rng.randint(1960, 2025),
                200_000,
                None,
                now,
                genre,
                *search.values(),
            )
        )
    ranks = list(range(n))
    rng.shuffle(ranks)
    stats = [(ids[i], int(200_000 / (ranks[i] + 1))) for i in range(n)]
    rows = [(*row, plays) for row, (_, plays) in zip(rows, stats, strict=True)]
    search_cols = list(track_columns("", "", "", ""))
    cols = [
        "track_id",
        "version",
        "title",
        "artist",
        "album",
        "artist_id",
        "album_id",
        "year",
        "duration_ms",
        "published_at",
        "indexed_at",
        "genre",
        *search_cols,
        "plays",
    ]
    bulk(db, "tracks", cols, rows)  # PostgreSQL: COPY fires the tsvector trigger
    bulk(db, "track_stats", ["track_id", "plays"], stats)
    first = cols.index(search_cols[0])
    with db.transaction() as tx:
        add_vocab(tx, db.dialect, [t for row in rows for t in row[first : first + 4]])
        tx.execute(
            "INSERT INTO artists (artist_id, name, track_count, plays, t_name, k_name) "
            "SELECT t.artist_id, MIN(t.artist), COUNT(*), SUM(t.plays), MIN(t.t_artist), "
            "MIN(t.k_artist) FROM tracks t GROUP BY t.artist_id"
        )
        tx.execute(
            "INSERT INTO albums (album_id, title, artist, artist_id, year, track_count, plays, "
            "t_title, t_artist, k_title, k_artist) "
            "SELECT t.album_id, MIN(t.album), MIN(t.artist), MIN(t.artist_id), MIN(t.year), "
            "COUNT(*), SUM(t.plays), MIN(t.t_album), MIN(t.t_artist), MIN(t.k_album), "
            "MIN(t.k_artist) FROM tracks t GROUP BY t.album_id"
        )
        if db.dialect == "sqlite":
            for fts in ("tracks_fts", "artists_fts", "albums_fts"):
                tx.execute(f"INSERT INTO {fts} ({fts}) VALUES ('optimize')")
    return ids, vocab, artists


def analyze(db: Database) -> None:
    """Planner statistics after a bulk load; on PostgreSQL also flush GIN pending lists,
    as autovacuum would soon after a real load, and write the loaded pages out (a
    checkpoint), so the measurements do not share the disk with the load's aftermath."""
    if db.dialect == "postgresql":
        with db._pool.connection() as conn:  # VACUUM cannot run inside a transaction
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        return
    with db.transaction() as tx:
        tx.execute("ANALYZE")


# -- playlists -----------------------------------------------------------------------------


def make_playlist(m: BenchModules, owner: str, n: int, tracks: list[str]) -> str:
    pid = m.playlists.create(owner, name=f"bench {n}")["playlist_id"]
    now = now_ms()
    rows = [(pid, key, tracks[i % len(tracks)], owner, now) for i, key in enumerate(spread_keys(n))]
    bulk(m.db, "playlist_items", ["playlist_id", "pos", "track_id", "added_by", "added_at"], rows)
    with m.db.transaction() as tx:
        tx.execute(
            "UPDATE playlists SET item_count = :n WHERE playlist_id = :p", {"n": n, "p": pid}
        )
    return pid


def bench_playlist_size(
    m: BenchModules,
    cold: PlaylistService,
    report: Report,
    tracks: list[str],
    size: int,
    rounds: int,
) -> dict[str, tuple[float, float]]:
    """(p50, p99) of each operation on a playlist of ``size`` items."""
    rng = random.Random(size)
    owner = "bench-owner"
    pid = make_playlist(m, owner, size, tracks)
    analyze(m.db)
    if size == 10_000:
        report.baseline = statistics.median(measure(lambda: m.playlists.get(pid, owner), 300))
    p99: dict[str, tuple[float, float]] = {}
    span = max(1, size - 100)
    samples = measure(
        lambda: cold.page(pid, owner, offset=rng.randrange(span), limit=min(100, size)), rounds
    )
    p99["read 100 (no cache)"] = report.add(
        f"playlist {size:>6}: read 100 items (no cache)", samples
    )
    offsets = [rng.randrange(span) for _ in range(10)]
    for offset in offsets:  # warm: this figure is the cache hit path
        m.playlists.page(pid, owner, offset=offset, limit=100)
    samples = measure(
        lambda: m.playlists.page(pid, owner, offset=rng.choice(offsets), limit=100), rounds
    )
    report.add(
        f"playlist {size:>6}: read 100 items (hot cache)",
        samples,
        f"hit ratio {m.cache.stats().hit_ratio:.2f}",
    )
    timings: dict[str, list[float]] = {
        "add 1 at random position": [],
        "append 1": [],
        "move 1 (random positions)": [],
        "remove 1 at random position": [],
    }

    def timed(name: str, call: Callable[[], object]) -> None:
        t0 = time.perf_counter_ns()
        call()
        timings[name].append((time.perf_counter_ns() - t0) / 1e6)

    for _ in range(rounds):
        c = m.playlists.get(pid, owner)["item_count"]
        t = rng.choice(tracks)
        at, start, before, gone = (
            rng.randint(0, c),
            rng.randrange(c + 1),
            rng.randint(0, c + 1),
            rng.randrange(c + 1),
        )
        timed("add 1 at random position", lambda t=t, at=at: m.playlists.add(pid, owner, [t], at))
        timed(
            "move 1 (random positions)",
            lambda s=start, b=before: m.playlists.reorder(
                pid, owner, range_start=s, insert_before=b
            ),
        )
        timed(
            "remove 1 at random position",
            lambda g=gone: m.playlists.remove(pid, owner, positions=[g]),
        )
        timed("append 1", lambda t=t: m.playlists.add(pid, owner, [t]))
        m.playlists.remove(pid, owner, positions=[c])
    for name, samples in timings.items():
        p99[name] = report.add(f"playlist {size:>6}: {name}", samples)
    return p99


def bench_playlists(m: BenchModules, report: Report, tracks: list[str], rounds: int) -> None:
    cold = PlaylistService(m.db, m.settings, m.events, cache=None)
    cold.cache.enabled = False
    small = bench_playlist_size(m, cold, report, tracks, 100, rounds)
    large = bench_playlist_size(m, cold, report, tracks, 10_000, rounds)
    for name in small:
        p50 = large[name][0] / small[name][0]
        p99 = large[name][1] / small[name][1]
        report.rows.append((f"  10,000 / 100 items: {name}", p50, p99, "ratios, not ms"))


# -- search --------------------------------------------------------------------------------


def bench_search(
    m: BenchModules, report: Report, vocab: list[str], artists: list[str], rounds: int
) -> None:
    rng = random.Random(11)
    common, rare = vocab[:50], vocab[2000:]
    cjk = [a for a in artists if a[0] in CJK]
    long_words = [w for w in vocab[200:3000] if len(w) >= 7]
    kinds: dict[str, Callable[[], str]] = {
        "one common word": lambda: rng.choice(common),
        "two words": lambda: f"{rng.choice(common)} {rng.choice(vocab[:1000])}",
        "rare word": lambda: rng.choice(rare),
        "prefix (type-ahead, 3 letters)": lambda: rng.choice(vocab[:3000])[:3],
        "common word's prefix as typed (2 letters)": lambda: rng.choice(common)[:2],
        "common word's prefix as typed (3 letters)": lambda: rng.choice(common)[:3],
        "word + artist: filter": lambda: (
            f"{rng.choice(vocab[:500])} artist:{rng.choice(artists).split()[0]}"
        ),
        "word + year range": lambda: f"{rng.choice(common)} year:1990-1999",
        "typo (one letter changed)": lambda: _typo(rng, rng.choice(vocab[200:2000])),
        "two typos in a long word": lambda: _typo(rng, _typo(rng, rng.choice(long_words))),
        "artist name as written (./!$, accents, scripts)": lambda: rng.choice(artists),
        "artist name without separators or accents": lambda: key(rng.choice(artists)),
        "CJK: 2 characters from the middle": lambda: rng.choice(cjk)[1:3],
    }
    everything: list[float] = []
    for kind, make in kinds.items():
        it = itertools.cycle([parse_query(make()) for _ in range(rounds)])
        samples = measure(
            lambda it=it: m.search.search(next(it), "track", limit=20, offset=0), rounds
        )
        everything += samples
        report.add(f"search tracks: {kind}", samples)
    report.add("search tracks: all kinds together", everything)
    queries = itertools.cycle([parse_query(rng.choice(vocab[:1000])) for _ in range(rounds)])

    def every_type() -> None:  # what GET /v1/search does: typo lookup once, then each type
        q = m.search.expand(next(queries))
        for k in ("track", "artist", "album", "playlist"):
            m.search.search(q, k, limit=20, offset=0, expanded=True)

    report.add("search type=track,artist,album,playlist", measure(every_type, rounds))


def _typo(rng: random.Random, w: str) -> str:
    i = rng.randrange(1, len(w))
    return w[:i] + rng.choice("xqwj") + w[i + 1 :]


# -- friends-listened ----------------------------------------------------------------------


def bench_friends(
    m: BenchModules, report: Report, tracks: list[str], plays: int, rounds: int
) -> None:
    rng = random.Random(13)
    users = [f"user{i:06d}" for i in range(20_000)]
    me = "bench-me"
    followed = rng.sample(users, 1000)
    now = now_ms()
    bulk(
        m.db,
        "user_following",
        ["user_id", "followee_id", "followed_at"],
        [(me, u, now) for u in followed],
    )
    bulk(
        m.db,
        "user_followers",
        ["user_id", "follower_id", "followed_at"],
        [(u, me, now) for u in followed],
    )
    cum = zipf_cum(len(tracks), 1.0)
    popular = tracks[:]
    rng.shuffle(popular)
    day = 86_400_000
    chunk = 200_000
    for start in range(0, plays, chunk):
        rows = [
            (
                rng.choice(users),
                f"p{i}",
                str(zipf_pick(rng, popular, cum)),
                None,
                160,
                30_000,
                None,
                None,
                now - rng.randrange(90 * day),
                now,
                True,
            )
            for i in range(start, min(plays, start + chunk))
        ]
        bulk(
            m.db,
            "plays",
            [
                "user_id",
                "play_id",
                "track_id",
                "version",
                "bitrate_kbps",
                "ms_played",
                "context_type",
                "context_uri",
                "played_at",
                "recorded_at",
                "counted",
            ],
            rows,
        )
    with m.db.transaction() as tx:
        tx.execute(
            "INSERT INTO track_listeners (track_id, user_id, last_played_at, play_count) "
            "SELECT track_id, user_id, MAX(played_at), COUNT(*) FROM plays "
            "GROUP BY track_id, user_id"
        )
    analyze(m.db)
    picks = [str(zipf_pick(rng, popular, cum)) for _ in range(rounds)]
    it = itertools.cycle(picks)
    found = []

    def query() -> None:
        rows, _, total = m.social.friends_listened(me, next(it), limit=20)
        found.append(total)

    samples = measure(query, rounds)
    report.add(
        "friends-listened (follows 1,000; 1M plays)",
        samples,
        f"median friends found {statistics.median(found):.0f}, max {max(found)}",
    )
    top = itertools.cycle(popular[:5])
    samples = measure(lambda: m.social.friends_listened(me, next(top), limit=20), rounds)
    report.add("friends-listened, the 5 most played tracks", samples)


# -- driver --------------------------------------------------------------------------------


def run_backend(name: str, url: str, args: argparse.Namespace) -> Report:
    report = Report(name)
    db = open_database(url)
    db.migrate()
    settings = DeliverySettings(playlist_max_items=20_000)
    events = OutboxEventBus(db)
    built = build_modules(settings, db, None, events)
    built.subscribe_handlers(events)
    if args.full_ranking:
        built.search.bounded_from = 2**62
    m = BenchModules(
        **{f.name: getattr(built, f.name) for f in fields(built)},
        db=db,
        settings=settings,
        events=events,
    )
    rng = random.Random(5)
    t0 = time.perf_counter()
    tracks, vocab, artists = load_catalog(db, args.tracks, rng)
    print(f"[{name}] loaded {len(tracks):,} tracks in {time.perf_counter() - t0:.1f} s", flush=True)
    analyze(db)
    if "playlists" in args.only:
        bench_playlists(m, report, tracks, args.rounds)
        print(f"[{name}] playlists done", flush=True)
    else:  # the baseline alone: a playlist header's primary-key read
        pid = m.playlists.create("bench-owner", name="baseline")["playlist_id"]
        report.baseline = statistics.median(
            measure(lambda: m.playlists.get(pid, "bench-owner"), 300)
        )
    if "search" in args.only:
        bench_search(m, report, vocab, artists, args.rounds)
        print(f"[{name}] search done", flush=True)
    if "friends" in args.only:
        t0 = time.perf_counter()
        bench_friends(m, report, tracks, args.plays, args.rounds)
        print(
            f"[{name}] friends-listened done ({args.plays:,} plays loaded and queried in "
            f"{time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    db.close()
    return report


def print_search_p99(reports: list[Report]) -> None:
    """The search figures side by side: p99 per query kind and backend, against the goal."""
    names = list(dict.fromkeys(n for r in reports for n, *_ in r.rows if n.startswith("search")))
    if not names:
        return
    p99 = {(r.backend, n): q99 for r in reports for n, _, q99, _ in r.rows}
    backends = [r.backend for r in reports]
    print(f"\n== search p99 by query kind (ms), 100k-track goal <= {SEARCH_GOAL_MS:.0f} ms")
    print(f"{'query kind':<58}" + "".join(f"{b:>12}" for b in backends) + "  goal")
    for name in names:
        values = [p99.get((b, name)) for b in backends]
        cells = "".join(f"{'-':>12}" if v is None else f"{v:12.2f}" for v in values)
        over = any(v is not None and v > SEARCH_GOAL_MS for v in values)
        print(f"{name.removeprefix('search '):<58}{cells}  {'OVER' if over else 'met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10k tracks, 100k plays")
    parser.add_argument("--rounds", type=int, default=300, help="samples per figure")
    parser.add_argument(
        "--full-ranking",
        action="store_true",
        help="search ranks every match (no bounded ranking of common terms), to compare",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run this section only (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    args.only = args.only or list(SECTIONS)
    args.tracks = 10_000 if args.quick else 100_000
    args.plays = 100_000 if args.quick else 1_000_000
    if args.quick:
        args.rounds = min(args.rounds, 100)
    reports = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-modules-") as tmp:
            reports.append(run_backend("sqlite", f"sqlite:///{tmp}/delivery.db", args))
    if args.backend in ("postgresql", "both"):
        from tests.support.servers import postgres_server

        with postgres_server() as url:
            reports.append(run_backend("postgresql", url, args))
    print(
        f"\nsizes: {args.tracks:,} tracks, {args.plays:,} plays, playlists of 100 and "
        f"10,000 items; {args.rounds} samples per figure"
    )
    for report in reports:
        report.print()
    print_search_p99(reports)
    if "search" in args.only:
        full = "every match (--full-ranking)"
        print(f"search ranking: {full if args.full_ranking else 'bounded for common terms'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
