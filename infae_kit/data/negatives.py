"""Sampled negatives for the paper's AUC: per user, distinct items in neither train nor test positives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from infae_kit.errors import DataError

__all__ = [
    "sample_auc_negatives",
]


def sample_auc_negatives(
    train: sp.spmatrix, test: sp.spmatrix, n_negatives: int = 50, seed: int = 42
) -> np.ndarray:
    """Draw, for every user, ``n_negatives`` distinct items that are neither train nor test positives.

    Vectorised rejection sampling: each round draws a block of candidates for every unfinished user, rejects
    positives and repeats (kept order = first occurrence), and keeps the first ``n_negatives``; the few rows
    still short are redrawn in the next round. Users whose eligible pool is small relative to ``n_items``
    are served exactly by a permutation of their eligible items.

    Args:
        train: (n_users, n_items) sparse train positives.
        test: (n_users, n_items) sparse test positives.
        n_negatives: negatives per user.
        seed: seed of the ``numpy.random.Generator``.

    Returns:
        (n_users, n_negatives) int32 item indices.

    Raises:
        DataError: shapes differ, or a user has fewer than ``n_negatives`` eligible items.
    """
    if train.shape != test.shape:
        raise DataError(f"train has shape {train.shape} but test has shape {test.shape}; they must match.")
    n_users, n_items = train.shape
    if n_negatives < 0:
        raise DataError(f"n_negatives must be >= 0, got {n_negatives}.")
    positives = (sp.csr_matrix(train, dtype=np.float32) + sp.csr_matrix(test, dtype=np.float32)).tocsr()
    positives.sum_duplicates()
    positives.sort_indices()
    n_pos = np.diff(positives.indptr)
    n_eligible = n_items - n_pos
    short = np.flatnonzero(n_eligible < n_negatives)
    if short.size:
        u = int(short[0])
        raise DataError(
            f"User row {u} has only {int(n_eligible[u])} items outside its train and test positives, fewer than "
            f"n_negatives={n_negatives} ({short.size} such users). Lower n_negatives."
        )
    out = np.full((n_users, n_negatives), -1, dtype=np.int64)
    if n_users == 0 or n_negatives == 0:
        return out.astype(np.int32)
    rng = np.random.default_rng(seed)
    # Dense users (eligible pool under 4x the request) are handled exactly, by shuffling their pool.
    dense = np.flatnonzero(n_eligible < 4 * n_negatives)
    for u in dense:  # rare: only users that have rated most of the catalogue
        pos = positives.indices[positives.indptr[u] : positives.indptr[u + 1]]
        pool = np.setdiff1d(np.arange(n_items), pos, assume_unique=True)
        out[u] = rng.choice(pool, size=n_negatives, replace=False)
    todo = np.setdiff1d(np.arange(n_users), dense)
    filled = np.zeros(n_users, dtype=np.int64)
    filled[dense] = n_negatives
    block = 2 * n_negatives + 8
    row_of_entry = np.repeat(np.arange(n_users, dtype=np.int64), n_pos)
    pair_keys = row_of_entry * n_items + positives.indices.astype(np.int64)  # sorted: rows, then items
    while todo.size:
        cand = rng.integers(0, n_items, size=(todo.size, block))
        # Reject positives: look each candidate up in the user's sorted positive list.
        is_pos = _is_positive(pair_keys, n_items, todo, cand)
        # Previously drawn items for these users (to keep distinctness across rounds).
        prev = out[todo]
        combined = np.concatenate([prev, np.where(is_pos, -1, cand)], axis=1)
        # Mark repeats within a row (keep first occurrence); -1 entries are padding.
        order = np.argsort(combined, axis=1, kind="stable")
        sorted_vals = np.take_along_axis(combined, order, axis=1)
        dup_sorted = np.zeros_like(sorted_vals, dtype=bool)
        dup_sorted[:, 1:] = sorted_vals[:, 1:] == sorted_vals[:, :-1]
        dup = np.empty_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        valid = (combined >= 0) & ~dup
        # Stable compaction: valid entries first, in their original order.
        rank = np.cumsum(valid, axis=1) - 1
        n_valid = valid.sum(axis=1)
        take = valid & (rank < n_negatives)
        rows, cols = np.nonzero(take)
        new = np.full((todo.size, n_negatives), -1, dtype=np.int64)
        new[rows, rank[rows, cols]] = combined[rows, cols]
        out[todo] = new
        filled[todo] = np.minimum(n_valid, n_negatives)
        todo = todo[filled[todo] < n_negatives]
    return out.astype(np.int32)


def _is_positive(pair_keys: np.ndarray, n_items: int, users: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(len(users), k) bool: whether each candidate is a positive of its user.

    ``pair_keys`` are the sorted ``row * n_items + item`` keys of all positives.
    """
    if pair_keys.size == 0:
        return np.zeros(cand.shape, dtype=bool)
    query = users[:, None].astype(np.int64) * n_items + cand
    loc = np.minimum(np.searchsorted(pair_keys, query), pair_keys.size - 1)
    return pair_keys[loc] == query
