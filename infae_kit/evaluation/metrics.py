"""Ranking metrics of the paper (Appendix B.5), exactly as its official code computes them.

Every ranking metric returns one value per user, so that callers can average over any subset of users
(cold-start buckets, for instance). Values are fractions in ``[0, 1]``; the ×100 percent scaling of the paper's
tables happens in :mod:`infae_kit.evaluation.protocol`, not here. A user with no target item gets 0 for HR, nDCG and PSP
and is still counted by the caller's mean (the protocol of ``docs/evaluation.md``).

Definitions, with ``T`` a user's target items and ``c = min(|T|, k)``:

* ``HR@k = |top-k ∩ T| / c`` (recall capped at ``k``).
* ``nDCG@k = DCG / IDCG`` with binary gains, ``DCG = Σ_{r ≤ k, item at rank r in T} 1 / log2(r + 1)`` and
  ``IDCG = Σ_{r ≤ c} 1 / log2(r + 1)``.
* ``PSP@k = (Σ_{hits i in the top-k} w(i) / c) / (Σ of the c largest w(j), j ∈ T)`` — the denominator is *not*
  divided by ``c`` (the paper's code does this; it is why ML-1M's PSP@10 is ≈ 3 and Magazine's ≈ 13).
  ``w(i) = 1 + C (n_i + B)^(−A)`` is the inverse propensity of :func:`propensity_weights`.
* ``AUC``: one global ROC-AUC over the pooled scores of every user's targets (label 1) and sampled negatives
  (label 0), ties counting 1/2 (:func:`pooled_auc`, :func:`auc_pools`).

Everything is vectorised over users (no Python loop over users); :func:`top_k_items` works in row chunks so
that its temporary memory stays bounded for 20,000-user batches.

Example:
    >>> top = top_k_items(scores, k=100, exclude=train)            # (n_users, 100) item indices
    >>> hr10 = hit_rate_at_k(top, test, k=10).mean()
    >>> w = propensity_weights(train)
    >>> psp10 = psp_at_k(top, test, k=10, weights=w).mean()
    >>> auc = pooled_auc(*auc_pools(scores, test, negatives))
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from infae_kit.errors import NumericalError, ParameterError

__all__ = [
    "PROPENSITY_A",
    "PROPENSITY_B",
    "top_k_items",
    "hit_mask",
    "hit_rate_at_k",
    "ndcg_at_k",
    "psp_at_k",
    "ranking_metrics",
    "propensity_weights",
    "pooled_auc",
    "auc_pools",
]

PROPENSITY_A = 0.55
"""Exponent ``A`` of the propensity model (paper Appendix B.5)."""
PROPENSITY_B = 1.5
"""Offset ``B`` of the propensity model (paper Appendix B.5)."""

# Elements of a (rows × items) block handled at once by top_k_items (≈ 1 MiB of float32). Small blocks keep
# argpartition's int64 index temporaries in the allocator's reusable heap: with 64 MiB blocks every call
# mmap'ed and page-faulted ~180 MB afresh, and top-k over ML-1M took 0.25–0.76 s instead of 0.16 s.
_CHUNK_ELEMENTS = 1 << 18


# ----------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------
def _check_k(k, name: str = "k") -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"{name} must be a positive integer, got {k!r}.")
    return int(k)


def _as_csr(matrix, name: str) -> sp.csr_matrix:
    """``matrix`` as a canonical csr (sorted indices, no duplicates, no explicit zeros); copies only if needed."""
    if not sp.issparse(matrix):
        raise ParameterError(
            f"{name} must be a scipy.sparse matrix (users × items csr), got {type(matrix).__name__}; "
            "convert with scipy.sparse.csr_matrix(...)."
        )
    if matrix.ndim != 2:
        raise ParameterError(f"{name} must be 2-D (users × items), got shape {matrix.shape}.")
    csr = matrix if matrix.format == "csr" else matrix.tocsr()
    needs_copy = (not csr.has_canonical_format) or (csr.nnz and not np.all(csr.data != 0))
    if needs_copy:
        csr = csr.copy()
        csr.sum_duplicates()  # also sorts indices
        csr.eliminate_zeros()
    return csr


def _check_top_k(top_k, n_rows: int, n_items: int, k: int, truncate: bool = True) -> np.ndarray:
    top_k = np.asarray(top_k)
    if top_k.ndim != 2:
        raise ParameterError(f"top_k must be a 2-D (n_users, k) array of item indices, got shape {top_k.shape}.")
    if not np.issubdtype(top_k.dtype, np.integer):
        raise ParameterError(f"top_k must hold integer item indices, got dtype {top_k.dtype}.")
    if top_k.shape[0] != n_rows:
        raise ParameterError(
            f"top_k has {top_k.shape[0]} rows but targets has {n_rows} users; pass the same users in the same order."
        )
    needed = min(k, n_items)
    if top_k.shape[1] < needed:
        raise ParameterError(
            f"top_k has {top_k.shape[1]} columns but k={k} needs at least {needed}; "
            f"compute top_k_items(scores, k={k}) (or a larger k)."
        )
    if top_k.size and (top_k.min() < 0 or top_k.max() >= n_items):
        raise ParameterError(
            f"top_k holds item indices outside [0, {n_items}) (min {top_k.min()}, max {top_k.max()}); "
            "it must index the columns of targets."
        )
    return top_k[:, :needed] if truncate else top_k


# ----------------------------------------------------------------------------------------------------------
# top-k
# ----------------------------------------------------------------------------------------------------------
def top_k_items(scores: np.ndarray, k: int, exclude: sp.spmatrix | None = None, *, inplace: bool = False) -> np.ndarray:
    """The ``k`` best-scored items of every row, best first.

    Ties are broken deterministically: among equal scores, the lower item index comes first (both for which
    items make the cut at the k-th place and for their order). Excluded items get score ``-inf``; a score that is
    already ``-inf`` in ``scores`` is treated as the lowest finite value, so an excluded item is returned only
    when fewer than ``k`` non-excluded items are left in its row.

    Args:
        scores: ``(n, m)`` float scores (higher is better). NaN is refused (a failed solve upstream).
        k: number of items to return; ``k > m`` returns all ``m`` items ranked (shape ``(n, m)``).
        exclude: optional ``(n, m)`` sparse matrix; its stored non-zero entries are never returned (the user's
            train positives). Not modified.
        inplace: if True, write the ``-inf`` of excluded items into ``scores`` itself instead of a temporary
            copy (saves memory for large batches; ``scores`` is modified).

    Returns:
        ``(n, min(k, m))`` int64 item indices sorted by descending score.

    Raises:
        ParameterError: wrong shapes, types or ``k``.
        NumericalError: ``scores`` contains NaN.
    """
    k = _check_k(k)
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ParameterError(f"scores must be a 2-D (n_users, n_items) array, got shape {scores.shape}.")
    if not np.issubdtype(scores.dtype, np.floating):
        if inplace:
            raise ParameterError(f"inplace=True needs floating scores, got dtype {scores.dtype}.")
        scores = scores.astype(np.float64)
    n_rows, n_items = scores.shape
    if exclude is not None:
        exclude = _as_csr(exclude, "exclude")
        if exclude.shape != scores.shape:
            raise ParameterError(
                f"exclude has shape {exclude.shape} but scores has shape {scores.shape}; they must match "
                "(same users in the same order, same items)."
            )
    k_eff = min(k, n_items)
    out = np.empty((n_rows, k_eff), dtype=np.int64)
    if n_rows == 0 or k_eff == 0:
        return out
    lowest = np.finfo(scores.dtype).min
    chunk_rows = max(1, _CHUNK_ELEMENTS // max(n_items, 1))
    for start in range(0, n_rows, chunk_rows):  # loop over row chunks, not users
        stop = min(start + chunk_rows, n_rows)
        block = scores[start:stop]
        if np.isnan(block).any():
            bad = start + np.flatnonzero(np.isnan(block).any(axis=1))
            raise NumericalError(
                f"scores contain NaN in {bad.size} row(s) (first: row {bad[0]}); the model's solve probably failed "
                "(e.g. λ = 0 in float32) — use a positive regularisation or float64."
            )
        if exclude is not None:
            if not inplace:
                block = block.copy()
            sub = exclude[start:stop]
            if sub.nnz:
                if np.isneginf(block).any():
                    block[np.isneginf(block)] = lowest
                rows = np.repeat(np.arange(stop - start), np.diff(sub.indptr))
                block[rows, sub.indices] = -np.inf
        out[start:stop] = _top_k_block(block, k_eff)
    return out


def _top_k_block(block: np.ndarray, k: int) -> np.ndarray:
    """Top-k of a dense block with lower-index-first tie-breaking (see :func:`top_k_items`)."""
    n_rows, n_items = block.shape
    row_ids = np.arange(n_rows)[:, None]
    if k == n_items:
        chosen = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    else:
        candidates = np.argpartition(block, n_items - k, axis=1)[:, n_items - k :]
        threshold = block[row_ids, candidates].min(axis=1)  # k-th largest value of each row
        # Rows where more items equal the threshold than argpartition kept are ambiguous: argpartition picked
        # an arbitrary subset of the tied items. Re-select those rows so that the lowest indices win.
        ties_in_row = np.count_nonzero(block == threshold[:, None], axis=1)
        ties_kept = np.count_nonzero(block[row_ids, candidates] == threshold[:, None], axis=1)
        ambiguous = np.flatnonzero(ties_in_row > ties_kept)
        chosen = np.sort(candidates, axis=1)
        if ambiguous.size:
            sub = block[ambiguous]
            t = threshold[ambiguous][:, None]
            above = sub > t
            equal = sub == t
            n_needed = k - np.count_nonzero(above, axis=1)
            # keep the first n_needed tied items of each row (a running count of ties along the row;
            # counting over a uint8 view is ~15x faster than over bool)
            tie_rank = np.cumsum(equal.view(np.uint8), axis=1, dtype=np.int32)
            keep = above | (equal & (tie_rank <= n_needed[:, None]))
            chosen[ambiguous] = np.nonzero(keep)[1].reshape(ambiguous.size, k)  # ascending item index per row
    chosen_scores = block[row_ids, chosen]
    # chosen is in ascending item order, so a stable sort on -score puts equal scores lower-index first.
    order = np.argsort(-chosen_scores, axis=1, kind="stable")
    return np.take_along_axis(np.asarray(chosen), order, axis=1)


# ----------------------------------------------------------------------------------------------------------
# hits and ranking metrics
# ----------------------------------------------------------------------------------------------------------
def hit_mask(top_k: np.ndarray, targets: sp.spmatrix) -> np.ndarray:
    """Whether each recommended item is a target of its user.

    Vectorised membership test: every (row, item) pair becomes the key ``row · m + item``; the keys of a
    canonical csr are sorted, so one ``np.searchsorted`` answers all pairs.

    Args:
        top_k: ``(n, k)`` int item indices.
        targets: ``(n, m)`` sparse matrix of target items (stored non-zeros are targets).

    Returns:
        ``(n, k)`` bool.
    """
    targets = _as_csr(targets, "targets")
    n_rows, n_items = targets.shape
    top_k = _check_top_k(top_k, n_rows, n_items, k=1, truncate=False)
    return _hits(top_k, targets)


def _hits(top_k: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
    n_rows, n_items = targets.shape
    if targets.nnz == 0 or top_k.size == 0:
        return np.zeros(top_k.shape, dtype=bool)
    target_rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(targets.indptr))
    target_keys = target_rows * n_items + targets.indices.astype(np.int64)  # sorted (canonical csr)
    query_keys = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + top_k.astype(np.int64)
    pos = np.searchsorted(target_keys, query_keys)
    pos_clipped = np.minimum(pos, target_keys.size - 1)
    return target_keys[pos_clipped] == query_keys


def _target_counts(targets: sp.csr_matrix) -> np.ndarray:
    return np.diff(targets.indptr).astype(np.int64)


def _checked_inputs(top_k, targets, k: int) -> tuple[int, np.ndarray, sp.csr_matrix]:
    """Validated ``(k, top_k, targets)`` shared by every ranking metric."""
    k = _check_k(k)
    targets = _as_csr(targets, "targets")
    return k, _check_top_k(top_k, *targets.shape, k=k), targets


def hit_rate_at_k(top_k: np.ndarray, targets: sp.spmatrix, k: int) -> np.ndarray:
    """HR@k of every user: ``|top-k ∩ T| / min(|T|, k)``; 0 for users without targets.

    Args:
        top_k: ``(n, ≥k)`` int item indices, best first (the first ``k`` columns are used; fewer are accepted
            only when the catalogue has fewer than ``k`` items).
        targets: ``(n, m)`` sparse matrix of target items.
        k: cut-off.

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    k, top_k, targets = _checked_inputs(top_k, targets, k)
    return _hit_rate(_hits(top_k, targets), _target_counts(targets), k)


