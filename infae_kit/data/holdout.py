"""Validation protocols: the paper's split as it is, or a seeded validation holdout for users without one.

Under the paper's protocol (``"paper"``, the default) hyper-parameters are picked on each user's validation
items with the train items as context, and the test pass uses train + validation as context. On sparse data
most users have no validation item (Magazine: 2,681 of 3,092), so validation metrics average over few users
and pick λ, DISTILL-CF's best step and the sweeps' λ with little signal.

The ``"holdout"`` protocol (:func:`with_validation_holdout`) moves, for every user without a validation item
and with at least ``min_train_items`` train items, one train item drawn uniformly at random (seeded) into
validation. Train + validation is unchanged, and so is test; AUC negatives and PSP propensities come from
:meth:`~infae_kit.data.RecDataset.paper_train` (train plus the moved items), so the test pass scores the same
context against the same targets, negatives and weights as under the paper's protocol. What changes is the
validation signal and the train split the models are fitted on (the moved items leave it).

Example:
    >>> data = load_dataset("magazine", validation="holdout")                        # doctest: +SKIP
    >>> data.validation, data.holdout.nnz                                            # doctest: +SKIP
    ('holdout', 856)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import check_seed, is_int
from infae_kit.data.dataset import REMOVED, TRAIN, VAL, Interactions, RecDataset
from infae_kit.errors import DataError, ParameterError

__all__ = [
    "VALIDATION_PROTOCOLS",
    "DEFAULT_MIN_TRAIN_ITEMS",
    "check_validation_protocol",
    "users_without_validation",
    "with_validation_holdout",
    "apply_validation_protocol",
    "dataset_label",
]

VALIDATION_PROTOCOLS = ("paper", "holdout")
"""``"paper"``: the split as it is (the paper's protocol); ``"holdout"``: :func:`with_validation_holdout`."""
DEFAULT_MIN_TRAIN_ITEMS = 2
"""Train items a user needs to give one to validation: with 2, every such user keeps at least one as context."""


def check_validation_protocol(value: Any) -> str:
    """``value`` when it is one of :data:`VALIDATION_PROTOCOLS`; else a :class:`ParameterError` naming them."""
    if value not in VALIDATION_PROTOCOLS:
        raise ParameterError(
            f"validation must be one of {VALIDATION_PROTOCOLS} ('paper': the split as it is; 'holdout': one train "
            f"item of every user without a validation item moved into validation), got {value!r}."
        )
    return str(value)


def users_without_validation(data: RecDataset) -> np.ndarray:
    """(n,) int64 indices of the users of ``data`` without any validation item, in increasing order."""
    return np.flatnonzero(np.diff(sp.csr_matrix(data.val).indptr) == 0).astype(np.int64)


def with_validation_holdout(data: RecDataset, *, seed: int = 42,
                            min_train_items: int = DEFAULT_MIN_TRAIN_ITEMS) -> RecDataset:
    """``data`` with one seeded train item of every user without validation moved into validation.

    Every user with no validation item and at least ``min_train_items`` train items gets one of its train
    interactions, drawn uniformly at random, moved into ``val``; every other user is untouched. So
    ``train' + val' == train + val`` (values included), ``train'`` is a subset of ``train`` and ``test`` is the
    same matrix: the test pass (train + validation as context) is the paper protocol's. The moved entries are
    kept as ``holdout``, from which :meth:`~infae_kit.data.RecDataset.paper_train` rebuilds ``train`` for the AUC
    negatives and the propensities. The labelled table behind the matrices, when there is one, is relabelled
    the same way (every train row of a moved pair becomes a validation row).

    The dataset keeps its ``name`` (per-dataset configurations still apply); its train matrix differs whenever
    an item moved, so :func:`~infae_kit.caching.dataset_fingerprint`, and every cache keyed by it, tells it from
    the source. When no user qualifies the result holds the same matrices, and shares the source's cache entries.

    Args:
        data: a dataset under the paper's protocol (``data.holdout`` is ``None``).
        seed: seed of the ``numpy.random.Generator`` that draws the moved items.
        min_train_items: train items a user needs to give one (integer ≥ 1; with 1 a user may be left without
            any train item, so its validation context is empty).

    Returns:
        A new :class:`~infae_kit.data.RecDataset` with ``validation == "holdout"``; ``data`` is not changed.

    Raises:
        ParameterError: ``data`` is not a RecDataset, a seed that is not an integer ≥ 0, ``min_train_items`` not
            an integer ≥ 1.
        DataError: ``data`` already has a holdout, or its matrices differ in shape, or its labelled table does not
            match its matrices.
    """
    if not isinstance(data, RecDataset):
        raise ParameterError(f"with_validation_holdout takes a RecDataset (from load_dataset), got "
                             f"{type(data).__name__}.")
    seed = check_seed(seed)
    if not is_int(min_train_items) or min_train_items < 1:
        raise ParameterError(f"min_train_items must be an integer ≥ 1 (train items a user needs to give one to "
                             f"validation; default {DEFAULT_MIN_TRAIN_ITEMS}), got {min_train_items!r}.")
    if data.holdout is not None:
        raise DataError(f"Dataset {data.name!r} already has a validation holdout ({data.holdout.nnz} moved items); "
                        "apply with_validation_holdout to the paper-protocol dataset (load_dataset(name)) instead.")
    if not (data.train.shape == data.val.shape == data.test.shape):
        raise DataError(f"Dataset {data.name!r}: train {data.train.shape}, val {data.val.shape} and test "
                        f"{data.test.shape} must have the same shape.")
    train = sp.csr_matrix(data.train, copy=True)
    train.sum_duplicates()
    train.sort_indices()
    n_train = np.diff(train.indptr).astype(np.int64)
    n_val = np.diff(sp.csr_matrix(data.val).indptr)
    eligible = np.flatnonzero((n_val == 0) & (n_train >= int(min_train_items)))
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, n_train[eligible]) if eligible.size else np.zeros(0, dtype=np.int64)
    positions = train.indptr[eligible].astype(np.int64) + offsets
    moved_per_user = np.zeros(data.n_users, dtype=np.int64)
    moved_per_user[eligible] = 1
    moved_indptr = np.concatenate([[0], np.cumsum(moved_per_user)])
    keep = np.ones(train.nnz, dtype=bool)
    keep[positions] = False
    shape = train.shape
    new_train = sp.csr_matrix((train.data[keep], train.indices[keep], train.indptr - moved_indptr), shape=shape)
    moved = sp.csr_matrix((train.data[positions], train.indices[positions], moved_indptr), shape=shape)
    new_val = (sp.csr_matrix(data.val) + moved).tocsr()
    for mat in (new_train, moved, new_val):
        mat.has_sorted_indices = False
        mat.sort_indices()
    interactions = None if data.interactions is None else _relabel_moved(data.interactions, moved, data.name)
    return replace(data, train=new_train, val=new_val, holdout=moved, interactions=interactions,
                   _auc_negatives_cache={})


