"""The recommender's math on matrices small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from delivery.modules import recommend_math as rm


def counts(rows: list[list[int]]) -> sparse.csr_matrix:
    return sparse.csr_matrix(np.array(rows, dtype=np.float32))


def test_interactions_sum_repeated_pairs_and_order_ids():
    data = rm.interactions(["u2", "u1", "u2", "u1"], ["b", "a", "b", "c"], [1, 2, 3, 1])
    assert data.users == ["u1", "u2"] and data.items == ["a", "b", "c"]
    assert data.matrix.toarray().tolist() == [[2, 0, 1], [0, 4, 0]]


def test_repeat_plays_are_damped():
    assert rm.damp(counts([[1, 0, 9]])).toarray()[0].tolist() == pytest.approx(
        [np.log(2), 0, np.log(10)]
    )


def test_top_k_dense_orders_by_score_then_id_and_skips_zeros():
    block = np.array([[0.5, 0.9, 0.5, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    rows, cols, scores, ranks = rm.top_k_dense(block, 3, row_offset=10)
    assert rows.tolist() == [10, 10, 10]
    assert cols.tolist() == [1, 0, 2]  # 0.9, then the tied 0.5s by id
    assert ranks.tolist() == [0, 1, 2]
    assert scores.tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_neighbours_are_shrunk_cosine_with_a_popularity_penalty():
    # Tracks 0 and 1 share both their listeners; track 2 is everyone's (a hit).
    m = counts([[1, 1, 1], [1, 1, 1], [0, 0, 1], [0, 0, 1]])
    plain = rm.item_neighbours(m, k=2, alpha=0.0, shrink=0.0).toarray()
    assert plain[0, 1] == pytest.approx(1.0)  # identical columns
    assert plain[0, 2] == pytest.approx(2 / np.sqrt(2 * 4))
    assert np.diag(plain).tolist() == [0, 0, 0]  # never its own neighbour
    penalised = rm.item_neighbours(m, k=2, alpha=1.0, shrink=0.0).toarray()
    assert penalised[0, 1] == pytest.approx(1.0 / 2)  # 2 listeners
    assert penalised[0, 2] == pytest.approx(2 / np.sqrt(8) / 4)  # 4 listeners
    shrunk = rm.item_neighbours(m, k=2, alpha=0.0, shrink=2.0).toarray()
    assert shrunk[0, 1] == pytest.approx(2 * np.log(2) ** 2 / (2 * np.log(2) ** 2 + 2))


def test_k_bounds_the_neighbours_kept():
    m = counts([[1, 1, 1, 1], [1, 1, 1, 1]])
    nb = rm.item_neighbours(m, k=2, alpha=0.0, shrink=0.0, chunk=1)
    assert np.diff(nb.indptr).tolist() == [2, 2, 2, 2]
    # All tied: the lowest ids win, never the track itself.
    assert [c for c, _ in rm.radio(nb, 0, 5)] == [1, 2]
    assert [c for c, _ in rm.radio(nb, 1, 5)] == [0, 2]


def test_for_you_scores_neighbours_and_leaves_out_what_the_user_plays_often():
    # u0 plays track 0 often and track 1 once; tracks 0-1-2 are co-listened by others.
    m = counts([[5, 1, 0, 0], [1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    nb = rm.item_neighbours(m, k=3, alpha=0.0, shrink=0.0)
    fy = rm.for_you(m, nb, n=10, exclude_min_plays=3)
    u0 = [c for c, _ in rm.row_items(fy, 0)]
    assert 0 not in u0  # played 5 times
    assert 2 in u0 and 3 not in u0  # 3 was never played with anything u0 knows
    fy_all = rm.for_you(m, nb, n=10, exclude_min_plays=100)
    assert 0 in [c for c, _ in rm.row_items(fy_all, 0)]
    assert rm.for_you(m, nb, n=1, exclude_min_plays=3).getnnz(axis=1).max() == 1


def test_chunking_changes_nothing():
    rng = np.random.default_rng(1)
    m = sparse.random(60, 40, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    m.data = np.ceil(m.data * 5)
    whole = rm.item_neighbours(m, k=5)
    assert (rm.item_neighbours(m, k=5, chunk=7) != whole).nnz == 0
    fy = rm.for_you(m, whole, n=8, exclude_min_plays=3)
    assert (rm.for_you(m, whole, n=8, exclude_min_plays=3, chunk=9) != fy).nnz == 0


def test_ranked_lists_every_row_best_first():
    m = sparse.csr_matrix(np.array([[0.1, 0.3, 0.3], [0.0, 0.2, 0.0]], dtype=np.float32))
    rows, cols, scores, ranks = rm.ranked(m)
    assert list(zip(rows.tolist(), cols.tolist(), ranks.tolist(), strict=True)) == [
        (0, 1, 0),
        (0, 2, 1),
        (0, 0, 2),
        (1, 1, 0),
    ]


def test_the_popularity_baseline_is_the_chart_minus_what_the_user_knows():
    m = counts([[3, 0, 0], [1, 1, 0], [1, 1, 1]])
    pop = rm.popular(m, n=2, exclude_min_plays=3)
    assert [c for c, _ in rm.row_items(pop, 0)] == [1, 2]
    assert [c for c, _ in rm.row_items(pop, 1)] == [0, 1]