def _hit_rate(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    cap = np.minimum(n_targets, k)
    n_hits = hits[:, :k].sum(axis=1)
    return np.divide(n_hits, cap, out=np.zeros(len(cap), dtype=np.float64), where=cap > 0)


def ndcg_at_k(top_k: np.ndarray, targets: sp.spmatrix, k: int) -> np.ndarray:
    """nDCG@k of every user, binary gains, IDCG over the first ``min(|T|, k)`` ranks; 0 without targets.

    Args:
        top_k: ``(n, ≥k)`` int item indices, best first.
        targets: ``(n, m)`` sparse matrix of target items.
        k: cut-off.

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    k, top_k, targets = _checked_inputs(top_k, targets, k)
    return _ndcg(_hits(top_k, targets), _target_counts(targets), k)


def _ndcg(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    hits = hits[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2, dtype=np.float64))  # rank r -> 1/log2(r+1)
    dcg = hits @ discounts
    cap = np.minimum(n_targets, hits.shape[1])
    ideal_prefix = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_prefix[cap]
    return np.divide(dcg, idcg, out=np.zeros(len(cap), dtype=np.float64), where=cap > 0)


def psp_at_k(top_k: np.ndarray, targets: sp.spmatrix, k: int, weights: np.ndarray) -> np.ndarray:
    """PSP@k of every user (propensity-scored precision, the paper's code's normalisation).

    ``PSP@k = (Σ_{hits i in the top-k} w(i) / c) / (Σ of the c largest w(j) over the user's targets)`` with
    ``c = min(|T|, k)``; 0 for users without targets. Note the denominator is not divided by ``c``.

    Args:
        top_k: ``(n, ≥k)`` int item indices, best first.
        targets: ``(n, m)`` sparse matrix of target items.
        k: cut-off.
        weights: ``(m,)`` positive inverse propensities (:func:`propensity_weights`).

    Returns:
        ``(n,)`` float64.
    """
    k, top_k, targets = _checked_inputs(top_k, targets, k)
    weights = _check_weights(weights, targets.shape[1])
    return _psp(top_k, _hits(top_k, targets), targets, k, weights)


def _check_weights(weights, n_items: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_items,):
        raise ParameterError(
            f"weights must have shape ({n_items},) (one per item column of targets), got {weights.shape}; "
            "compute them with propensity_weights(train)."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ParameterError("weights must be finite and positive (inverse propensities).")
    return weights


def _psp(top_k: np.ndarray, hits: np.ndarray, targets: sp.csr_matrix, k: int, weights: np.ndarray) -> np.ndarray:
    n_rows = targets.shape[0]
    n_targets = _target_counts(targets)
    cap = np.minimum(n_targets, k)
    top_k = top_k[:, :k]
    hits = hits[:, :k]
    user_psp = np.where(hits, weights[top_k], 0.0).sum(axis=1)
    user_psp = np.divide(user_psp, cap, out=np.zeros(n_rows), where=cap > 0)
    # best achievable: the c largest weights among each user's targets, without a 1/c factor
    target_rows = np.repeat(np.arange(n_rows), n_targets)
    target_weights = weights[targets.indices]
    order = np.lexsort((-target_weights, target_rows))  # by row, then weight descending
    position_in_row = np.arange(targets.nnz) - targets.indptr[target_rows[order]]
    keep = position_in_row < cap[target_rows[order]]
    best = np.bincount(target_rows[order][keep], weights=target_weights[order][keep], minlength=n_rows)
    return np.divide(user_psp, best, out=np.zeros(n_rows), where=cap > 0)


def ranking_metrics(
    top_k: np.ndarray,
    targets: sp.spmatrix,
    ks: Iterable[int] = (10, 100),
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """HR@k, NDCG@k (and PSP@k when ``weights`` is given) for several ``k`` with one membership lookup.

    Args:
        top_k: ``(n, ≥max(ks))`` int item indices, best first.
        targets: ``(n, m)`` sparse matrix of target items.
        ks: cut-offs.
        weights: optional ``(m,)`` inverse propensities; PSP is skipped when None.

    Returns:
        ``{"HR@k": (n,), "NDCG@k": (n,), "PSP@k": (n,), ...}`` per-user float64 arrays (fractions, not %).
    """
    ks = [_check_k(k, "ks entry") for k in ks]
    if not ks:
        raise ParameterError("ks must name at least one cut-off.")
    _, top_k, targets = _checked_inputs(top_k, targets, max(ks))
    if weights is not None:
        weights = _check_weights(weights, targets.shape[1])
    hits = _hits(top_k, targets)
    n_targets = _target_counts(targets)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"HR@{k}"] = _hit_rate(hits, n_targets, k)
        out[f"NDCG@{k}"] = _ndcg(hits, n_targets, k)
        if weights is not None:
            out[f"PSP@{k}"] = _psp(top_k, hits, targets, k, weights)
    return out


def propensity_weights(train: sp.spmatrix, a: float = PROPENSITY_A, b: float = PROPENSITY_B) -> np.ndarray:
    """Inverse propensities ``w_i = 1 + C (n_i + B)^(−A)``, ``C = (ln N − 1)(B + 1)^A`` (paper B.5).

    ``n_i`` is the number of train interactions of item ``i`` (stored non-zeros of column ``i``) and ``N`` the
    number of train interactions (stored non-zeros of ``train``).

    Args:
        train: ``(n_users, m)`` sparse train matrix.
        a: exponent ``A`` (0.55 in the paper).
        b: offset ``B`` (1.5 in the paper).

    Returns:
        ``(m,)`` float64 weights (``1/φ(i)`` of the paper).
    """
    train = _as_csr(train, "train")
    for name, value in (("a", a), ("b", b)):
        if not np.isfinite(value) or value <= 0:
            raise ParameterError(f"{name} must be a finite positive number, got {value!r}.")
    n_interactions = train.nnz
    if n_interactions == 0:
        raise ParameterError("train has no interactions; propensities need item counts from a non-empty train split.")
    item_counts = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    c = (np.log(n_interactions) - 1.0) * (b + 1.0) ** a
    return 1.0 + c * np.power(item_counts + b, -a)


# ----------------------------------------------------------------------------------------------------------
# AUC
# ----------------------------------------------------------------------------------------------------------
def pooled_auc(pos_scores: np.ndarray, neg_scores: np.ndarray) -> float:
    """One global ROC-AUC over the pooled scores (positives → 1, negatives → 0), ties counting 1/2.

    Rank-based Mann–Whitney statistic with average ranks: ``(Σ ranks of positives − P(P+1)/2) / (P · N)``.

    Args:
        pos_scores: 1-D scores of positive (target) pairs.
        neg_scores: 1-D scores of negative pairs.

    Returns:
        AUC in ``[0, 1]`` as a Python float.

    Raises:
        ParameterError: a pool is empty, not 1-D, or contains NaN.
    """
    pools = []
    for name, pool in (("pos_scores", pos_scores), ("neg_scores", neg_scores)):
        pool = np.asarray(pool, dtype=np.float64)
        if pool.ndim != 1:
            raise ParameterError(f"{name} must be 1-D, got shape {pool.shape}; flatten it first.")
        if pool.size == 0:
            raise ParameterError(f"{name} is empty; AUC needs at least one positive and one negative score.")
        n_nan = int(np.isnan(pool).sum())
        if n_nan:
            raise ParameterError(f"{name} contains {n_nan} NaN score(s); the model's scores are broken upstream.")
        pools.append(pool)
    pos, neg = pools
    ranks = rankdata(np.concatenate([pos, neg]), method="average")
    n_pos, n_neg = float(pos.size), float(neg.size)
    u_statistic = ranks[: pos.size].sum() - n_pos * (n_pos + 1.0) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def auc_pools(scores: np.ndarray, targets: sp.spmatrix, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gather the AUC pools from (unmasked) scores.

    Args:
        scores: ``(n, m)`` scores *before* masking seen items.
        targets: ``(n, m)`` sparse matrix of target positives.
        negatives: ``(n, n_neg)`` int item indices of each user's sampled negatives.

    Returns:
        ``(pos_scores, neg_scores)``: 1-D arrays of the scores of every (user, target) pair in row-major csr
        order, and of every (user, negative) pair in row-major order.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ParameterError(f"scores must be a 2-D (n_users, n_items) array, got shape {scores.shape}.")
    targets = _as_csr(targets, "targets")
    if targets.shape != scores.shape:
        raise ParameterError(f"targets has shape {targets.shape} but scores has shape {scores.shape}; they must match.")
    negatives = np.asarray(negatives)
    if negatives.ndim != 2 or negatives.shape[0] != scores.shape[0]:
        raise ParameterError(
            f"negatives must be (n_users={scores.shape[0]}, n_negatives) item indices, got shape {negatives.shape}."
        )
    if not np.issubdtype(negatives.dtype, np.integer):
        raise ParameterError(f"negatives must hold integer item indices, got dtype {negatives.dtype}.")
    if negatives.size and (negatives.min() < 0 or negatives.max() >= scores.shape[1]):
        raise ParameterError(
            f"negatives hold item indices outside [0, {scores.shape[1]}) "
            f"(min {negatives.min()}, max {negatives.max()})."
        )
    target_rows = np.repeat(np.arange(scores.shape[0]), np.diff(targets.indptr))
    pos_scores = scores[target_rows, targets.indices]
    neg_scores = np.take_along_axis(scores, negatives.astype(np.intp), axis=1).ravel()
    return pos_scores, neg_scores
