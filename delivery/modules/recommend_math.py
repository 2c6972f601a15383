"""The recommender's math: item–item similarity from co-listening, "for you", radio.

Pure functions on SciPy sparse matrices (no database, no I/O), so the batch job
(:mod:`delivery.modules.recommend`), the offline evaluation and the benchmark all
run the very same code.

* **Interactions**: a users × tracks CSR matrix of play counts, rows and columns in id
  order (so the column index order is the track-id order and ties break by id).
* **Damping**: a repeat play is worth less than a new listener, ``w = ln(1 + plays)``
  (a track played 50 times by one user must not outweigh 10 users playing it once).
* **Similarity**: shrunk cosine of the damped columns, ``w_i·w_j / (|w_i| |w_j| + shrink)``
  (co-listening normalised by each track's own weight; ``shrink`` keeps a pair of rare
  tracks sharing one listener from looking identical), then divided by the neighbour's
  listener count to the power ``alpha``: the popularity penalty that keeps every
  track's neighbours from being the same chart hits. Each track keeps its top ``k``
  neighbours (score > 0, itself excluded).
* **For you**: the user's damped row times the neighbour matrix; tracks the user played
  ``exclude_min_plays`` times or more are left out (they know them); top ``n``.
* **Radio**: the seed's neighbours by score (the caller puts the seed first).

Products are computed ``chunk`` rows at a time and each chunk is turned into a dense
block of at most :data:`BLOCK_CELLS` cells for the top-k selection, so memory stays
bounded whatever the number of users. Everything is deterministic: equal scores are
ordered by the column index, i.e. the track id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

# Largest dense block (rows × tracks) a chunk is turned into for its top-k: 4M float32
# cells, 16 MB.
BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interactions:
    """Play counts: ``matrix[u, t]`` = plays of ``items[t]`` by ``users[u]``."""

    users: list[str]
    items: list[str]
    matrix: sparse.csr_matrix  # float32 counts, rows = users, columns = items (id order)

    def item_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.items)}


class InteractionsBuilder:
    """Collects ``(user, track, count)`` triples as they stream in, then builds the matrix."""

    def __init__(self) -> None:
        self._users: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._u: list[int] = []
        self._t: list[int] = []
        self._n: list[float] = []

    def __len__(self) -> int:
        return len(self._n)

    def add(self, user_id: str, track_id: str, count: float) -> None:
        self._u.append(self._users.setdefault(user_id, len(self._users)))
        self._t.append(self._items.setdefault(track_id, len(self._items)))
        self._n.append(count)

    def build(self) -> Interactions:
        """Rows and columns renumbered in id order; repeated pairs are summed."""
        users, u_map = _sorted_codes(self._users)
        items, t_map = _sorted_codes(self._items)
        u = u_map[np.asarray(self._u, dtype=np.int64)]
        t = t_map[np.asarray(self._t, dtype=np.int64)]
        m = sparse.coo_matrix(
            (np.asarray(self._n, dtype=np.float32), (u, t)), shape=(len(users), len(items))
        ).tocsr()
        m.sum_duplicates()
        return Interactions(users=users, items=items, matrix=m)


def _sorted_codes(ids: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """The ids sorted, and old code -> new code."""
    ordered = sorted(ids)
    remap = np.empty(len(ids), dtype=np.int64)
    remap[[ids[i] for i in ordered]] = np.arange(len(ordered))
    return ordered, remap


def interactions(
    user_ids: Sequence[str], track_ids: Sequence[str], counts: Sequence[float]
) -> Interactions:
    """The count matrix from ``(user, track, count)`` triples (repeated pairs are summed)."""
    builder = InteractionsBuilder()
    for u, t, n in zip(user_ids, track_ids, counts, strict=True):
        builder.add(u, t, n)
    return builder.build()


def ranked(m: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every stored entry as ``(rows, cols, scores, ranks)``: by row, best first, ties by id."""
    m = m.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    rows, cols, scores = rows[order], m.indices[order], m.data[order]
    ranks = np.arange(len(rows)) - m.indptr[rows]
    return rows, cols, scores, ranks


