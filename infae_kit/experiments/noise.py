"""The paper's noise model (§5, "How robust are DISTILL-CF and ∞-AE to noise?"): for every user, flip x % of all
the items of the catalogue (0 ↔ 1).

The experiment adds noise to the **train** matrix only, then samples it, trains on the sample and evaluates on
the original, clean test set. :func:`add_noise` therefore takes a matrix, never a dataset: the caller decides
what is noisy. To run a dataset-level pipeline on noisy train data, make a copy of the dataset whose ``train``
is the noisy matrix (e.g. ``dataclasses.replace(data, train=add_noise(data.train, 5, seed=0),
_auc_negatives_cache={})``; the fresh cache keeps the copy from sharing the clean dataset's AUC negatives, and
its own negatives then avoid the noisy train positives); its ``val`` and ``test`` stay clean.

Example:
    >>> noisy = add_noise(data.train, percent=5, seed=0)   # doctest: +SKIP
    >>> (noisy != data.train).sum(axis=1)                   # round(0.05 · n_items) in every row  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, binary_interactions, check_seed
from infae_kit.errors import ParameterError

__all__ = ["add_noise", "check_percent", "flips_per_user"]

_BLOCK_CELLS = 1 << 22  # users × items random keys drawn at once (16 MiB of float32)


def flips_per_user(n_items: int, percent: float) -> int:
    """How many items :func:`add_noise` flips in every user's row: ``percent``·``n_items``/100 rounded to the
    nearest integer (halves up)."""
    return int(math.floor(percent * n_items / 100.0 + 0.5))


def check_percent(percent: Any) -> float:
    """``percent`` as a ``float`` in [0, 100] (a share of the catalogue, in percent); else a :class:`ParameterError`."""
    if isinstance(percent, (bool, np.bool_)) or not isinstance(percent, (int, float, np.integer, np.floating)):
        raise ParameterError(f"percent must be a number of percent in [0, 100], got {percent!r}.")
    value = float(percent)
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ParameterError(
            f"percent must be in [0, 100] (the share of the catalogue flipped for each user), got {percent!r}; "
            "pass 5 for 5 %, not 0.05 for 5 %."
        )
    return value


def add_noise(train: MatrixLike, percent: float, *, seed: int = 0) -> sp.csr_matrix:
    """Flip, in every user's row, ``k = flips_per_user(n_items, percent)`` distinct items drawn uniformly from
    the whole catalogue: an interaction there is removed, a missing one is added (0 ↔ 1).

    Every row, empty or not, gets exactly k flips, so ``(noisy != train).sum(axis=1) == k`` for every user and
    ``percent=0`` returns the (binarised) input. The matrix stays sparse: the k items of a block of users are
    the k smallest of a block of random keys (``argpartition``), with at most ``2**22`` keys (16 MiB) in
    memory at once, and the flips are applied as a sparse ``(train + flips) mod 2``; nothing of
    ``n_users × n_items`` is densified. Output size grows with the noise: about ``nnz + n_users · k`` entries.

    Args:
        train: (n_users, n_items) binary interactions (scipy.sparse or dense; any stored non-zero counts as 1).
        percent: x, the percent of the catalogue flipped per user, in [0, 100].
        seed: seed of ``numpy.random.default_rng``; the result is a deterministic function of the arguments.

    Returns:
        (n_users, n_items) float32 binary CSR with sorted indices.

    Raises:
        ParameterError: ``percent`` outside [0, 100] or not a number, a bad seed.
        DataError: ``train`` is not a valid interaction matrix (see ``check_interactions``).
    """
    percent = check_percent(percent)
    seed = check_seed(seed)
    X = binary_interactions(train)
    n_users, n_items = X.shape
    k = flips_per_user(n_items, percent)
    if k == 0:
        return X
    rng = np.random.default_rng(seed)
    if k == n_items:
        flip_items = np.tile(np.arange(n_items, dtype=np.int32), n_users)
    else:
        block = max(1, _BLOCK_CELLS // n_items)
        parts = []
        for start in range(0, n_users, block):  # blocks of users, vectorised within
            keys = rng.random((min(block, n_users - start), n_items), dtype=np.float32)
            parts.append(np.argpartition(keys, k - 1, axis=1)[:, :k].astype(np.int32).ravel())
        flip_items = np.concatenate(parts)
    indptr = np.arange(0, n_users * k + 1, k, dtype=np.int64)
    flips = sp.csr_matrix((np.ones(n_users * k, dtype=np.float32), flip_items, indptr), shape=X.shape)
    noisy = (X + flips).tocsr()
    noisy.data[noisy.data != 1.0] = 0.0  # 1 + 1: an interaction flipped away
    noisy.eliminate_zeros()
    noisy.sort_indices()
    return noisy
