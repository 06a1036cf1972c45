"""The sampling-case attacker of Appendix B.6: Narayanan–Shmatikov's Scoreboard-RH matches what an attacker knows
of a target (auxiliary items) against the records of a published sample of users, with rarity weights and an
eccentricity test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, binary_interactions, non_negative_float
from infae_kit.errors import DataError, ParameterError

__all__ = [
    "PAPER_ECCENTRICITY_THRESHOLD",
    "DEFAULT_BATCH_TARGETS",
    "check_phi",
    "check_batch",
    "item_rarity_weights",
    "scoreboard_scores",
    "check_same_items",
    "ScoreboardMatch",
    "scoreboard_match",
    "sample_positions",
    "match_outcomes",
    "percent_deanonymized",
]

PAPER_ECCENTRICITY_THRESHOLD = 1.5
"""φ of Narayanan & Shmatikov (2008): a best match is accepted when it stands 1.5 σ above the runner-up."""

DEFAULT_BATCH_TARGETS = 1024
"""Targets scored at once (the dense score block is ``batch × n_records`` floats)."""


# ------------------------------------------------------------------------------------------


def check_phi(phi: Any) -> float:
    """The eccentricity threshold φ as a finite ``float`` ≥ 0; else a :class:`ParameterError`."""
    return non_negative_float("phi (the eccentricity threshold)", phi,
                              hint=f"Narayanan & Shmatikov use {PAPER_ECCENTRICITY_THRESHOLD}.")


def check_batch(batch_size: Any) -> int:
    """``batch_size`` as an ``int`` ≥ 1 (targets scored at once); else a :class:`ParameterError`."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


# -- sampling case: the Scoreboard-RH ----------------------------------------------------------------------


def item_rarity_weights(records: MatrixLike) -> np.ndarray:
    """N–S rarity weight of every item, computed on the public rows.

    wt(i) = 1 / log(1 + |supp(i)|), where |supp(i)| is the number of public rows holding item i. N–S write
    1 / log |supp(i)|; the shift by one keeps an item held by a single row finite (1 / log 2 instead of
    1 / log 1 = ∞) and keeps the order by rarity. Items that no public row holds get weight 0 (they cannot
    contribute to any score).

    Args:
        records: ``(n_records, n_items)`` public rows (binary; any value > 0 counts as held).

    Returns:
        ``(n_items,)`` float64 weights.
    """
    R = binary_interactions(records, "records")
    support = np.bincount(R.indices, minlength=R.shape[1]).astype(np.float64)
    weights = np.zeros(R.shape[1], dtype=np.float64)
    held = support > 0
    weights[held] = 1.0 / np.log1p(support[held])
    return weights


def scoreboard_scores(aux: MatrixLike, records: MatrixLike, weights: np.ndarray | None = None) -> np.ndarray:
    """Scoreboard-RH scores of every target against every public row (dense; use on a batch of targets).

    score(aux, r) = Σ_{i ∈ supp(aux) ∩ supp(r)} wt(i), computed as ``(aux · diag(wt)) · recordsᵀ``.

    Args:
        aux: ``(n_targets, n_items)`` the attacker's knowledge of each target (binary).
        records: ``(n_records, n_items)`` public rows (binary).
        weights: ``(n_items,)`` item weights; default :func:`item_rarity_weights` of ``records``.

    Returns:
        ``(n_targets, n_records)`` float64 scores.
    """
    A = binary_interactions(aux, "aux")
    R = binary_interactions(records, "records")
    check_same_items(A, R)
    w = item_rarity_weights(R) if weights is None else _check_weights(weights, R.shape[1])
    return _scores(A, R, w)


def check_same_items(A: sp.csr_matrix, R: sp.csr_matrix, names: tuple[str, str] = ("aux", "records")) -> None:
    """Both matrices have the same number of item columns; else a :class:`ParameterError` naming them."""
    if A.shape[1] != R.shape[1]:
        raise ParameterError(
            f"{names[0]} has {A.shape[1]} items (columns) but {names[1]} has {R.shape[1]}; both must use the "
            "same item index."
        )