def damp(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """``ln(1 + plays)`` per entry: repeat plays count less and less."""
    out = counts.astype(np.float32, copy=True)
    out.data = np.log1p(out.data)
    return out


def listeners(counts: sparse.csr_matrix) -> np.ndarray:
    """Distinct listeners per track (column)."""
    return np.diff(counts.tocsc().indptr).astype(np.float32)


def top_k_dense(
    block: np.ndarray, k: int, row_offset: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest positive entries of each row of ``block``.

    Returns ``(rows, cols, scores, ranks)`` (``rows`` shifted by ``row_offset``), ordered
    by row, then score descending, then column ascending (ties by id). Rows may hold
    fewer than ``k`` (only scores > 0 count).
    """
    n_rows, n_cols = block.shape
    if n_rows == 0 or n_cols == 0 or k <= 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32), empty
    if k < n_cols:
        # The k-th largest value of each row: everything >= it is a candidate (ties
        # included, so the id order below decides them, not argpartition's whim).
        kth = -np.partition(-block, k - 1, axis=1)[:, k - 1]
        mask = (block >= kth[:, None]) & (block > 0)
    else:
        mask = block > 0
    rows, cols = np.nonzero(mask)
    scores = block[rows, cols]
    order = np.lexsort((cols, -scores, rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    starts = np.searchsorted(rows, rows, side="left")
    ranks = np.arange(len(rows)) - starts
    keep = ranks < k
    return rows[keep] + row_offset, cols[keep], scores[keep].astype(np.float32), ranks[keep]


def _chunks(n_rows: int, n_cols: int, chunk: int | None) -> Iterator[tuple[int, int]]:
    step = chunk or max(1, BLOCK_CELLS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield start, min(n_rows, start + step)


def _to_csr(parts: list[tuple], shape: tuple[int, int]) -> sparse.csr_matrix:
    if parts:
        rows = np.concatenate([p[0] for p in parts])
        cols = np.concatenate([p[1] for p in parts])
        vals = np.concatenate([p[2] for p in parts])
    else:
        rows = cols = np.empty(0, dtype=np.int64)
        vals = np.empty(0, dtype=np.float32)
    return sparse.csr_matrix((vals, (rows, cols)), shape=shape)


def item_neighbours(
    counts: sparse.csr_matrix,
    *,
    k: int,
    alpha: float = 0.2,
    shrink: float = 20.0,
    chunk: int | None = None,
    progress=None,
) -> sparse.csr_matrix:
    """Tracks × tracks: each row holds the track's top ``k`` neighbours and their scores.

    ``score(i, j) = w_i·w_j / (|w_i| |w_j| + shrink) / listeners_j ** alpha`` over the
    damped columns ``w``.
    ``progress(done, total)`` is called after each chunk of tracks.
    """
    n_items = counts.shape[1]
    w = damp(counts).tocsc()
    norms = np.sqrt(np.asarray(w.multiply(w).sum(axis=0)).ravel()).astype(np.float32)
    w_t = w.T.tocsr()
    penalty = np.power(np.maximum(listeners(counts), 1.0), -alpha).astype(np.float32)
    parts = []
    for start, stop in _chunks(n_items, n_items, chunk):
        block = (w_t[start:stop] @ w).toarray()
        denominator = norms[start:stop, None] * norms[None, :] + np.float32(shrink)
        np.divide(block, denominator, out=block, where=denominator > 0)
        block *= penalty[None, :]
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0  # not its own neighbour
        rows, cols, scores, _ = top_k_dense(block, k, start)
        parts.append((rows, cols, scores))
        if progress is not None:
            progress(stop, n_items)
    return _to_csr(parts, (n_items, n_items))


def for_you(
    counts: sparse.csr_matrix,
    neighbours: sparse.csr_matrix,
    *,
    n: int,
    exclude_min_plays: int,
    chunk: int | None = None,
    progress=None,
) -> sparse.csr_matrix:
    """Users × tracks: each row holds the user's top ``n`` recommendations and scores.

    Tracks the user played ``exclude_min_plays`` times or more are never recommended.
    """
    n_users, n_items = counts.shape
    w = damp(counts)
    nb = neighbours.tocsr().astype(np.float32)
    parts = []
    for start, stop in _chunks(n_users, n_items, chunk):
        block = (w[start:stop] @ nb).toarray()
        known = counts[start:stop].tocoo()
        often = known.data >= exclude_min_plays
        block[known.row[often], known.col[often]] = 0.0
        rows, cols, scores, _ = top_k_dense(block, n, start)
        parts.append((rows, cols, scores))
        if progress is not None:
            progress(stop, n_users)
    return _to_csr(parts, (n_users, n_items))


def popular(
    counts: sparse.csr_matrix, *, n: int, exclude_min_plays: int, chunk: int | None = None
) -> sparse.csr_matrix:
    """The popularity baseline: the most-listened tracks the user does not play often."""
    n_users, n_items = counts.shape
    pop = listeners(counts)
    # Scores strictly decreasing in chart position, ties by id, all > 0.
    order = np.lexsort((np.arange(n_items), -pop))
    score = np.zeros(n_items, dtype=np.float32)
    score[order] = np.arange(n_items, 0, -1, dtype=np.float32)
    parts = []
    for start, stop in _chunks(n_users, n_items, chunk):
        block = np.tile(score, (stop - start, 1))
        known = counts[start:stop].tocoo()
        often = known.data >= exclude_min_plays
        block[known.row[often], known.col[often]] = 0.0
        rows, cols, scores, _ = top_k_dense(block, n, start)
        parts.append((rows, cols, scores))
    return _to_csr(parts, (n_users, n_items))


def row_items(m: sparse.csr_matrix, row: int) -> list[tuple[int, float]]:
    """One row's ``(column, score)`` pairs, best first, ties by column."""
    lo, hi = m.indptr[row], m.indptr[row + 1]
    cols, vals = m.indices[lo:hi], m.data[lo:hi]
    order = np.lexsort((cols, -vals))
    return [(int(cols[i]), float(vals[i])) for i in order]


def radio(neighbours: sparse.csr_matrix, seed: int, n: int) -> list[tuple[int, float]]:
    """The seed's neighbours, best first (at most ``n``); the caller plays the seed first."""
    return row_items(neighbours, seed)[:n]
