"""Offline evaluation of the recommender: a synthetic listening set with planted taste.

:func:`synthetic_plays` makes a listening history where every user belongs to one of
``clusters`` tastes: most of their plays come from their cluster's tracks (Zipf
popularity inside the cluster), the rest (``noise``) from the whole catalog by global
Zipf popularity, so the chart is dominated by a few hits of every cluster. Each user's
last ``holdout`` plays are held out; :func:`hit_rate` is the share of users with at
least one held-out track (one they do not already play often) in their top 10. The
popularity baseline (:func:`delivery.modules.recommend_math.popular`) is the same list
for everyone: the chart minus what the user plays often.

Used by ``tests/delivery/modules/test_recommend_eval.py`` and ``bench/recommend.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from delivery.modules import recommend_math as rm


@dataclass(frozen=True)
class ListeningSet:
    user: np.ndarray  # int user index per play, each user's plays in time order
    track: np.ndarray  # int track index per play
    n_users: int
    n_tracks: int
    cluster_of_user: np.ndarray
    cluster_of_track: np.ndarray


def _zipf(n: int, s: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return p / p.sum()


def synthetic_plays(
    *,
    users: int = 2000,
    tracks: int = 3000,
    clusters: int = 20,
    plays_per_user: int = 40,
    noise: float = 0.2,
    zipf_s: float = 0.8,
    seed: int = 7,
) -> ListeningSet:
    rng = np.random.default_rng(seed)
    cluster_of_track = rng.permutation(np.arange(tracks) % clusters)
    cluster_of_user = rng.integers(0, clusters, size=users)
    # Global popularity: a random Zipf rank per track (hits in every cluster).
    global_p = _zipf(tracks, zipf_s)[rng.permutation(tracks)]
    members = [np.flatnonzero(cluster_of_track == c) for c in range(clusters)]
    # Inside a cluster: Zipf by the tracks' global popularity order.
    cluster_p = []
    for m in members:
        ranked = m[np.argsort(-global_p[m], kind="stable")]
        cluster_p.append((ranked, _zipf(len(ranked), zipf_s)))
    n = users * plays_per_user
    user = np.repeat(np.arange(users), plays_per_user)
    track = np.empty(n, dtype=np.int64)
    is_noise = rng.random(n) < noise
    track[is_noise] = rng.choice(tracks, size=int(is_noise.sum()), p=global_p)
    user_cluster = cluster_of_user[user]
    for c, (ranked, p) in enumerate(cluster_p):
        sel = (~is_noise) & (user_cluster == c)
        track[sel] = ranked[rng.choice(len(ranked), size=int(sel.sum()), p=p)]
    return ListeningSet(user, track, users, tracks, cluster_of_user, cluster_of_track)


def split(data: ListeningSet, holdout: int) -> tuple[sparse.csr_matrix, list[np.ndarray]]:
    """Training counts (users × tracks) and each user's held-out tracks (its last plays)."""
    counts = np.bincount(data.user, minlength=data.n_users)
    ends = np.cumsum(counts)
    pos = np.arange(len(data.user)) - (ends - counts)[data.user]
    test = pos >= (counts[data.user] - holdout)
    train = sparse.csr_matrix(
        (np.ones(int((~test).sum()), dtype=np.float32), (data.user[~test], data.track[~test])),
        shape=(data.n_users, data.n_tracks),
    )
    train.sum_duplicates()
    held = [data.track[test & (data.user == u)] for u in range(data.n_users)]
    return train, held


def hit_rate(
    recs: sparse.csr_matrix,
    train: sparse.csr_matrix,
    held: list[np.ndarray],
    *,
    exclude_min_plays: int,
    at: int = 10,
) -> float:
    """Share of users (with a held-out track they do not play often) hit in the top ``at``."""
    hits = users = 0
    for u, tracks in enumerate(held):
        known = train[u]
        often = set(known.indices[known.data >= exclude_min_plays].tolist())
        targets = set(tracks.tolist()) - often
        if not targets:
            continue
        users += 1
        top = {c for c, _ in rm.row_items(recs, u)[:at]}
        hits += bool(top & targets)
    return hits / max(users, 1)
