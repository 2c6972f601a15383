"""Offline evaluation: the recommender against the popularity baseline on planted taste.

A synthetic listening set (2,000 users, 3,000 tracks, 20 taste clusters, Zipf popularity
inside each cluster and across the catalog, 20 % of plays off-taste noise); each user's
last 5 plays are held out. Hit-rate@10: the share of users with a held-out track (one they
do not already play often) among their top 10. The recommender must reach at least twice
the popularity baseline's, and must not be a chart: its top 10s cover far more of the
catalog than the baseline's.
"""

from __future__ import annotations

import numpy as np
import pytest

from delivery.modules import recommend_eval as ev
from delivery.modules import recommend_math as rm
from delivery.settings import DeliverySettings

HOLDOUT = 5


@pytest.mark.slow
def test_recommendations_beat_the_popularity_baseline_twice_on_planted_taste():
    settings = DeliverySettings()
    exclude = settings.recommend_exclude_min_plays
    data = ev.synthetic_plays(users=2000, tracks=3000, clusters=20, plays_per_user=40)
    train, held = ev.split(data, HOLDOUT)
    neighbours = rm.item_neighbours(
        train,
        k=settings.recommend_neighbours,
        alpha=settings.recommend_popularity_alpha,
        shrink=settings.recommend_shrink,
    )
    recs = rm.for_you(train, neighbours, n=settings.recommend_size, exclude_min_plays=exclude)
    baseline = rm.popular(train, n=10, exclude_min_plays=exclude)
    ours = ev.hit_rate(recs, train, held, exclude_min_plays=exclude)
    chart = ev.hit_rate(baseline, train, held, exclude_min_plays=exclude)

    def coverage(m) -> int:
        return len({c for u in range(m.shape[0]) for c, _ in rm.row_items(m, u)[:10]})

    print(
        f"\nhit-rate@10: recommender {ours:.3f}, popularity baseline {chart:.3f} "
        f"({ours / chart:.2f}x); distinct tracks in the top 10s: {coverage(recs)} vs "
        f"{coverage(baseline)}"
    )
    assert ours >= 2 * chart
    assert coverage(recs) >= 10 * coverage(baseline)


def test_neighbours_stay_inside_the_planted_clusters():
    data = ev.synthetic_plays(users=2000, tracks=3000, clusters=20, plays_per_user=40)
    train, _ = ev.split(data, HOLDOUT)
    nb = rm.item_neighbours(train, k=10)
    rows, cols, _, _ = rm.ranked(nb)
    same = np.mean(data.cluster_of_track[rows] == data.cluster_of_track[cols])
    print(f"\nneighbours in the seed's own cluster: {same:.1%}")
    assert same >= 0.8
