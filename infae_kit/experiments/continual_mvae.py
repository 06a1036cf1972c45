"""MVAE for continual learning and ADER's memory (paper §5, Figure 5; Mi et al., RecSys 2020), adapted to a user ×
item autoencoder; the strategies and the loop that use them are :mod:`infae_kit.experiments.continual_models`.

* :class:`ContinualMVAE` — :class:`~infae_kit.models.mvae.MVAE` whose :meth:`~ContinualMVAE.fit` also takes a
  :class:`Replay` (exemplar rows trained through ADER's adaptively weighted distillation loss against the previous
  model's predictions) and ``binarize=False`` (soft rows, e.g. a DISTILL-CF support, as soft counts)::

      L = mean_{u ∈ D_t} ELBO-loss(x_u) + λ_t · mean_{e ∈ E} [ −Σ_{i ∈ I_{t−1}} |x_e| p_old(i | x_e) log p_new(i | x_e) ]

* :func:`herding_selection` / :func:`ader_exemplars` — which users of period t−1 to remember (herding on the
  previous model's encoder means, as iCaRL and ADER).
* :func:`ader_lambda` — ADER's λ_t = λ_base · sqrt(|I_{t−1}| / |I_t| · |E| / |D_t|).
* :func:`teacher_targets` — the soft targets of the exemplars: the previous model's softmax over the old items,
  scaled by the row's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from infae_kit.checks import binary_interactions, check_interactions, non_negative_float
from infae_kit.errors import DataError, ParameterError
from infae_kit.models.mvae import MVAE

__all__ = [
    "ADER_LAMBDA_BASE",
    "Replay",
    "ContinualMVAE",
    "herding_selection",
    "ader_lambda",
    "ader_exemplars",
    "teacher_targets",
]

ADER_LAMBDA_BASE = 0.8
"""λ_base of ADER's released code (``--lambda_`` default)."""


# ---------------------------------------------------------------------------------------------------------
# MVAE with ADER's replay and soft rows
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Replay:
    """Rows replayed from earlier data with soft targets, for :meth:`ContinualMVAE.fit` (ADER's exemplars).

    Each replayed row enters training through the encoder like a data row, but its loss is not the ELBO on the
    row itself: it is a distillation cross-entropy against ``targets`` (the previous model's predictions), over
    the ``items`` only, weighted by ``weight`` (ADER's λ_t)::

        L = mean_{new rows} [ −Σ_i x_i log softmax(z)_i + β KL ]
            + weight · mean_{replayed rows} [ −Σ_{i ∈ items} targets_i log softmax_{items}(z)_i ]

    Attributes:
        inputs: ``(n_replay, n_items)`` the replayed rows (encoder inputs; binarised unless ``fit(binarize=False)``).
        targets: ``(n_replay, n_items)`` non-negative soft targets (zero outside ``items``).
        weight: λ ≥ 0 of the distillation term.
        items: ``(n_items,)`` bool, the items the distillation softmax runs over (ADER: the items known to the
            previous model); ``None`` = every item.
    """

    inputs: Any
    targets: Any
    weight: float
    items: Any = None


