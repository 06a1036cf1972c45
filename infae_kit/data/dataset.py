"""The long interaction table (:class:`Interactions`) and the users × items dataset (:class:`RecDataset`).

:func:`build_rec_dataset` turns a labelled table into binary CSR matrices the way the paper's code does:
rows labelled −1 are dropped, the remaining user ids and item ids are remapped to ``0..n-1`` in sorted order
of the original ids, and every (user, item) row of a split becomes a 1 (repeats collapse to a single 1,
whereas the official code would store a 2; the paper defines relevance as binary).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from infae_kit.errors import DataError

__all__ = [
    "TRAIN",
    "VAL",
    "TEST",
    "REMOVED",
    "SPLIT_LABELS",
    "VALID_LABELS",
    "REPEATS",
    "Interactions",
    "RecDataset",
    "dataset_statistics",
    "build_rec_dataset",
]

logger = logging.getLogger(__name__)

TRAIN, VAL, TEST, REMOVED = 0, 1, 2, -1
SPLIT_LABELS = {"train": TRAIN, "val": VAL, "test": TEST}
VALID_LABELS = (REMOVED, TRAIN, VAL, TEST)


@dataclass
class Interactions:
    """A long table of interactions: aligned 1-D arrays, one entry per rating row.

    Attributes:
        user: (n,) user id of each row. Original ids (int64) when numeric; when ``user_ids`` is set, an
            int64 code into ``user_ids`` (string ids from the generic reader).
        item: (n,) item id of each row, same convention with ``item_ids``.
        rating: (n,) float32 rating, or ``None`` when the source has none.
        timestamp: (n,) int64 Unix seconds, or ``None``.
        label: (n,) int8 split label (0 train, 1 val, 2 test, −1 removed), or ``None`` before splitting.
        user_ids: optional (n_distinct_users,) vocabulary of original (string) user ids, indexed by ``user``.
        item_ids: optional vocabulary of original item ids, indexed by ``item``.
        source: where the rows came from (path or description).
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    label: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self.user = np.asarray(self.user)
        self.item = np.asarray(self.item)
        n = self.user.shape[0]
        if self.user.ndim != 1 or self.item.ndim != 1:
            raise DataError(f"Interactions.user and .item must be 1-D; got shapes {self.user.shape} and {self.item.shape}.")
        for name in ("item", "rating", "timestamp", "label"):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.shape != (n,):
                raise DataError(
                    f"Interactions.{name} has shape {arr.shape} but Interactions.user has shape ({n},): the "
                    "columns of the table must be aligned, one entry per row."
                )
            setattr(self, name, arr)
        if self.rating is not None:
            self.rating = self.rating.astype(np.float32, copy=False)
        if self.timestamp is not None:
            self.timestamp = self.timestamp.astype(np.int64, copy=False)
        if self.label is not None:
            bad = ~np.isin(self.label, VALID_LABELS)  # checked before the int8 cast (no wrap-around)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"Split labels must be in {{-1, 0, 1, 2}}; row {first} has {int(self.label[first])} "
                    f"({int(bad.sum())} bad rows in all)."
                )
            self.label = self.label.astype(np.int8, copy=False)

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @property
    def n_rows(self) -> int:
        """Number of rows (ratings) in the table."""
        return len(self)

    def original_user_ids(self) -> np.ndarray:
        """(n,) original user id of every row (strings when the reader factorised string ids)."""
        return self.user if self.user_ids is None else self.user_ids[self.user]

    def original_item_ids(self) -> np.ndarray:
        """(n,) original item id of every row."""
        return self.item if self.item_ids is None else self.item_ids[self.item]

    def subset(self, mask_or_index: np.ndarray) -> "Interactions":
        """Rows selected by a boolean mask or an index array (vocabularies are kept)."""
        take = lambda a: None if a is None else a[mask_or_index]  # noqa: E731
        return replace(
            self,
            user=self.user[mask_or_index],
            item=self.item[mask_or_index],
            rating=take(self.rating),
            timestamp=take(self.timestamp),
            label=take(self.label),
        )

    def with_label(self, label: np.ndarray) -> "Interactions":
        """A copy with split labels attached."""
        return replace(self, label=np.asarray(label, dtype=np.int8))

    def label_counts(self) -> dict[str, int]:
        """Rows per split label (``removed``, ``train``, ``val``, ``test``)."""
        if self.label is None:
            return {"unlabelled": len(self)}
        counts = np.bincount(self.label.astype(np.int64) + 1, minlength=4)
        return {"removed": int(counts[0]), "train": int(counts[1]), "val": int(counts[2]), "test": int(counts[3])}