def _relabel_moved(table: Interactions, moved: sp.csr_matrix, name: str) -> Interactions:
    """``table`` with every train row of a moved (user, item) pair labelled validation.

    Matrix row / column ``k`` is the ``k``-th smallest user / item id among the kept rows (how
    :func:`~infae_kit.data.dataset.build_rec_dataset` numbers them).
    """
    if table.label is None:
        raise DataError(f"Dataset {name!r}: its interaction table has no split labels, so it cannot be relabelled.")
    label = table.label
    kept = label != REMOVED
    users, items = np.unique(table.user[kept]), np.unique(table.item[kept])
    if (users.shape[0], items.shape[0]) != moved.shape:
        raise DataError(
            f"Dataset {name!r}: its interaction table holds {users.shape[0]} users × {items.shape[0]} items but its "
            f"matrices are {moved.shape[0]} × {moved.shape[1]}; the table is not the one behind the matrices. Drop it "
            "(dataclasses.replace(data, interactions=None)) before moving validation items."
        )
    train_rows = np.flatnonzero(label == TRAIN)
    n_items = np.int64(moved.shape[1])
    row_keys = (np.searchsorted(users, table.user[train_rows]).astype(np.int64) * n_items
                + np.searchsorted(items, table.item[train_rows]))
    moved_users = np.repeat(np.arange(moved.shape[0], dtype=np.int64), np.diff(moved.indptr))
    moved_keys = moved_users * n_items + moved.indices
    new_label = label.copy()
    new_label[train_rows[np.isin(row_keys, moved_keys)]] = VAL
    return table.with_label(new_label)


def apply_validation_protocol(data: RecDataset, validation: str = "paper", *, seed: int = 42) -> RecDataset:
    """``data`` under ``validation``: itself for ``"paper"``, :func:`with_validation_holdout` for ``"holdout"``.

    Args:
        data: a dataset under the paper's protocol.
        validation: one of :data:`VALIDATION_PROTOCOLS`.
        seed: the holdout's seed.

    Raises:
        ParameterError: an unknown protocol (and what :func:`with_validation_holdout` raises).
    """
    if check_validation_protocol(validation) == "paper":
        return data
    return with_validation_holdout(data, seed=seed)


def dataset_label(dataset: str, validation: str = "paper") -> str:
    """The name results and figures of ``dataset`` under ``validation`` are filed under.

    ``"magazine"`` under the paper's protocol, ``"magazine-holdout"`` under the holdout: a holdout run's result
    file (``04_sampling-magazine-holdout.json``) never replaces the paper protocol's.

    Raises:
        ParameterError: an unknown protocol.
    """
    return str(dataset) if check_validation_protocol(validation) == "paper" else f"{dataset}-holdout"
