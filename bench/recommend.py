"""Benchmark: the recommendation build on 1M synthetic plays.

    .venv/bin/python bench/recommend.py [--plays 1000000] [--users 50000] [--tracks 20000]
                                        [--clusters 100] [--runs 3] [--database]

Generates a listening set with planted taste clusters
(:func:`delivery.modules.recommend_eval.synthetic_plays`), then times, ``--runs`` times
each (medians printed, wall clock and CPU seconds):

* ``recommend``: the build's computation from (user, track, count) triples in memory to
  the finished neighbour and "for you" matrices (interactions matrix, similar tracks,
  for-you lists) — the database read and write are NOT included;
* ``popularity``: the popularity baseline from the same triples (matrix + per-user
  chart minus what the user plays often), the cheapest useful recommender;

and prints recommend/popularity. It also prints hit-rate@10 of both on the last 5
plays of every user held out (see tests/delivery/modules/test_recommend_eval.py).

``--database`` adds one end-to-end run of the real job (``RecommendService.build``) on a
temporary SQLite file holding the plays: read (aggregated by the database), compute,
write and swap, with its progress lines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from delivery.modules import recommend_eval as ev  # noqa: E402
from delivery.modules import recommend_math as rm  # noqa: E402
from delivery.settings import DeliverySettings  # noqa: E402


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plays", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--tracks", type=int, default=20_000)
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--database", action="store_true", help="also run the real job on SQLite")
    args = p.parse_args()
    settings = DeliverySettings()
    t0 = time.perf_counter()
    data = ev.synthetic_plays(
        users=args.users,
        tracks=args.tracks,
        clusters=args.clusters,
        plays_per_user=max(1, args.plays // args.users),
    )
    print(
        f"{len(data.user):,} plays, {args.users:,} users, {args.tracks:,} tracks, "
        f"{args.clusters} clusters (generated in {time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    users = np.char.add("u", data.user.astype(str)).tolist()
    tracks = np.char.add("t", data.track.astype(str)).tolist()
    ones = [1] * len(users)
    exclude = settings.recommend_exclude_min_plays

    def recommend():
        counts = rm.interactions(users, tracks, ones).matrix
        nb = rm.item_neighbours(
            counts,
            k=settings.recommend_neighbours,
            alpha=settings.recommend_popularity_alpha,
            shrink=settings.recommend_shrink,
        )
        return rm.for_you(counts, nb, n=settings.recommend_size, exclude_min_plays=exclude)

    def popularity():
        counts = rm.interactions(users, tracks, ones).matrix
        return rm.popular(counts, n=settings.recommend_size, exclude_min_plays=exclude)

    results: dict[str, list[tuple[float, float]]] = {"recommend": [], "popularity": []}
    for run in range(args.runs):
        for name, fn in (("recommend", recommend), ("popularity", popularity)):
            _, wall, cpu = timed(fn)
            results[name].append((wall, cpu))
            print(f"  run {run + 1} {name:<10} {wall:6.2f} s wall {cpu:6.2f} s cpu", flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in results.items()}  # fmt: skip
    for name, (wall, cpu) in med.items():
        print(f"{name:<10} median {wall:6.2f} s wall, {cpu:6.2f} s cpu")
    print(f"recommend/popularity: {med['recommend'][0] / med['popularity'][0]:.2f}x (wall)")

    train, held = ev.split(data, 5)
    nb = rm.item_neighbours(
        train,
        k=settings.recommend_neighbours,
        alpha=settings.recommend_popularity_alpha,
        shrink=settings.recommend_shrink,
    )
    fy = rm.for_you(train, nb, n=10, exclude_min_plays=exclude)
    ours = ev.hit_rate(fy, train, held, exclude_min_plays=exclude)
    chart = ev.hit_rate(rm.popular(train, n=10, exclude_min_plays=exclude), train, held,
                        exclude_min_plays=exclude)  # fmt: skip
    print(f"hit-rate@10: recommender {ours:.3f}, popularity {chart:.3f} ({ours / chart:.1f}x)")

    if args.database:
        end_to_end(users, tracks, settings)
    return 0


def end_to_end(users: list[str], tracks: list[str], settings: DeliverySettings) -> None:
    from delivery.db import open_database
    from delivery.modules.recommend import RecommendService

    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        t0 = time.perf_counter()
        batch = 50_000
        for start in range(0, len(users), batch):
            rows = [
                {"u": u, "p": f"p{start + i}", "t": t}
                for i, (u, t) in enumerate(
                    zip(users[start : start + batch], tracks[start : start + batch], strict=True)
                )
            ]
            with db.transaction() as tx:
                tx.executemany(
                    "INSERT INTO plays (user_id, play_id, track_id, ms_played, played_at, "
                    "recorded_at) VALUES (:u, :p, :t, 30000, 0, 0)",
                    rows,
                )
        print(f"loaded {len(users):,} plays into SQLite in {time.perf_counter() - t0:.1f} s")
        started = time.perf_counter()
        report, wall, cpu = timed(
            lambda: RecommendService(db, settings).build(
                progress=lambda line: print(
                    f"  [{time.perf_counter() - started:6.1f}s] {line}", flush=True
                )
            )
        )
        print(report.summary())
        print(f"end to end (SQLite read + compute + write): {wall:.1f} s wall, {cpu:.1f} s cpu")
        db.close()


if __name__ == "__main__":
    sys.exit(main())