REPEATS = ("collapse", "count")


def _binary_csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], repeats: str = "collapse") -> sp.csr_matrix:
    """Float32 CSR with sorted indices. ``repeats="collapse"``: repeated (row, col) entries become one 1.0
    (binary relevance, the paper's definition); ``"count"``: they add up (what the paper's code builds)."""
    mat = sp.csr_matrix(
        (np.ones(rows.shape[0], dtype=np.float32), (rows.astype(np.int64), cols.astype(np.int64))), shape=shape
    )
    mat.sum_duplicates()
    if repeats == "collapse":
        mat.data[:] = 1.0
    mat.sort_indices()
    return mat


def _n_distinct(values: np.ndarray) -> int:
    """Number of distinct values (sort-based; numpy's hash-based ``unique`` is slower on large int arrays)."""
    if values.shape[0] == 0:
        return 0
    ordered = np.sort(values, kind="stable")
    return int(1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


def _n_pairs_repeated(users: np.ndarray, items: np.ndarray, n_items: int) -> int:
    """Rows minus distinct (user, item) pairs."""
    if users.shape[0] == 0:
        return 0
    keys = users.astype(np.int64) * np.int64(n_items) + items.astype(np.int64)
    return int(keys.shape[0] - _n_distinct(keys))


@dataclass
class RecDataset:
    """A recommendation dataset: binary users × items train/val/test matrices over one id space.

    Attributes:
        name: dataset name.
        train: (n_users, n_items) float32 binary CSR, sorted indices.
        val: same shape.
        test: same shape.
        user_ids: (n_users,) original id of each row.
        item_ids: (n_items,) original id of each column.
        interactions: the labelled long table behind the matrices (with −1 rows), when known.
        n_removed_users: users dropped by the "< 3 interactions" rule (all their rows labelled −1).
        n_duplicate_pairs: rows repeating an earlier (user, item) pair among the kept rows; such repeats
            collapse to a single 1 within a split, and a pair repeated across splits is kept in each split.
        seed: split seed (``None`` for the paper's fixed splits).
        source: where the data came from.
        holdout: (n_users, n_items) CSR of the train interactions that
            :func:`~infae_kit.data.holdout.with_validation_holdout` moved into ``val`` (the ``"holdout"``
            validation protocol), or ``None`` (the paper's protocol). AUC negatives and item propensities are
            drawn from :meth:`paper_train`, so they are the paper protocol's under both.
    """

    name: str
    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    interactions: Interactions | None = None
    n_removed_users: int = 0
    n_duplicate_pairs: int = 0
    seed: int | None = None
    source: str = ""
    holdout: sp.csr_matrix | None = None
    _auc_negatives_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    @property
    def validation(self) -> str:
        """The validation protocol: ``"holdout"`` when :attr:`holdout` is set, else ``"paper"``."""
        return "paper" if self.holdout is None else "holdout"

    def paper_train(self) -> sp.csr_matrix:
        """(n_users, n_items) train split of the paper's protocol: ``train`` plus the :attr:`holdout` entries
        (``train`` itself under the paper's protocol)."""
        if self.holdout is None:
            return self.train
        union = (self.train + self.holdout).tocsr()
        union.sort_indices()
        return union

    def train_val(self) -> sp.csr_matrix:
        """(n_users, n_items) binary union of train and val (the test-time context)."""
        union = (self.train + self.val).tocsr()
        union.data[:] = 1.0
        union.sort_indices()
        return union

    def all_positives(self) -> sp.csr_matrix:
        """(n_users, n_items) binary union of train, val and test."""
        union = (self.train + self.val + self.test).tocsr()
        union.data[:] = 1.0
        union.sort_indices()
        return union

    def auc_negatives(self, n_negatives: int = 50, seed: int = 42) -> np.ndarray:
        """(n_users, n_negatives) int32 sampled negatives (not in :meth:`paper_train` or test), cached by (n, seed).

        Drawn from the paper protocol's train split, so a holdout dataset has the same negatives as its source.
        """
        from infae_kit.data.negatives import sample_auc_negatives

        key = (int(n_negatives), int(seed))
        if key not in self._auc_negatives_cache:
            self._auc_negatives_cache[key] = sample_auc_negatives(self.paper_train(), self.test, n_negatives, seed)
        return self._auc_negatives_cache[key]

    def summary(self) -> dict[str, Any]:
        """Statistics of the dataset (:func:`dataset_statistics`)."""
        return dataset_statistics(self)

    def __repr__(self) -> str:
        return (
            f"RecDataset(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"train={self.train.nnz}, val={self.val.nnz}, test={self.test.nnz}, seed={self.seed}, "
            f"n_removed_users={self.n_removed_users}, n_duplicate_pairs={self.n_duplicate_pairs}"
            + (f", validation='holdout', holdout={self.holdout.nnz})" if self.holdout is not None else ")")
        )


def dataset_statistics(ds: RecDataset) -> dict[str, Any]:
    """Statistics of a dataset.

    Returns:
        dict with ``name``, ``users``, ``items``, ``interactions`` (distinct (user, item) pairs over
        train ∪ val ∪ test), ``sparsity`` (1 − interactions / (users · items)), ``train``/``val``/``test``
        (non-zeros of each binary matrix), ``rows`` (kept rating rows, repeats included, when the long table
        is known), ``users_removed``, ``duplicates_collapsed`` (``n_duplicate_pairs``), ``pairs_in_several_splits``
        ``interactions_per_user_min/median/max`` (distinct pairs per user), ``seed`` and ``validation`` (the
        validation protocol, ``"paper"`` or ``"holdout"``).
    """
    union = ds.all_positives()
    per_user = np.diff(union.indptr)
    n_pairs = int(union.nnz)
    cells = ds.n_users * ds.n_items
    rows = None
    if ds.interactions is not None and ds.interactions.label is not None:
        rows = int((ds.interactions.label >= 0).sum())
    return {
        "name": ds.name,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": n_pairs,
        "sparsity": 1.0 - n_pairs / cells if cells else float("nan"),
        "train": int(ds.train.nnz),
        "val": int(ds.val.nnz),
        "test": int(ds.test.nnz),
        "rows": rows,
        "users_removed": int(ds.n_removed_users),
        "duplicates_collapsed": int(ds.n_duplicate_pairs),
        "pairs_in_several_splits": int(ds.train.nnz + ds.val.nnz + ds.test.nnz - n_pairs),
        "interactions_per_user_min": int(per_user.min()) if per_user.size else 0,
        "interactions_per_user_median": float(np.median(per_user)) if per_user.size else 0.0,
        "interactions_per_user_max": int(per_user.max()) if per_user.size else 0,
        "seed": ds.seed,
        "validation": ds.validation,
    }


def build_rec_dataset(
    interactions: Interactions,
    *,
    name: str,
    seed: int | None = None,
    source: str | None = None,
    repeats: str = "collapse",
) -> RecDataset:
    """Binary train/val/test CSR matrices from a labelled interaction table, as the paper's code does.

    Args:
        interactions: table with ``label`` set (0 train, 1 val, 2 test, −1 removed).
        name: dataset name.
        seed: split seed recorded on the result (``None`` for a fixed split).
        source: description of the origin (defaults to ``interactions.source``).
        repeats: ``"collapse"`` (default: a repeated (user, item) row counts once, binary relevance as the
            paper defines it) or ``"count"`` (repeats add up, exactly the matrix the paper's code builds —
            on Magazine 50 train entries become 2; use it to reproduce that code's numbers digit for digit).

    Returns:
        RecDataset whose users are the users with at least one kept row, and whose items are the items of
        kept rows, both in sorted order of their original ids (codes when the ids are string vocabularies).

    Raises:
        DataError: no label, or no row left after removing −1 rows.
    """
    if repeats not in REPEATS:
        raise DataError(f"repeats must be one of {REPEATS}, got {repeats!r}")
    if interactions.label is None:
        raise DataError(f"Dataset {name!r}: the interactions have no split labels; call split_per_user first.")
    label = interactions.label
    kept = label != REMOVED
    n_all_users = _n_distinct(interactions.user)
    if not kept.any():
        raise DataError(
            f"Dataset {name!r}: no user is left after removing users with fewer than 3 interactions "
            f"({n_all_users} users, {len(interactions)} rows, every row labelled -1). Use a larger dataset."
        )
    user_raw = interactions.user[kept]
    item_raw = interactions.item[kept]
    kept_users, user_index = np.unique(user_raw, return_inverse=True)
    kept_items, item_index = np.unique(item_raw, return_inverse=True)
    n_removed_users = int(n_all_users - kept_users.shape[0])
    shape = (kept_users.shape[0], kept_items.shape[0])
    label_kept = label[kept]
    mats = {}
    for split, code in SPLIT_LABELS.items():
        sel = label_kept == code
        mats[split] = _binary_csr(user_index[sel], item_index[sel], shape, repeats)
    n_dup = _n_pairs_repeated(user_index, item_index, shape[1])
    user_ids = kept_users if interactions.user_ids is None else interactions.user_ids[kept_users]
    item_ids = kept_items if interactions.item_ids is None else interactions.item_ids[kept_items]
    if n_removed_users:
        logger.info(
            "%s: %d of %d users removed (fewer than 3 interactions); %d users kept.",
            name, n_removed_users, n_all_users, shape[0],
        )
    if n_dup:
        logger.info(
            "%s: %d rows repeat an earlier (user, item) pair; repeats collapse to a single 1 within a split.",
            name, n_dup,
        )
    return RecDataset(
        name=name,
        train=mats["train"],
        val=mats["val"],
        test=mats["test"],
        user_ids=user_ids,
        item_ids=item_ids,
        interactions=interactions,
        n_removed_users=n_removed_users,
        n_duplicate_pairs=n_dup,
        seed=seed,
        source=interactions.source if source is None else source,
    )


def _row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """(n_rows,) int64 sum of ``values`` (bool or int) over each CSR row, without an int64 copy of ``values``."""
    indptr = np.asarray(indptr, dtype=np.int64)
    out = np.zeros(indptr.shape[0] - 1, dtype=np.int64)
    nonempty = np.flatnonzero(indptr[1:] > indptr[:-1])
    if nonempty.size:
        # consecutive starts of non-empty rows delimit exactly those rows (empty rows in between add nothing)
        out[nonempty] = np.add.reduceat(values.view(np.int8) if values.dtype == bool else values,
                                        indptr[nonempty], dtype=np.int64)
    return out


def rec_dataset_from_csr(
    X: sp.csr_matrix,
    label: np.ndarray,
    *,
    name: str,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    seed: int | None = None,
    source: str = "",
) -> RecDataset:
    """Binary train/val/test CSR matrices from a users × items CSR whose stored entries are labelled rows.

    The same dataset :func:`build_rec_dataset` builds from the equivalent long table, without the long table
    (for tables of 100M rows): users without a kept row (all their rows labelled −1) and items without a kept
    row are dropped, the others keep their order, and a (user, item) pair stored twice in one split becomes a
    single 1. The result has no ``interactions`` table.

    Args:
        X: (n_users, n_items) CSR, one stored entry per rating row (values are ignored); its indices are
            sorted in place if they are not.
        label: (X.nnz,) split label of each stored entry (0 train, 1 val, 2 test, −1 removed).
        name: dataset name.
        user_ids: (n_users,) original id of each row of ``X``.
        item_ids: (n_items,) original id of each column of ``X``.
        seed: split seed recorded on the result.
        source: description of the origin.

    Returns:
        RecDataset with float32 binary CSR matrices with int32 indices.

    Raises:
        DataError: misaligned labels or ids, or no kept row.
    """
    X = X if X.format == "csr" else X.tocsr()
    label = np.asarray(label)
    user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
    if label.shape != (X.nnz,):
        raise DataError(f"Dataset {name!r}: {label.shape[0]} labels for {X.nnz} stored entries; give one per entry.")
    if user_ids.shape != (X.shape[0],) or item_ids.shape != (X.shape[1],):
        raise DataError(
            f"Dataset {name!r}: {user_ids.shape[0]} user ids and {item_ids.shape[0]} item ids for a {X.shape[0]} × "
            f"{X.shape[1]} matrix; give one id per row and one per column."
        )
    if not X.has_sorted_indices:
        order_rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
        order = np.lexsort((X.indices, order_rows))
        X = sp.csr_matrix((np.zeros(X.nnz, dtype=np.int8), X.indices[order], X.indptr), shape=X.shape)
        label = label[order]
    kept = label != REMOVED
    per_user_kept = _row_sums(kept, X.indptr)
    if not per_user_kept.any():
        raise DataError(
            f"Dataset {name!r}: no user is left after removing users with fewer than 3 interactions "
            f"({X.shape[0]} users, {X.nnz} rows, every row labelled -1). Use a larger dataset."
        )
    kept_users = np.flatnonzero(per_user_kept > 0)
    n_removed_users = int(np.count_nonzero(np.diff(X.indptr)) - kept_users.shape[0])
    item_count = np.bincount(X.indices, minlength=X.shape[1])
    if not kept.all():  # removed rows are few: subtract them rather than copy the kept ones
        item_count -= np.bincount(X.indices[~kept], minlength=X.shape[1])
    kept_items = np.flatnonzero(item_count > 0)
    item_code = None
    if kept_items.shape[0] < X.shape[1]:
        item_code = np.full(X.shape[1], -1, dtype=np.int32)
        item_code[kept_items] = np.arange(kept_items.shape[0], dtype=np.int32)
    shape = (kept_users.shape[0], kept_items.shape[0])
    mats = {}
    for split, code in SPLIT_LABELS.items():
        sel = label == code
        counts = _row_sums(sel, X.indptr)[kept_users]
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = X.indices[sel].astype(np.int32, copy=False)
        del sel
        if item_code is not None:
            indices = item_code[indices]
        index_dtype = np.int32 if indices.shape[0] < np.iinfo(np.int32).max else np.int64
        mat = sp.csr_matrix((np.ones(indices.shape[0], dtype=np.float32), indices, indptr.astype(index_dtype)),
                            shape=shape)
        mat.has_sorted_indices = True  # rows of X are sorted, so are their subsets
        if not mat.has_canonical_format:
            mat.sum_duplicates()
            mat.data[:] = 1.0
        mats[split] = mat
    # kept rows repeating the previous kept (user, item) pair of their (sorted) user
    whole_users = np.array_equal(per_user_kept[per_user_kept > 0], np.diff(X.indptr)[per_user_kept > 0])
    if whole_users:  # every user's rows all kept or all removed (the split's rule): no copy of the indices
        kept_indices, kept_indptr = X.indices, np.asarray(X.indptr, dtype=np.int64)
    else:
        kept_indices = X.indices[kept]
        kept_indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
        np.cumsum(per_user_kept, out=kept_indptr[1:])
    repeats = kept_indices[1:] == kept_indices[:-1]
    user_start = kept_indptr[1:-1]
    user_start = user_start[(user_start > 0) & (user_start < kept_indices.shape[0])]
    repeats[user_start - 1] = False  # a user's first row repeats nothing
    if whole_users:
        repeats &= kept[1:]
    n_dup = int(np.count_nonzero(repeats))
    del repeats, kept_indices
    return RecDataset(
        name=name, train=mats["train"], val=mats["val"], test=mats["test"],
        user_ids=user_ids[kept_users], item_ids=item_ids[kept_items], interactions=None,
        n_removed_users=n_removed_users, n_duplicate_pairs=n_dup, seed=seed, source=source,
    )
