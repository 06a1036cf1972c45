"""The paper's per-user random split (80 / 10 / 10 with the first shuffled row forced into test)."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from infae_kit.data.dataset import REMOVED, TEST, TRAIN, VAL, Interactions
from infae_kit.errors import DataError

__all__ = [
    "MIN_INTERACTIONS",
    "split_labels_for_positions",
    "split_counts_per_user",
    "split_per_user",
]

logger = logging.getLogger(__name__)

MIN_INTERACTIONS = 3


def split_boundaries(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int(0.8 n), int(0.9 n))`` for every count ``n``: where train and validation positions end.

    Python's ``int(0.8 * n)`` truncates a float64 product; ``np.floor`` of the same product is identical for
    ``n >= 0``.
    """
    count = np.asarray(count, dtype=np.int64)
    return np.floor(0.8 * count).astype(np.int64), np.floor(0.9 * count).astype(np.int64)


def _labels_from_boundaries(position: np.ndarray, count: np.ndarray, train_end: np.ndarray,
                            val_end: np.ndarray) -> np.ndarray:
    label = np.where(position < train_end, np.int8(TRAIN), np.where(position < val_end, np.int8(VAL), np.int8(TEST)))
    label[position == 0] = TEST
    label[count < MIN_INTERACTIONS] = REMOVED
    return label.astype(np.int8, copy=False)