class ContinualMVAE(MVAE):
    """:class:`~infae_kit.models.mvae.MVAE` for continual learning: :meth:`fit` also takes a :class:`Replay`
    (ADER's exemplars with a distillation term), ``binarize=False`` (soft rows, e.g. a DISTILL-CF support) and
    ``row_weights`` (how much each row counts in the loss); with none of them it trains exactly as :class:`MVAE`
    does (same steps, same parameters)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replay: dict[str, Any] | None = None
        self._row_weights: np.ndarray | None = None
        self._binarize = True

    def fit(self, X: Any, validation: Any = None, *, init_params: Any = None, init_step: int = 0,
            replay: Replay | None = None, binarize: bool = True, row_weights: Any = None) -> "ContinualMVAE":
        """Train on ``X``; see :meth:`~infae_kit.models.training.TrainedRecommender.fit` for ``validation``,
        ``init_params`` (warm start) and ``init_step`` (the annealing schedule continues).

        Args:
            X: ``(n_users, n_items)`` train rows.
            replay: a :class:`Replay`: rows appended to ``X`` whose loss is a weighted distillation term instead
                of the ELBO (ADER). Each batch mixes new and replayed rows in the proportion of the whole (as
                ADER's sampler spreads its exemplars over the batches). With ``validation``, the replayed rows
                are scored as users without held-out items (the early-stopping choice is unchanged).
            binarize: ``False`` keeps ``X``'s values (finite, ≥ 0) as soft counts in the multinomial
                likelihood, e.g. for a DISTILL-CF support of values in [0, 1]; the default binarises.
            row_weights: ``(n_users,)`` finite weights ≥ 0, one per row of ``X``: row u's loss counts
                ``row_weights[u]`` times in its batch, ``Σ_u w_u ℓ(x_u) / (rows in the batch)``; e.g. a weight above 1
                for the rows of a memory. ``None`` (every weight 1) trains as :class:`MVAE`. Not with ``replay``.
        """
        self._binarize = bool(binarize)
        try:
            if row_weights is not None:
                if replay is not None:
                    raise ParameterError("row_weights and replay cannot be combined: a replay weighs its rows "
                                         "through replay.weight.")
                self._row_weights = self._check_row_weights(row_weights, X)
            if replay is not None:
                X, validation = self._with_replay(X, validation, replay)
            return super().fit(X, validation, init_params=init_params, init_step=init_step)
        finally:
            self._replay, self._row_weights, self._binarize = None, None, True

    @staticmethod
    def _check_row_weights(row_weights: Any, X: Any) -> np.ndarray:
        w = np.asarray(row_weights, dtype=np.float64)
        n_rows = getattr(X, "shape", (None,))[0]
        if w.shape != (n_rows,):
            raise ParameterError(f"row_weights must hold one weight per row of X ({n_rows}), got shape {w.shape}.")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ParameterError("row_weights must be finite and ≥ 0.")
        return w.astype(np.float32)

    def _with_replay(self, X, validation, replay: Replay):
        if not isinstance(replay, Replay):
            raise ParameterError(f"replay must be an infae_kit.experiments.continual_models.Replay, got "
                                 f"{type(replay).__name__}.")
        X = check_interactions(X, "X")
        n_items = X.shape[1]
        inputs = check_interactions(replay.inputs, "replay.inputs", n_items=n_items)
        targets = np.asarray(replay.targets.toarray() if sp.issparse(replay.targets) else replay.targets,
                             dtype=np.float32)
        if targets.shape != inputs.shape:
            raise ParameterError(f"replay.targets has shape {targets.shape}, replay.inputs {inputs.shape}; they "
                                 "must match (one soft target row per replayed row).")
        if not np.all(np.isfinite(targets)) or np.any(targets < 0):
            raise ParameterError("replay.targets must be finite and ≥ 0 (soft counts).")
        weight = non_negative_float("replay.weight", replay.weight)
        items = np.ones(n_items, dtype=bool) if replay.items is None else np.asarray(replay.items, dtype=bool)
        if items.shape != (n_items,) or not items.any():
            raise ParameterError(f"replay.items must be a boolean mask of the {n_items} items with at least one True.")
        if np.any(targets[:, ~items] > 0):
            raise ParameterError("replay.targets put mass on items outside replay.items.")
        n_new = X.shape[0]
        stacked = sp.vstack([sp.csr_matrix(X, dtype=np.float32), sp.csr_matrix(inputs, dtype=np.float32)],
                            format="csr")
        if validation is not None:
            validation = check_interactions(validation, "validation", n_items=n_items)
            if validation.shape[0] != n_new:
                raise DataError(f"validation has {validation.shape[0]} users but X has {n_new}; pass the held-out "
                                "positives of X's users, in the same order.")
            validation = sp.vstack([validation, sp.csr_matrix(inputs.shape, dtype=np.float32)], format="csr")
        self._replay = {"n_new": n_new, "targets": targets, "weight": weight, "items": items}
        return stacked, validation

    def _train_matrix(self, X):
        if self._binarize:
            return binary_interactions(X, "X", require_interactions=True)
        X = check_interactions(X, "X", require_interactions=True)
        if X.nnz == 0 or not np.any(X.data > 0):
            raise DataError(f"X has no interactions (shape {X.shape}); the model needs at least one.")
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        X.sort_indices()
        return X

    def _row_order(self, rng, n_rows: int) -> np.ndarray:
        """With a replay, the new and the replayed rows are each permuted and then interleaved at even spacing,
        so that every batch holds them in the proportion of the whole."""
        if self._replay is None:
            return super()._row_order(rng, n_rows)
        n_new = self._replay["n_new"]
        new, old = rng.permutation(n_new), n_new + rng.permutation(n_rows - n_new)
        position = np.concatenate([(np.arange(n_new) + 0.5) / n_new,
                                   (np.arange(n_rows - n_new) + 0.5) / max(n_rows - n_new, 1)])
        return np.concatenate([new, old])[np.argsort(position, kind="stable")]

    def _batch_extra(self, rows: np.ndarray, mask: np.ndarray) -> dict[str, Any] | None:
        if self._row_weights is not None:
            return {"row_weights": np.where(mask > 0, self._row_weights[rows], 0.0).astype(np.float32)}
        replay = self._replay
        if replay is None:
            return None
        n_new = replay["n_new"]
        is_old = (rows >= n_new) & (mask > 0)
        targets = np.zeros((len(rows), self.n_items_), np.float32)
        targets[is_old] = replay["targets"][rows[is_old] - n_new]
        return {"targets": targets, "is_new": ((mask > 0) & ~is_old).astype(np.float32),
                "items": replay["items"], "weight": np.float32(replay["weight"])}

    def _batch_loss(self, params, x, mask, key, step, extra):
        if extra is None:
            return super()._batch_loss(params, x, mask, key, step, extra)
        if "row_weights" in extra:
            elbo, _ = self._row_losses(params, x, key, step)
            return (jnp.sum(extra["row_weights"] * elbo) / jnp.maximum(jnp.sum(mask), 1.0)
                    + self._l2_penalty(params))
        elbo, logits = self._row_losses(params, x, key, step)
        new = extra["is_new"]
        old = mask - new
        loss = jnp.sum(new * elbo) / jnp.maximum(jnp.sum(new), 1.0)
        # distillation over the replay items only; masked logits stay finite so that 0 · log q is 0
        log_q = jax.nn.log_softmax(jnp.where(extra["items"], logits, -1e9), axis=-1)
        kd = -jnp.sum(extra["targets"] * log_q, axis=-1)
        return loss + extra["weight"] * jnp.sum(old * kd) / jnp.maximum(jnp.sum(old), 1.0) + self._l2_penalty(params)


# ---------------------------------------------------------------------------------------------------------
# ADER: herding, λ, teacher targets
# ---------------------------------------------------------------------------------------------------------
def herding_selection(features: np.ndarray, n: int, *, normalize: bool = True) -> np.ndarray:
    """Indices of ``n`` rows chosen by herding, in the order chosen (Welling 2009; iCaRL; ADER).

    Step k picks the row ``f`` not yet chosen that brings the mean of the chosen rows closest to the mean μ of
    all rows: ``argmin_f ‖μ − (f + Σ_{j<k} f_j) / k‖``. The first pick is therefore the row closest to μ; later
    picks compensate the drift of the running mean, so the order is not the order of distance to μ.

    Args:
        features: ``(m, d)`` one representation per candidate.
        n: how many to choose; ``n ≥ m`` returns every row, in herding order.
        normalize: L2-normalise each row first (as ADER and iCaRL do; zero rows stay zero).

    Returns:
        ``(min(n, m),)`` int64 row indices. Ties go to the lower index.
    """
    F = np.asarray(features, dtype=np.float64)
    if F.ndim != 2 or F.shape[0] == 0:
        raise ParameterError(f"features must be a non-empty 2-D (candidates × dims) array, got shape {F.shape}.")
    if not np.all(np.isfinite(F)):
        raise ParameterError("features contain NaN or infinite values.")
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n must be a positive integer, got {n!r}.")
    if normalize:
        norms = np.linalg.norm(F, axis=1, keepdims=True)
        F = np.divide(F, norms, out=np.zeros_like(F), where=norms > 0)
    mu = F.mean(axis=0)
    half_sq = 0.5 * np.einsum("ij,ij->i", F, F)
    running = np.zeros(F.shape[1])
    free = np.ones(F.shape[0], dtype=bool)
    chosen = []
    for k in range(1, min(int(n), F.shape[0]) + 1):
        # ‖kμ − running − f‖² = const − 2 (⟨kμ − running, f⟩ − ‖f‖²/2)
        score = F @ (k * mu - running) - half_sq
        score[~free] = -np.inf
        j = int(np.argmax(score))
        chosen.append(j)
        running += F[j]
        free[j] = False
    return np.asarray(chosen, dtype=np.int64)


def ader_lambda(lambda_base: float, n_items_before: int, n_items_now: int, n_exemplars: int, n_new: int) -> float:
    """ADER's adaptive distillation weight ``λ_t = λ_base · sqrt(|I_{t−1}| / |I_t| · |E| / |D_t|)``.

    The more of the catalogue is new (``|I_t| ≫ |I_{t−1}|``) or the less memory there is relative to the new
    data, the less the model is held to its previous predictions.

    Args:
        lambda_base: λ_base ≥ 0 (ADER: 0.8).
        n_items_before: items seen before the current period (``|I_{t−1}|``, ≥ 1).
        n_items_now: items seen up to and including the current period (``|I_t|`` ≥ ``|I_{t−1}|``).
        n_exemplars: exemplars replayed (``|E|`` ≥ 1).
        n_new: training rows of the current period (``|D_t|`` ≥ 1).
    """
    base = non_negative_float("lambda_base", lambda_base, hint=f"ADER's default is {ADER_LAMBDA_BASE}.")
    for name, v in (("n_items_before", n_items_before), ("n_items_now", n_items_now),
                    ("n_exemplars", n_exemplars), ("n_new", n_new)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{name} must be a positive integer, got {v!r}.")
    if n_items_now < n_items_before:
        raise ParameterError(f"n_items_now ({n_items_now}) counts the items seen so far, so it cannot be smaller than "
                             f"n_items_before ({n_items_before}).")
    return base * math.sqrt((n_items_before / n_items_now) * (n_exemplars / n_new))


def ader_exemplars(model: MVAE, rows: sp.csr_matrix, budget: int) -> np.ndarray:
    """Herding on ``model``'s encoder means of ``rows``: indices of the ``min(budget, len(rows))`` exemplars."""
    return herding_selection(model.latent_means(rows), budget)


def teacher_targets(model: MVAE, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """ADER's soft targets for exemplar rows: ``|x_e| · softmax_{items}(model logits of x_e)``.

    Args:
        model: the previous period's model (the teacher).
        rows: ``(n, n_items)`` exemplar rows.
        items: ``(n_items,)`` bool, the items the teacher knows (the softmax runs over them; 0 elsewhere).

    Returns:
        ``(n, n_items)`` float32, each row summing to the row's number of items.
    """
    items = np.asarray(items, dtype=bool)
    logits = np.asarray(model.predict(rows), dtype=np.float64)
    logits[:, ~items] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    mass = np.asarray((sp.csr_matrix(rows) > 0).sum(axis=1), dtype=np.float64)
    return (p * mass).astype(np.float32)