def _check_weights(weights, n_items: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_items,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ParameterError(f"weights must be {n_items} finite non-negative numbers (one per item); got shape {w.shape}.")
    return w


def _scores(A: sp.csr_matrix, R: sp.csr_matrix, w: np.ndarray) -> np.ndarray:
    weighted = sp.csr_matrix(A.multiply(w[None, :]), dtype=np.float64)
    return np.asarray((weighted @ R.T.astype(np.float64)).toarray())


@dataclass
class ScoreboardMatch:
    """Outcome of :func:`scoreboard_match`, one entry per target.

    Attributes:
        matched: ``(n_targets,)`` int64 index of the matched public row, −1 when the eccentricity test refused.
        best: row index with the highest score (lowest index among ties), whether accepted or not.
        eccentricity: (max − max₂) / σ of the target's scores (0 when σ = 0).
        best_score, second_score: max and max₂ of the scores.
        phi: threshold used.
    """

    matched: np.ndarray
    best: np.ndarray
    eccentricity: np.ndarray
    best_score: np.ndarray
    second_score: np.ndarray
    phi: float


def scoreboard_match(
    aux: MatrixLike,
    records: MatrixLike,
    *,
    phi: float = PAPER_ECCENTRICITY_THRESHOLD,
    weights: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH_TARGETS,
) -> ScoreboardMatch:
    """Narayanan–Shmatikov Scoreboard-RH: match each target's aux row to one public row, or to none.

    For each target, score every public row (:func:`scoreboard_scores`), then apply the eccentricity test:
    ecc = (max − max₂) / σ, σ the (population) standard deviation of the target's scores over all public rows.
    The best row is accepted when ecc ≥ φ and it is the unique best (a tie at the top, including "no overlap
    with any row", is always refused: there is no single candidate). Otherwise the target gets −1.

    Note that N–S's score only rewards shared items and never penalises items of r that aux lacks (aux is
    partial knowledge). A public row whose items are a superset of the true row's therefore scores at least as
    high as the true row; an exact copy of a user's row is matched unless such a row exists.

    Args:
        aux: ``(n_targets, n_items)`` the attacker's knowledge of each target (binary; values > 0 count).
        records: ``(n_records, n_items)`` the public rows (binary), ``n_records >= 2``.
        phi: eccentricity threshold φ ≥ 0 (default 1.5, as N–S).
        weights: item weights (default: :func:`item_rarity_weights` of ``records``).
        batch_size: targets scored at once.

    Returns:
        :class:`ScoreboardMatch`.

    Raises:
        ParameterError: φ < 0, mismatched item counts, bad weights or batch size.
        DataError: fewer than two public rows (no runner-up to compare with).
    """
    phi = check_phi(phi)
    batch_size = check_batch(batch_size)
    A = binary_interactions(aux, "aux")
    R = binary_interactions(records, "records")
    check_same_items(A, R)
    if R.shape[0] < 2:
        raise DataError(
            f"records has {R.shape[0]} row(s); the eccentricity test compares the best and the second-best row, "
            "so at least 2 public rows are needed."
        )
    w = item_rarity_weights(R) if weights is None else _check_weights(weights, R.shape[1])
    n = A.shape[0]
    best = np.empty(n, dtype=np.int64)
    ecc = np.empty(n, dtype=np.float64)
    top1 = np.empty(n, dtype=np.float64)
    top2 = np.empty(n, dtype=np.float64)
    for start in range(0, n, batch_size):
        rows = slice(start, min(start + batch_size, n))
        S = _scores(A[rows], R, w)
        best[rows] = np.argmax(S, axis=1)  # first index among ties
        two = -np.partition(-S, 1, axis=1)[:, :2]
        top1[rows], top2[rows] = two[:, 0], two[:, 1]
        sigma = S.std(axis=1)
        gap = two[:, 0] - two[:, 1]
        ecc[rows] = np.divide(gap, sigma, out=np.zeros_like(gap), where=sigma > 0)
    accepted = (ecc >= phi) & (top1 > top2)
    matched = np.where(accepted, best, -1).astype(np.int64)
    return ScoreboardMatch(matched=matched, best=best, eccentricity=ecc, best_score=top1, second_score=top2, phi=phi)


def sample_positions(target_users: Sequence[int] | np.ndarray, sampled_users: Sequence[int] | np.ndarray) -> np.ndarray:
    """Ground truth for the sampling case: where each target sits among the public (sampled) rows.

    Args:
        target_users: ``(n_targets,)`` user indices (rows of D) of the attacked users.
        sampled_users: ``(n_records,)`` user indices of D whose rows were published, in published order.

    Returns:
        ``(n_targets,)`` int64 position of each target in ``sampled_users``, −1 when it was not published.
    """
    targets = np.asarray(target_users, dtype=np.int64).ravel()
    sampled = np.asarray(sampled_users, dtype=np.int64).ravel()
    if np.unique(sampled).shape[0] != sampled.shape[0]:
        raise ParameterError("sampled_users repeats a user; each published row must be a distinct user.")
    if (targets.size and targets.min() < 0) or (sampled.size and sampled.min() < 0):
        raise ParameterError("target_users and sampled_users must be non-negative row indices of D.")
    size = int(max(targets.max(initial=-1), sampled.max(initial=-1))) + 1
    position = np.full(size, -1, dtype=np.int64)
    position[sampled] = np.arange(sampled.shape[0])
    return position[targets]


def match_outcomes(matched: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Counts of what the attacker did with each target.

    Args:
        matched: ``(n,)`` matched public row per target, −1 for "no match".
        truth: ``(n,)`` the target's true public row, −1 when the target is not among the public rows.

    Returns:
        ``{"targets", "correct", "wrong", "refused", "absent"}``: correct = matched to its own row; wrong =
        matched to another row (a false accusation); refused = −1; absent = targets not published at all.
    """
    matched, truth = _check_pair(matched, truth)
    return {
        "targets": int(matched.shape[0]),
        "correct": int(np.count_nonzero((matched == truth) & (truth >= 0))),
        "wrong": int(np.count_nonzero((matched >= 0) & (matched != truth))),
        "refused": int(np.count_nonzero(matched < 0)),
        "absent": int(np.count_nonzero(truth < 0)),
    }


def percent_deanonymized(matched: np.ndarray, truth: np.ndarray) -> float:
    """% of targets correctly de-anonymized: matched to their own public row (over all targets given).

    Args:
        matched: ``(n,)`` matched row per target (−1 = no match), e.g. ``scoreboard_match(...).matched``.
        truth: ``(n,)`` true row per target (−1 = not published, which can never count as de-anonymized).

    Returns:
        100 · #{matched == truth ≥ 0} / n.
    """
    matched, truth = _check_pair(matched, truth)
    if matched.shape[0] == 0:
        raise ParameterError("no targets: matched and truth are empty.")
    return 100.0 * float(np.count_nonzero((matched == truth) & (truth >= 0))) / matched.shape[0]


def _check_pair(matched, truth) -> tuple[np.ndarray, np.ndarray]:
    matched = np.asarray(matched, dtype=np.int64).ravel()
    truth = np.asarray(truth, dtype=np.int64).ravel()
    if matched.shape != truth.shape:
        raise ParameterError(f"matched has {matched.shape[0]} entries but truth has {truth.shape[0]}; one per target.")
    return matched, truth


# -- distillation case -------------------------------------------------------------------------------------