def split_labels_for_positions(position: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Split label of each row given its shuffled position within its user and the user's row count.

    Rule (from the paper's preprocessing code), with ``n`` the user's count and ``p`` the position:
    ``n < 3`` → −1; ``p == 0`` → test; ``1 <= p < int(0.8 n)`` → train; ``int(0.8 n) <= p < int(0.9 n)`` →
    val; ``p >= int(0.9 n)`` → test. So n = 3 gives 1 train / 0 val / 2 test and n = 20 gives 15 / 2 / 3.

    Args:
        position: (n_rows,) int position of each row in its user's shuffled order (0-based).
        count: (n_rows,) int number of rows of the row's user.

    Returns:
        (n_rows,) int8 labels.
    """
    position = np.asarray(position, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    train_end, val_end = split_boundaries(count)
    return _labels_from_boundaries(position, count, train_end, val_end)


def split_counts_per_user(count: np.ndarray) -> np.ndarray:
    """(n_users, 3) train/val/test row counts the split rule gives to users with ``count`` rows each."""
    count = np.asarray(count, dtype=np.int64)
    train_end, val_end = split_boundaries(count)
    n_train = np.maximum(train_end - 1, 0)
    n_val = val_end - np.maximum(train_end, 1)
    n_val = np.maximum(n_val, 0)
    n_test = count - n_train - n_val
    out = np.stack([n_train, n_val, n_test], axis=1)
    out[count < MIN_INTERACTIONS] = 0
    return out


def split_per_user(interactions: Interactions, seed: int) -> Interactions:
    """The paper's split: shuffle each user's rows with a seeded generator, then label them by position.

    Rows are split as they are (a repeated (user, item) row is a row of its own, as in the paper's code);
    users with fewer than 3 rows get −1 on every row. Vectorised: one random key per row, then a stable
    sort by (user, key) gives each row's position within its user.

    Args:
        interactions: table without (or with, ignored) labels; all other columns are kept aligned.
        seed: seed of the ``numpy.random.Generator`` that shuffles.

    Returns:
        A copy of ``interactions`` with ``label`` set, in the same row order.

    Raises:
        DataError: the table is empty, or every user has fewer than 3 rows.
    """
    n_rows = len(interactions)
    where = interactions.source or "the interactions"
    if n_rows == 0:
        raise DataError(f"Cannot split {where}: the table has no rows.")
    rng = np.random.default_rng(seed)
    random_key = rng.permutation(n_rows)
    _, user_code, user_count = np.unique(interactions.user, return_inverse=True, return_counts=True)
    user_code = user_code.ravel()
    order = np.lexsort((random_key, user_code))  # sorted by user, then by random key
    sorted_user = user_code[order]
    group_start = np.searchsorted(sorted_user, np.arange(user_count.shape[0]))
    position = np.empty(n_rows, dtype=np.int64)
    position[order] = np.arange(n_rows) - group_start[sorted_user]
    label = split_labels_for_positions(position, user_count[user_code])
    n_users = int(user_count.shape[0])
    n_removed = int((user_count < MIN_INTERACTIONS).sum())
    if n_removed == n_users:
        raise DataError(
            f"No user is left in {where} after removing users with fewer than {MIN_INTERACTIONS} "
            f"interactions (all {n_users} users have fewer). The paper's split needs at least 3 per user."
        )
    if n_removed:
        logger.info(
            "split_per_user(%s, seed=%d): %d of %d users have fewer than %d interactions and are removed "
            "(%d rows labelled -1).",
            where, seed, n_removed, n_users, MIN_INTERACTIONS, int((label == REMOVED).sum()),
        )
    return interactions.with_label(label)


_SPLIT_BLOCK_ENTRIES = 1 << 22  # entries labelled per block of whole users (bounds the temporaries)


def split_labels_csr(X: sp.csr_matrix, seed: int) -> np.ndarray:
    """The paper's split applied to a users × items CSR whose stored entries are the rating rows.

    The same rule as :func:`split_per_user` (each user's rows in a seeded uniformly random order, labelled by
    position with :func:`split_labels_for_positions`; users with fewer than 3 rows get −1), computed without the
    long table: users are taken in blocks of about 4M entries, each entry gets a 40-bit random key, and one
    integer sort per block orders every user's entries by key. Memory beyond the labels is O(block), so it
    labels the 100M rows of a Netflix-sized matrix in a few seconds. The random stream differs from
    :func:`split_per_user`'s, so the two give different (equally distributed) splits of the same data; the
    number of train / val / test rows of every user is the same (:func:`split_counts_per_user`).

    Args:
        X: (n_users, n_items) CSR; every stored entry (zero values included, repeated columns included) is
            one rating row of its user.
        seed: seed of the ``numpy.random.Generator`` that orders the rows; the keys are drawn block after
            block from one stream, so the labels do not depend on the block size.

    Returns:
        (X.nnz,) int8 labels aligned with ``X.indices`` (0 train, 1 val, 2 test, −1 removed).

    Raises:
        DataError: ``X`` has no stored entry, or every user has fewer than 3.
    """
    indptr = np.asarray(X.indptr, dtype=np.int64)
    n_users = indptr.shape[0] - 1
    nnz = int(indptr[-1])
    if nnz == 0:
        raise DataError(f"Cannot split a {X.shape[0]} × {X.shape[1]} matrix without any stored entry.")
    count = np.diff(indptr)
    if not (count >= MIN_INTERACTIONS).any():
        raise DataError(
            f"No user is left after removing users with fewer than {MIN_INTERACTIONS} interactions (all "
            f"{int((count > 0).sum())} users with interactions have fewer). The paper's split needs at least 3 "
            "per user."
        )
    rng = np.random.default_rng(seed)
    labels = np.empty(nnz, dtype=np.int8)
    start_user = 0
    while start_user < n_users:
        # whole users, about _SPLIT_BLOCK_ENTRIES entries (at least one user)
        limit = indptr[start_user] + _SPLIT_BLOCK_ENTRIES
        stop_user = int(np.searchsorted(indptr, limit, side="right")) - 1
        stop_user = min(max(stop_user, start_user + 1), start_user + _SPLIT_BLOCK_ENTRIES)  # row < 2^22
        lo, hi = int(indptr[start_user]), int(indptr[stop_user])
        if hi > lo:
            local_count = count[start_user:stop_user]
            local_row = np.repeat(np.arange(stop_user - start_user, dtype=np.int64), local_count)
            key = (local_row << 40) | rng.integers(0, 1 << 40, size=hi - lo, dtype=np.int64)
            order = np.argsort(key, kind="stable")
            del key
            # sorted by user first, so the k-th sorted entry belongs to the same user as the k-th stored one:
            # its position in the user's random order is k minus the user's first entry
            position = np.arange(hi - lo, dtype=np.int64) - (indptr[start_user:stop_user] - lo)[local_row]
            train_end, val_end = split_boundaries(local_count)
            labels[lo + order] = _labels_from_boundaries(position, local_count[local_row], train_end[local_row],
                                                         val_end[local_row])
        start_user = stop_user
    n_removed = int(((count > 0) & (count < MIN_INTERACTIONS)).sum())
    if n_removed:
        logger.info(
            "split_labels_csr(seed=%d): %d of %d users have fewer than %d interactions and are removed.",
            seed, n_removed, int((count > 0).sum()), MIN_INTERACTIONS,
        )
    return labels
