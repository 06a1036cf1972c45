"""The trained competitors of the paper's Table 1: Bias-only, MF, NeuMF, LightGCN and MVAE (Appendix B.1).

Every model follows the kit's recommender interface (:class:`infae_kit.baselines.Recommender`): ``fit(X)`` on a
binary users × items csr, ``predict(X_context)`` → ``(b, n_items)`` float32 scores, ``recommend(X_context, k)``
→ top-``k`` items with the context's items excluded.

* :class:`BiasOnly` — ``r̂_ui = α + β_u + β_i`` fitted by (ridge) least squares on the full binary matrix, in
  closed form. Its item ranking is item popularity, so its HR/nDCG/PSP equal PopRec's; the user bias only
  shifts the pooled AUC.
* :class:`MF` — ``α + β_u + β_i + γ_u·γ_i`` trained with BPR (Rendle et al., 2009).
* :class:`NeuMF` — ``α + β_u + β_i + φ(γ_u, γ_i)`` with φ = He et al. (2017)'s GMF ⊕ MLP tower, BPR.
* :class:`LightGCN` — He et al. (2020): layer-mean of linear propagations over the symmetrically normalised
  user–item graph, BPR with L2 on the layer-0 embeddings of the batch, optional edge dropout.
* :class:`MVAE` — Liang et al. (2018): multinomial likelihood, KL annealing to ``anneal_cap``, dropout on the
  L2-normalised input, tanh layers.

Training (all but Bias-only): JAX + optax Adam, one jit-compiled program per epoch (``lax.scan`` over
mini-batches), seeded (same seed, same scores), BPR triplets sampled vectorised in NumPy (one negative per
positive, rejected if it is a train positive), validation-based early stopping on **validation HR@100** (the
metric the kit picks every hyper-parameter by), and a tqdm progress bar. LightGCN's propagation is a sparse
product done by SciPy inside the jitted step (``jax.pure_callback`` with a custom VJP: 5× faster than XLA's
segment-sum on 2 CPU cores).

User-embedding models (MF, NeuMF, LightGCN) are *transductive*: they score the users they were fitted on, by
row index. ``predict(X_context, users=...)`` takes those indices; without ``users`` the context must hold every
fitted user in fitting order. :func:`infae_kit.evaluation.evaluate_model` passes the indices itself.
Bias-only and MVAE score any context row (fold-in).

Hyper-parameters: :data:`PAPER_GRID` is Table 3; :func:`search_competitor` does a budgeted random search over
it (plus :data:`L2_GRID`, the BPR models' L2 weight, which Table 3 does not list) on validation HR@100; :func:`recorded_config` returns the best configuration found per model × dataset,
recorded in ``infae_kit/competitor_configs.json`` (``python -m infae_kit.competitors search ...`` updates it).

Example:
    >>> from infae_kit.competitors import make_competitor
    >>> model = make_competitor("mf", latent_size=64, learning_rate=0.006).fit(data.train, validation=data.val)
    >>> top10 = model.recommend(data.train_val(), k=10)
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from infae_kit.baselines import Recommender, check_interactions
from infae_kit.errors import DataError, MemoryBudgetError, NumericalError, ParameterError
from infae_kit.io_utils import atomic_write_json, available_memory_bytes
from infae_kit.metrics import propensity_weights

__all__ = [
    "COMPETITOR_NAMES",
    "PAPER_GRID",
    "L2_GRID",
    "SEARCH_GRID",
    "SEARCH_SPACE",
    "BiasOnly",
    "MF",
    "NeuMF",
    "LightGCN",
    "MVAE",
    "Replay",
    "make_competitor",
    "parse_competitor_names",
    "sample_bpr_triplets",
    "bias_only_least_squares",
    "search_competitor",
    "fit_and_evaluate_competitor",
    "recorded_config",
    "record_config",
    "CONFIGS_PATH",
]

COMPETITOR_NAMES = ("bias", "mf", "neumf", "lightgcn", "mvae")
"""Model keys, as used in the results JSON and :data:`infae_kit.results.PAPER_TABLE1`."""

PAPER_GRID: dict[str, tuple] = {
    "latent_size": (4, 8, 16, 32, 50, 64, 128),
    "n_layers": (1, 2, 3),
    "learning_rate": (0.001, 0.006, 0.01),
    "dropout": (0.0, 0.3, 0.5),
}
"""Table 3 of the paper: the grid searched for MF, NeuMF, LightGCN and MVAE (Magazine, ML-1M, Douban)."""

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
"""Our addition to Table 3: the L2 weight of the BPR models. Table 3 lists no regularisation strength, but it
decides MF on sparse data (Magazine, validation HR@100: 4.4 at l2 = 1e-4, 7.6 at l2 = 0.1; PopRec 6.9)."""

SEARCH_GRID: dict[str, tuple] = {**PAPER_GRID, "l2": L2_GRID}
"""What :func:`search_competitor` draws from by default: :data:`PAPER_GRID` plus :data:`L2_GRID`."""

SEARCH_SPACE: dict[str, tuple[str, ...]] = {
    "bias": (),
    "mf": ("latent_size", "learning_rate", "dropout", "l2"),  # MF has no layers
    "neumf": ("latent_size", "n_layers", "learning_rate", "dropout", "l2"),
    "lightgcn": ("latent_size", "n_layers", "learning_rate", "dropout", "l2"),
    "mvae": ("latent_size", "n_layers", "learning_rate", "dropout"),
}
"""Which of :data:`SEARCH_GRID`'s hyper-parameters each model has."""

CONFIGS_PATH = Path(__file__).resolve().parent / "competitor_configs.json"
"""Best configurations found by :func:`search_competitor`, per dataset and model."""

SELECT_BY = "HR@100"
"""Validation metric that early stopping and the hyper-parameter search maximise (as for ∞-AE and EASE)."""


# ----------------------------------------------------------------------------------------------------------
# parameter checks
# ----------------------------------------------------------------------------------------------------------
def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        if isinstance(value, float) and value.is_integer() and value >= 1:
            return int(value)
        raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _positive_float(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number, got {value!r}.") from None
    if not math.isfinite(out) or out <= 0:
        raise ParameterError(f"{name} must be a positive finite number, got {value!r}.")
    return out


def _non_negative_float(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number ≥ 0, got {value!r}.") from None
    if not math.isfinite(out) or out < 0:
        raise ParameterError(f"{name} must be a finite number ≥ 0, got {value!r}.")
    return out


def _fraction(name: str, value: Any) -> float:
    out = _non_negative_float(name, value)
    if out >= 1:
        raise ParameterError(f"{name} must be in [0, 1) (a dropout rate), got {value!r}.")
    return out


def _binary_train(X, name: str = "X") -> sp.csr_matrix:
    X = check_interactions(X, name)
    if X.nnz == 0:
        raise DataError(f"{name} has no interactions (shape {X.shape}); the model needs at least one.")
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.data[:] = 1.0
    X.sort_indices()
    return X


# ----------------------------------------------------------------------------------------------------------
# Bias-only
# ----------------------------------------------------------------------------------------------------------
def bias_only_least_squares(X, ridge: float = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """Closed-form ``argmin Σ_ui (X_ui − α − β_u − β_i)² + ridge (‖β_users‖² + ‖β_items‖²)`` over the full matrix.

    Setting the gradients to zero gives ``Σ_u β_u = Σ_i β_i = 0`` (for ``ridge > 0``; for ``ridge = 0`` this is
    the usual identifiability constraint of the two-way layout), hence ``α = mean(X)``,
    ``β_u = (r_u − m α) / (m + ridge)`` and ``β_i = (c_i − n α) / (n + ridge)`` with ``r_u`` / ``c_i`` the row /
    column sums of the ``n × m`` matrix.

    Returns:
        ``(α, user_bias (n,), item_bias (m,))`` in float64.
    """
    ridge = _non_negative_float("ridge", ridge)
    X = check_interactions(X, "X")
    n, m = X.shape
    row = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    col = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
    alpha = row.sum() / (n * m)
    return alpha, (row - m * alpha) / (m + ridge), (col - n * alpha) / (n + ridge)


class BiasOnly(Recommender):
    """Bias-only baseline (paper Appendix B.1): ``r̂_ui = α + β_u + β_i``, least squares in closed form.

    The least squares run over every (user, item) cell of the binary matrix (0 = no interaction). For a
    context row, ``β_u`` is computed from the row itself (the closed form depends on the row sum only), so any
    user can be scored.

    Args:
        ridge: L2 penalty on the user and item biases (≥ 0).
    """

    name = "bias"

    def __init__(self, ridge: float = 0.0) -> None:
        self.ridge = _non_negative_float("ridge", ridge)
        self.n_items_ = None

    def fit(self, X, validation=None) -> "BiasOnly":
        """Solve the least squares on ``X`` (users × items); ``validation`` is accepted and unused."""
        X = _binary_train(X)
        self.global_bias_, self.user_bias_, self.item_bias_ = bias_only_least_squares(X, self.ridge)
        self.n_items_ = X.shape[1]
        self.history_: list[dict] = []
        return self

    def _scores(self, X_context: sp.csr_matrix) -> np.ndarray:
        m = self.n_items_
        row = np.asarray((X_context > 0).sum(axis=1), dtype=np.float64).ravel()
        user_bias = (row - m * self.global_bias_) / (m + self.ridge)
        return (self.global_bias_ + user_bias[:, None] + self.item_bias_[None, :]).astype(np.float32)

    def __repr__(self) -> str:
        return f"BiasOnly(ridge={self.ridge!r})"


# ----------------------------------------------------------------------------------------------------------
# BPR sampling
# ----------------------------------------------------------------------------------------------------------
def sample_bpr_triplets(
    rng: np.random.Generator, X: sp.csr_matrix, n_rounds: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of BPR triplets: every train positive once, shuffled, with one uniformly drawn negative item.

    A negative that is a train positive of its user is redrawn (``n_rounds`` times at most, vectorised), so
    at most a negligible fraction of collisions remains (≈ density^n_rounds).

    Args:
        rng: NumPy generator (the caller seeds it).
        X: binary csr with sorted indices (users × items).

    Returns:
        ``(users, positives, negatives)``, three int32 arrays of length ``X.nnz``.
    """
    n_users, n_items = X.shape
    users_of_nnz = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(X.indptr))
    keys = users_of_nnz * n_items + X.indices  # sorted: csr rows in order, indices sorted in each row
    order = rng.permutation(X.nnz)
    users = users_of_nnz[order]
    positives = X.indices[order].astype(np.int64)
    negatives = rng.integers(0, n_items, size=X.nnz)
    todo = np.arange(X.nnz)
    for _ in range(n_rounds):
        lin = users[todo] * n_items + negatives[todo]
        pos = np.minimum(np.searchsorted(keys, lin), len(keys) - 1)
        todo = todo[keys[pos] == lin]
        if todo.size == 0:
            break
        negatives[todo] = rng.integers(0, n_items, size=todo.size)
    return users.astype(np.int32), positives.astype(np.int32), negatives.astype(np.int32)


def _batched(arrays: Sequence[np.ndarray], batch_size: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Pad arrays of equal length to ``n_batches × batch_size`` and reshape; returns them and a 0/1 mask."""
    n = len(arrays[0])
    n_batches = max(1, -(-n // batch_size))
    padded = n_batches * batch_size
    mask = np.zeros(padded, dtype=np.float32)
    mask[:n] = 1.0
    out = []
    for a in arrays:
        p = np.zeros((padded,) + a.shape[1:], dtype=a.dtype)
        p[:n] = a
        out.append(p.reshape((n_batches, batch_size) + a.shape[1:]))
    return out, mask.reshape(n_batches, batch_size)


# ----------------------------------------------------------------------------------------------------------
# common training loop
# ----------------------------------------------------------------------------------------------------------
class _TrainedRecommender(Recommender):
    """Shared training loop: Adam, jit-compiled epochs, validation HR@100 early stopping, progress bar.

    Subclasses implement ``_setup(X)``, ``_init_params(key)``, ``_epoch_inputs(rng, X)`` (NumPy arrays with a
    leading batch axis, the last one a 0/1 mask), ``_loss(params, batch, mask, key, step)`` and
    ``_score_users(params, users, X_rows)`` (scores of the given fitted users / context rows).
    """

    name = "?"
    needs_user_index = False

    def __init__(
        self,
        *,
        latent_size: int = 64,
        learning_rate: float = 0.001,
        dropout: float = 0.0,
        l2: float = 0.0,
        batch_size: int = 4096,
        epochs: int = 100,
        eval_every: int = 5,
        patience: int = 4,
        seed: int = 42,
        progress: bool = False,
    ) -> None:
        self.latent_size = _positive_int("latent_size", latent_size)
        self.learning_rate = _positive_float("learning_rate", learning_rate)
        self.dropout = _fraction("dropout", dropout)
        self.l2 = _non_negative_float("l2", l2)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.epochs = _positive_int("epochs", epochs)
        self.eval_every = _positive_int("eval_every", eval_every)
        self.patience = _positive_int("patience", patience)
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ParameterError(f"seed must be an integer ≥ 0, got {seed!r}.")
        self.seed = int(seed)
        self.progress = bool(progress)
        self.n_items_ = None
        self.params_ = None

    # --- interface for subclasses -------------------------------------------------------------------------
    def _setup(self, X: sp.csr_matrix) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _init_params(self, key) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def _epoch_inputs(self, rng: np.random.Generator, X: sp.csr_matrix) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _loss(self, params, batch, mask, key, step, aux):  # pragma: no cover - interface
        raise NotImplementedError

    def _aux(self):
        """Arrays the loss needs besides the batch (passed to the jitted epoch as arguments, not constants)."""
        return {}

    def _score_users(self, params, users: np.ndarray, X_rows: sp.csr_matrix) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _finalize(self, params) -> None:
        """Hook run after training with the kept parameters (LightGCN caches its propagated embeddings)."""

    # --- training -----------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The hyper-parameters of this model (what :func:`make_competitor` takes)."""
        keys = ["latent_size", "learning_rate", "dropout", "l2", "batch_size", "epochs", "eval_every", "patience",
                "seed"] + list(getattr(self, "_extra_config", ()))
        return {k: getattr(self, k) for k in keys}

    def _epoch_program(self, optimizer):
        loss_and_grad = jax.value_and_grad(self._loss)

        def step(carry, inputs):
            params, opt_state, key, step_index, aux = carry
            *batch, mask = inputs
            key, sub = jax.random.split(key)
            loss, grads = loss_and_grad(params, batch, mask, sub, step_index, aux)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state, key, step_index + 1, aux), loss

        @jax.jit
        def epoch(params, opt_state, key, step_index, inputs, aux):
            (params, opt_state, _, step_index, _), losses = jax.lax.scan(
                step, (params, opt_state, key, step_index, aux), inputs)
            return params, opt_state, step_index, jnp.mean(losses)

        return epoch

    def fit(self, X, validation=None, *, init_params=None, init_step: int = 0) -> "_TrainedRecommender":
        """Train on ``X`` (users × items, binarised); early-stop on ``validation`` HR@100 if given.

        Args:
            X: ``(n_users, n_items)`` train interactions.
            validation: optional ``(n_users, n_items)`` held-out positives of the same users (e.g.
                ``data.val``). Every ``eval_every`` epochs the model ranks all items for every user with
                ``X``'s items excluded; training stops after ``patience`` evaluations without a better
                validation HR@100 and the best parameters are kept. Without it, training runs ``epochs``
                epochs and keeps the last parameters.
            init_params: warm start: start from these parameters (e.g. ``previous.params_``, same
                architecture and item count) instead of a fresh seeded initialisation. Adam's moments start
                afresh. Models whose parameters are per user (MF, NeuMF, LightGCN) also need the same users.
            init_step: value of the optimisation-step counter at the start (schedules that depend on it, such
                as MVAE's KL annealing, continue from there; pass ``previous.steps_run_`` to continue).

        Returns:
            ``self``, with ``history_`` (epoch, loss, validation metrics), ``best_epoch_``, ``train_time_s_``
            and ``steps_run_`` (the step counter at the end: ``init_step`` + the steps taken).
        """
        from tqdm.auto import tqdm

        from infae_kit.evaluation import MetricAccumulator, user_batches

        t0 = time.perf_counter()
        if isinstance(init_step, (bool, np.bool_)) or not isinstance(init_step, (int, np.integer)) or init_step < 0:
            raise ParameterError(f"init_step must be an integer ≥ 0, got {init_step!r}.")
        X = self._train_matrix(X)
        if validation is not None:
            validation = check_interactions(validation, "validation", n_items=X.shape[1])
            if validation.shape[0] != X.shape[0]:
                raise DataError(
                    f"validation has {validation.shape[0]} users but X has {X.shape[0]}; pass the held-out "
                    "positives of the same users, in the same order (e.g. data.val)."
                )
        self.n_users_, self.n_items_ = X.shape
        self._setup(X)
        key = jax.random.PRNGKey(self.seed)
        key, init_key = jax.random.split(key)
        params = self._init_params(init_key)
        if init_params is not None:
            params = _warm_start_params(params, init_params, type(self).__name__)
        optimizer = optax.adam(self.learning_rate)
        opt_state = optimizer.init(params)
        epoch_program = self._epoch_program(optimizer)
        aux = self._aux()
        rng = np.random.default_rng(self.seed)
        step_index = jnp.asarray(int(init_step), dtype=jnp.int32)
        weights = propensity_weights(X)
        self.history_ = []
        best_value, best_params, best_epoch, stale = -np.inf, params, 0, 0
        bar = tqdm(range(1, self.epochs + 1), desc=f"{self.name} epochs", disable=not self.progress, leave=False)
        for epoch in bar:
            inputs = [jnp.asarray(a) for a in self._epoch_inputs(rng, X)]
            params, opt_state, step_index, loss = epoch_program(params, opt_state, jax.random.fold_in(key, epoch),
                                                                step_index, inputs, aux)
            loss = float(loss)
            if not math.isfinite(loss):
                raise NumericalError(
                    f"{self.name}: the training loss became {loss} at epoch {epoch}; lower learning_rate "
                    f"(now {self.learning_rate}) or raise l2."
                )
            record = {"epoch": epoch, "loss": loss}
            if validation is not None and (epoch % self.eval_every == 0 or epoch == self.epochs):
                acc = MetricAccumulator(validation, X, weights, None, (10, 100))
                for rows in user_batches(self.n_users_, 2048):
                    users = np.arange(rows.start, rows.stop)
                    acc.add(rows, np.array(self._score_users(params, users, X[rows]), dtype=np.float32),
                            scores_writable=True)
                val = acc.result().metrics
                record.update({f"val {k}": v for k, v in val.items()})
                if val[SELECT_BY] > best_value:
                    best_value, best_params, best_epoch, stale = val[SELECT_BY], params, epoch, 0
                else:
                    stale += 1
                bar.set_postfix(loss=f"{loss:.4f}", val_hr100=f"{val[SELECT_BY]:.2f}", best=best_epoch)
                self.history_.append(record)
                if stale >= self.patience:
                    break
            else:
                self.history_.append(record)
        if validation is None:
            best_params, best_epoch = params, self.history_[-1]["epoch"]
        self.params_ = best_params
        self.best_epoch_ = best_epoch
        self.best_validation_ = None if validation is None else float(best_value)
        self._finalize(best_params)
        self.steps_run_ = int(step_index)
        self.train_time_s_ = time.perf_counter() - t0
        return self

    def _train_matrix(self, X) -> sp.csr_matrix:
        """The matrix the loop trains on (binarised; MVAE may keep soft values)."""
        return _binary_train(X)

    # --- scoring ------------------------------------------------------------------------------------------
    def _check_users(self, X_context: sp.csr_matrix, users) -> np.ndarray:
        if users is None:
            if not self.needs_user_index:
                return np.arange(X_context.shape[0])
            if X_context.shape[0] != self.n_users_:
                raise ParameterError(
                    f"{type(self).__name__} scores the users it was fitted on, by index: pass users= (their row "
                    f"indices in the fitted matrix) for these {X_context.shape[0]} context rows, or a context "
                    f"holding all {self.n_users_} fitted users in fitting order."
                )
            return np.arange(self.n_users_)
        users = np.asarray(users)
        if users.ndim != 1 or users.shape[0] != X_context.shape[0] or not np.issubdtype(users.dtype, np.integer):
            raise ParameterError(
                f"users must be a 1-D integer array with one index per context row ({X_context.shape[0]}), got "
                f"shape {users.shape} and dtype {users.dtype}."
            )
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            raise ParameterError(f"users must be fitted-user indices in [0, {self.n_users_}), got "
                                 f"{users.min()}..{users.max()}.")
        return users

    def predict(self, X_context, users=None) -> np.ndarray:
        """Scores of every item for the context rows (``users``: their fitted-user indices, where needed)."""
        self._check_fitted()
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        users = self._check_users(X_context, users)
        out = np.empty(X_context.shape, dtype=np.float32)
        for start in range(0, X_context.shape[0], 2048):
            stop = min(start + 2048, X_context.shape[0])
            out[start:stop] = np.asarray(self._score_users(self.params_, users[start:stop], X_context[start:stop]))
        return out

    def recommend(self, X_context, k: int = 10, exclude_seen: bool = True, users=None) -> np.ndarray:
        """Top-``k`` items of every context row, best first (see :meth:`Recommender.recommend`)."""
        from infae_kit.metrics import top_k_items

        scores = self.predict(X_context, users=users)
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        return top_k_items(scores, k, exclude=X_context if exclude_seen else None, inplace=True)

    def _scores(self, X_context):  # Recommender's hook (predict is overridden)
        return self.predict(X_context)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def _warm_start_params(fresh, given, model_name: str):
    """``given`` as jax float32 arrays, after checking it has the structure and shapes of ``fresh``."""
    try:
        given_leaves, given_tree = jax.tree_util.tree_flatten(given)
    except Exception as exc:  # pragma: no cover - jax accepts any pytree
        raise ParameterError(f"init_params is not a parameter tree: {exc}") from None
    fresh_leaves, fresh_tree = jax.tree_util.tree_flatten(fresh)
    if given_tree != fresh_tree:
        raise ParameterError(
            f"init_params does not have the structure of this {model_name}'s parameters ({fresh_tree}); pass the "
            "params_ of a model with the same architecture."
        )
    for i, (a, b) in enumerate(zip(fresh_leaves, given_leaves)):
        if tuple(np.shape(b)) != tuple(a.shape):
            raise ParameterError(
                f"init_params leaf {i} has shape {tuple(np.shape(b))}, this {model_name} needs {tuple(a.shape)}: "
                "warm starting needs the same architecture and the same item (and, per-user models, user) count."
            )
    return jax.tree_util.tree_unflatten(fresh_tree, [jnp.array(b, dtype=a.dtype) for a, b in zip(fresh_leaves,
                                                                                               given_leaves)])


def _bpr_loss(pos, neg, mask):
    return -jnp.sum(mask * jax.nn.log_sigmoid(pos - neg)) / jnp.maximum(jnp.sum(mask), 1.0)


def _dropout(key, x, rate):
    if rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class _BPRRecommender(_TrainedRecommender):
    """BPR training on (user, positive, negative) triplets of the train matrix."""

    needs_user_index = True

    def _setup(self, X):
        pass

    def _epoch_inputs(self, rng, X):
        users, pos, neg = sample_bpr_triplets(rng, X)
        arrays, mask = _batched([users, pos, neg], self.batch_size)
        return arrays + [mask]

    def _pair_scores(self, params, users, items, key, train):  # pragma: no cover - interface
        raise NotImplementedError

    def _l2_terms(self, params, users, pos, neg):
        return 0.0

    def _loss(self, params, batch, mask, key, step, aux):
        users, pos, neg = batch
        k1, k2 = jax.random.split(key)
        s_pos = self._pair_scores(params, users, pos, k1, True)
        s_neg = self._pair_scores(params, users, neg, k2, True)
        loss = _bpr_loss(s_pos, s_neg, mask)
        if self.l2:
            loss = loss + self.l2 * 0.5 * jnp.sum(mask * self._l2_terms(params, users, pos, neg)) / jnp.maximum(
                jnp.sum(mask), 1.0)
        return loss


def _normal(key, shape, std):
    return std * jax.random.normal(key, shape, dtype=jnp.float32)


# ----------------------------------------------------------------------------------------------------------
# MF
# ----------------------------------------------------------------------------------------------------------
class MF(_BPRRecommender):
    """Matrix factorisation with biases, ``α + β_u + β_i + γ_u·γ_i``, trained with BPR (paper Appendix B.1).

    Under BPR the global and user biases cancel in ``r̂_ui − r̂_uj`` and keep their initial value 0; the
    item bias and the embeddings are learned. Dropout applies to the embeddings during training.

    Args:
        latent_size: embedding size ``d`` (Table 3: {4, 8, 16, 32, 50, 64, 128}).
        learning_rate: Adam's step size (Table 3: {0.001, 0.006, 0.01}).
        dropout: embedding dropout rate (Table 3: {0, 0.3, 0.5}).
        l2: weight of ``½ Σ_batch (‖γ_u‖² + ‖γ_i‖² + ‖γ_j‖² + β_i² + β_j²) / batch`` added to the loss.
        batch_size, epochs, eval_every, patience, seed, progress: training loop (see :meth:`fit`).
    """

    name = "mf"

    def __init__(self, latent_size: int = 64, learning_rate: float = 0.001, dropout: float = 0.0, l2: float = 1e-4,
                 **training) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)

    def _init_params(self, key):
        ku, ki = jax.random.split(key)
        d = self.latent_size
        return {
            "global_bias": jnp.zeros((), jnp.float32),
            "user_bias": jnp.zeros(self.n_users_, jnp.float32),
            "item_bias": jnp.zeros(self.n_items_, jnp.float32),
            "user_emb": _normal(ku, (self.n_users_, d), 0.1),
            "item_emb": _normal(ki, (self.n_items_, d), 0.1),
        }

    def _pair_scores(self, params, users, items, key, train):
        ku, ki = jax.random.split(key)
        gu = params["user_emb"][users]
        gi = params["item_emb"][items]
        if train:
            gu, gi = _dropout(ku, gu, self.dropout), _dropout(ki, gi, self.dropout)
        return (params["global_bias"] + params["user_bias"][users] + params["item_bias"][items]
                + jnp.sum(gu * gi, axis=-1))

    def _l2_terms(self, params, users, pos, neg):
        ue, ie, ib = params["user_emb"], params["item_emb"], params["item_bias"]
        return (jnp.sum(ue[users] ** 2, -1) + jnp.sum(ie[pos] ** 2, -1) + jnp.sum(ie[neg] ** 2, -1)
                + ib[pos] ** 2 + ib[neg] ** 2)

    def _score_users(self, params, users, X_rows):
        return _mf_scores(params, jnp.asarray(users))


@jax.jit
def _mf_scores(params, users):
    return (params["global_bias"] + params["user_bias"][users][:, None] + params["item_bias"][None, :]
            + params["user_emb"][users] @ params["item_emb"].T)


# ----------------------------------------------------------------------------------------------------------
# NeuMF
# ----------------------------------------------------------------------------------------------------------
def _glorot(key, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)


class NeuMF(_BPRRecommender):
    """Neural matrix factorisation (He et al., 2017) with biases: ``α + β_u + β_i + φ(γ_u, γ_i)``, BPR.

    φ concatenates the GMF branch ``γ^G_u ⊙ γ^G_i`` and an MLP tower over ``[γ^M_u; γ^M_i]`` (``n_layers``
    ReLU layers of width ``latent_size``) and maps them to a score with one linear layer. The two branches
    have their own embeddings, as in the NeuMF paper (no pre-training). Dropout applies to the embeddings.

    Args:
        latent_size, learning_rate, dropout, l2: as :class:`MF` (l2 covers all four embedding tables).
        n_layers: MLP depth (Table 3: {1, 2, 3}).
    """

    name = "neumf"
    _extra_config = ("n_layers",)

    def __init__(self, latent_size: int = 64, n_layers: int = 1, learning_rate: float = 0.001, dropout: float = 0.0,
                 l2: float = 1e-4, **training) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = _positive_int("n_layers", n_layers)

    def _init_params(self, key):
        d = self.latent_size
        keys = jax.random.split(key, 6 + self.n_layers)
        mlp = []
        fan_in = 2 * d
        for layer in range(self.n_layers):
            mlp.append({"w": _glorot(keys[6 + layer], fan_in, d), "b": jnp.zeros(d, jnp.float32)})
            fan_in = d
        return {
            "global_bias": jnp.zeros((), jnp.float32),
            "user_bias": jnp.zeros(self.n_users_, jnp.float32),
            "item_bias": jnp.zeros(self.n_items_, jnp.float32),
            "gmf_user": _normal(keys[0], (self.n_users_, d), 0.1),
            "gmf_item": _normal(keys[1], (self.n_items_, d), 0.1),
            "mlp_user": _normal(keys[2], (self.n_users_, d), 0.1),
            "mlp_item": _normal(keys[3], (self.n_items_, d), 0.1),
            "mlp": mlp,
            "out": _glorot(keys[4], 2 * d, 1)[:, 0],
        }

    def _pair_scores(self, params, users, items, key, train):
        keys = jax.random.split(key, 4)
        gu, gi = params["gmf_user"][users], params["gmf_item"][items]
        mu, mi = params["mlp_user"][users], params["mlp_item"][items]
        if train:
            gu, gi = _dropout(keys[0], gu, self.dropout), _dropout(keys[1], gi, self.dropout)
            mu, mi = _dropout(keys[2], mu, self.dropout), _dropout(keys[3], mi, self.dropout)
        h = jnp.concatenate([mu, mi], axis=-1)
        for layer in params["mlp"]:
            h = jax.nn.relu(h @ layer["w"] + layer["b"])
        phi = jnp.concatenate([gu * gi, h], axis=-1) @ params["out"]
        return params["global_bias"] + params["user_bias"][users] + params["item_bias"][items] + phi

    def _l2_terms(self, params, users, pos, neg):
        total = params["item_bias"][pos] ** 2 + params["item_bias"][neg] ** 2
        for u, i in (("gmf_user", "gmf_item"), ("mlp_user", "mlp_item")):
            total = total + jnp.sum(params[u][users] ** 2, -1) + jnp.sum(params[i][pos] ** 2, -1) + jnp.sum(
                params[i][neg] ** 2, -1)
        return total

    def _score_users(self, params, users, X_rows):
        # users × all items without materialising every (user, item) concatenation: the first MLP layer is
        # split into its user and item halves; blocks of users keep the (b, m, d) hidden state ≈ 64 MiB.
        block = max(1, (1 << 24) // (self.n_items_ * self.latent_size))
        out = []
        for start in range(0, len(users), block):
            out.append(np.asarray(_neumf_block_scores(params, jnp.asarray(users[start:start + block]))))
        return np.concatenate(out) if out else np.zeros((0, self.n_items_), np.float32)


@jax.jit
def _neumf_block_scores(params, users):
    d = params["gmf_user"].shape[1]
    out_gmf, out_mlp = params["out"][:d], params["out"][d:]
    gmf = (params["gmf_user"][users] * out_gmf) @ params["gmf_item"].T  # (b, m)
    first = params["mlp"][0]
    hu = params["mlp_user"][users] @ first["w"][:d]  # (b, d)
    hi = params["mlp_item"] @ first["w"][d:] + first["b"]  # (m, d)
    h = jax.nn.relu(hu[:, None, :] + hi[None, :, :])
    for layer in params["mlp"][1:]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return (params["global_bias"] + params["user_bias"][users][:, None] + params["item_bias"][None, :] + gmf
            + h @ out_mlp)


# ----------------------------------------------------------------------------------------------------------
# LightGCN
# ----------------------------------------------------------------------------------------------------------
class _BipartiteProduct:
    """``R̃ @ E_items`` and ``R̃ᵀ @ E_users`` for a sparse ``n × m`` matrix, differentiable, done by SciPy.

    The structure (indices) is fixed; the values are an argument so that edge dropout can zero some of them.
    The products run in ``jax.pure_callback``; their VJPs are the transposed products (the values get no
    gradient: they are constants of the graph).
    """

    def __init__(self, X: sp.csr_matrix) -> None:
        X = sp.csr_matrix(X)
        self.shape = X.shape
        self.indptr, self.indices = X.indptr.copy(), X.indices.copy()
        marker = sp.csr_matrix((np.arange(X.nnz, dtype=np.float64) + 1, X.indices, X.indptr), shape=X.shape)
        transposed = marker.T.tocsr()
        transposed.sort_indices()
        self.t_indptr, self.t_indices = transposed.indptr.copy(), transposed.indices.copy()
        self.t_order = (transposed.data - 1).astype(np.int64)  # transposed value j = values[t_order[j]]

        def host_product(values, dense, transpose):
            values = np.asarray(values)
            if transpose:
                matrix = sp.csr_matrix((values[self.t_order], self.t_indices, self.t_indptr),
                                       shape=(self.shape[1], self.shape[0]))
            else:
                matrix = sp.csr_matrix((values, self.indices, self.indptr), shape=self.shape)
            return np.asarray(matrix @ np.asarray(dense), dtype=np.float32)

        def call(values, dense, transpose):
            rows = self.shape[1] if transpose else self.shape[0]
            out = jax.ShapeDtypeStruct((rows, dense.shape[1]), jnp.float32)
            return jax.pure_callback(lambda v, d: host_product(v, d, transpose), out, values, dense,
                                     vmap_method="sequential")

        def product(transpose: bool):
            """``A @ dense`` (or ``Aᵀ @ dense``) whose gradient in ``dense`` is the transposed product."""
            @jax.custom_vjp
            def apply(values, dense):
                return call(values, dense, transpose)

            def apply_fwd(values, dense):
                return call(values, dense, transpose), values

            def apply_bwd(values, cotangent):
                return jnp.zeros_like(values), call(values, cotangent, not transpose)

            apply.defvjp(apply_fwd, apply_bwd)
            return apply

        self.users_from_items = product(False)  # (values, (m, d)) -> (n, d)
        self.items_from_users = product(True)  # (values, (n, d)) -> (m, d)


class LightGCN(_BPRRecommender):
    """LightGCN (He et al., 2020): ``e^(k+1) = Â e^(k)`` on the user–item graph, final = mean of layers 0..K.

    ``Â = D^{-1/2} A D^{-1/2}`` with ``A`` the bipartite adjacency of the train matrix; score = ``e_u · e_i``
    of the final embeddings. BPR loss plus ``l2 · ½ (‖e⁰_u‖² + ‖e⁰_i‖² + ‖e⁰_j‖²)`` averaged over the batch (the
    official implementation's weight decay, 1e-4). ``dropout`` drops graph edges during training (rescaling the
    kept ones), as the official implementation's ``dropout`` / ``keep_prob``.

    Args:
        latent_size: embedding size (Table 3 grid).
        n_layers: propagation layers K (Table 3: {1, 2, 3}).
        learning_rate, dropout, l2, batch_size, ...: see :class:`MF`.
    """

    name = "lightgcn"
    _extra_config = ("n_layers",)

    def __init__(self, latent_size: int = 64, n_layers: int = 3, learning_rate: float = 0.001, dropout: float = 0.0,
                 l2: float = 1e-4, **training) -> None:
        training.setdefault("batch_size", 16384)
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = _positive_int("n_layers", n_layers)

    def _setup(self, X):
        user_degree = np.asarray(X.sum(axis=1)).ravel()
        item_degree = np.asarray(X.sum(axis=0)).ravel()
        coo = X.tocoo()
        norm = 1.0 / np.sqrt(np.maximum(user_degree[coo.row], 1) * np.maximum(item_degree[coo.col], 1))
        self._graph = _BipartiteProduct(X)
        self._edge_values = jnp.asarray(norm.astype(np.float32))  # coo of a csr keeps csr order

    def _init_params(self, key):
        ku, ki = jax.random.split(key)
        return {"user_emb": _normal(ku, (self.n_users_, self.latent_size), 0.1),
                "item_emb": _normal(ki, (self.n_items_, self.latent_size), 0.1)}

    def _propagate(self, params, values):
        users, items = params["user_emb"], params["item_emb"]
        sum_users, sum_items = users, items
        for _ in range(self.n_layers):
            users, items = (self._graph.users_from_items(values, items), self._graph.items_from_users(values, users))
            sum_users, sum_items = sum_users + users, sum_items + items
        return sum_users / (self.n_layers + 1), sum_items / (self.n_layers + 1)

    def _aux(self):
        return {"edge_values": self._edge_values}

    def _loss(self, params, batch, mask, key, step, aux):
        users, pos, neg = batch
        values = aux["edge_values"]
        if self.dropout:
            values = _dropout(key, values, self.dropout)
        final_users, final_items = self._propagate(params, values)
        eu = final_users[users]
        loss = _bpr_loss(jnp.sum(eu * final_items[pos], -1), jnp.sum(eu * final_items[neg], -1), mask)
        if self.l2:
            ue, ie = params["user_emb"], params["item_emb"]
            reg = jnp.sum(ue[users] ** 2, -1) + jnp.sum(ie[pos] ** 2, -1) + jnp.sum(ie[neg] ** 2, -1)
            loss = loss + self.l2 * 0.5 * jnp.sum(mask * reg) / jnp.maximum(jnp.sum(mask), 1.0)
        return loss

    def _final_embeddings(self, params):
        cached = getattr(self, "_final_cache", None)
        if cached is None or cached[0] is not params:  # propagate once per parameter set, not per user block
            if getattr(self, "_propagate_jit", None) is None:
                self._propagate_jit = jax.jit(self._propagate)
            cached = (params, self._propagate_jit(params, self._edge_values))
            self._final_cache = cached
        return cached[1]

    def _score_users(self, params, users, X_rows):
        final_users, final_items = self._final_embeddings(params)
        return np.asarray(final_users[jnp.asarray(users)] @ final_items.T)

    def _finalize(self, params):
        self._final_cache = None
        self._final_embeddings(params)


# ----------------------------------------------------------------------------------------------------------
# MVAE
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Replay:
    """Rows replayed from earlier data with soft targets, for :meth:`MVAE.fit` (ADER's exemplars).

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


class MVAE(_TrainedRecommender):
    """Multinomial variational autoencoder (Liang et al., 2018).

    Encoder: dropout on the L2-normalised input row, ``n_layers − 1`` tanh layers of width ``hidden_size``,
    then a linear layer to ``(μ, log σ²)`` of size ``latent_size``. Decoder: the mirror (tanh hidden layers,
    linear output = item logits). Loss per user: ``−Σ_i x_i log softmax(logits)_i + β KL(q(z|x) ‖ N(0, I))``
    with ``β = min(anneal_cap, step / anneal_steps)`` (KL annealing). Scores: the logits at ``z = μ``.
    Any context row can be scored.

    For continual learning (:mod:`infae_kit.continual_models`) :meth:`fit` also takes ``init_params`` /
    ``init_step`` (warm start from an earlier model, the annealing schedule continuing), a :class:`Replay`
    (ADER's exemplars with a distillation term) and ``binarize=False`` (soft rows, e.g. a DISTILL-CF support).

    Training runs one jit-compiled step per mini-batch of exactly ``batch_size`` rows (the last batch padded and
    masked), and the compiled step is shared by every MVAE with the same architecture and optimisation
    settings: fits on matrices of different sizes — one per period in a continual run — compile once.

    Args:
        latent_size: size of z (Table 3 grid; Liang et al. use 200).
        n_layers: encoder depth (1: input → z directly; 2: the paper's [I → 600 → d]; Table 3: {1, 2, 3}).
        hidden_size: width of the hidden layers (600 as Liang et al.).
        learning_rate: Adam step size.
        dropout: input dropout rate (Liang et al.: 0.5).
        anneal_cap, anneal_steps: KL annealing (Liang et al.: 0.2, 200,000 steps).
        l2: weight decay on the weight matrices (Liang et al.'s λ; default 0).
        batch_size: users per step (Liang et al.: 500).
    """

    name = "mvae"
    _extra_config = ("n_layers", "hidden_size", "anneal_cap", "anneal_steps")

    def __init__(self, latent_size: int = 200, n_layers: int = 2, hidden_size: int = 600, learning_rate: float = 0.001,
                 dropout: float = 0.5, anneal_cap: float = 0.2, anneal_steps: int = 20000, l2: float = 0.0,
                 **training) -> None:
        training.setdefault("batch_size", 500)
        training.setdefault("eval_every", 2)
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = _positive_int("n_layers", n_layers)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.anneal_cap = _non_negative_float("anneal_cap", anneal_cap)
        self.anneal_steps = _positive_int("anneal_steps", anneal_steps)
        self._replay = None
        self._binarize = True
        self._dense = None

    # --- continual-learning entry point -------------------------------------------------------------------
    def fit(self, X, validation=None, *, init_params=None, init_step: int = 0, replay: Replay | None = None,
            binarize: bool = True) -> "MVAE":
        """Train on ``X``; see :meth:`_TrainedRecommender.fit` for ``validation``, ``init_params``, ``init_step``.

        Args:
            replay: a :class:`Replay`: rows appended to ``X`` whose loss is a weighted distillation term instead
                of the ELBO (ADER). Each batch mixes new and replayed rows in the proportion of the whole (as
                ADER's sampler spreads its exemplars over the batches). With ``validation``, the replayed rows
                are scored as users without held-out items (the early-stopping choice is unchanged).
            binarize: ``False`` keeps ``X``'s values (finite, ≥ 0) as soft counts in the multinomial
                likelihood, e.g. for a DISTILL-CF support of values in [0, 1]; the default binarises.
        """
        self._binarize = bool(binarize)
        try:
            if replay is not None:
                X, validation = self._with_replay(X, validation, replay)
            return super().fit(X, validation, init_params=init_params, init_step=init_step)
        finally:
            self._replay, self._binarize, self._dense = None, True, None

    def _with_replay(self, X, validation, replay: Replay):
        if not isinstance(replay, Replay):
            raise ParameterError(f"replay must be an infae_kit.competitors.Replay, got {type(replay).__name__}.")
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
        weight = _non_negative_float("replay.weight", replay.weight)
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
            return _binary_train(X)
        X = check_interactions(X, "X")
        if X.nnz == 0 or not np.any(X.data > 0):
            raise DataError(f"X has no interactions (shape {X.shape}); the model needs at least one.")
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        X.sort_indices()
        return X

    # --- the training hooks -------------------------------------------------------------------------------
    def _setup(self, X):
        needed = X.shape[0] * X.shape[1] * 4
        if needed > available_memory_bytes() // 2:
            raise MemoryBudgetError(
                f"MVAE keeps the dense {X.shape[0]} × {X.shape[1]} train matrix ({needed / 2**30:.2f} GiB) in memory, "
                "more than half of what is available; use fewer users or items."
            )
        self._dense = X.toarray().astype(np.float32)

    def _finalize(self, params):
        self._dense = None  # the dense train copy is only needed for training

    def _layer_sizes(self):
        hidden = [self.hidden_size] * (self.n_layers - 1)
        return [self.n_items_] + hidden + [2 * self.latent_size], [self.latent_size] + hidden + [self.n_items_]

    def _init_params(self, key):
        enc, dec = self._layer_sizes()
        keys = jax.random.split(key, len(enc) + len(dec))
        layers = lambda sizes, ks: [{"w": _glorot(k, a, b), "b": jnp.zeros(b, jnp.float32)}
                                    for k, a, b in zip(ks, sizes[:-1], sizes[1:])]
        return {"encoder": layers(enc, keys[: len(enc) - 1]), "decoder": layers(dec, keys[len(enc):])}

    def _epoch_inputs(self, rng, X):
        """``[rows (n_batches, batch_size), mask]``: a permutation of the rows in full batches (the last padded).

        With a replay, the new and the replayed rows are each permuted and then interleaved at even spacing,
        so that every batch holds them in the proportion of the whole.
        """
        n_rows = X.shape[0]
        if self._replay is None:
            order = rng.permutation(n_rows)
        else:
            n_new = self._replay["n_new"]
            new, old = rng.permutation(n_new), n_new + rng.permutation(n_rows - n_new)
            position = np.concatenate([(np.arange(n_new) + 0.5) / n_new,
                                       (np.arange(n_rows - n_new) + 0.5) / max(n_rows - n_new, 1)])
            order = np.concatenate([new, old])[np.argsort(position, kind="stable")]
        arrays, mask = _batched([order.astype(np.int32)], self.batch_size)
        return arrays + [mask]

    def _epoch_program(self, optimizer):
        """One epoch = a Python loop over the batches, each a call of the shared jit-compiled step."""
        step_fn = _mvae_step(self, optimizer)
        replay = self._replay

        def epoch(params, opt_state, key, step_index, inputs, aux):
            rows, mask = (np.asarray(a) for a in inputs)
            losses = []
            for b in range(rows.shape[0]):
                key, sub = jax.random.split(key)
                r = rows[b]
                extra = None
                if replay is not None:
                    n_new = replay["n_new"]
                    is_old = (r >= n_new) & (mask[b] > 0)
                    targets = np.zeros((len(r), self.n_items_), np.float32)
                    targets[is_old] = replay["targets"][r[is_old] - n_new]
                    extra = {"targets": targets, "is_new": ((mask[b] > 0) & ~is_old).astype(np.float32),
                             "items": replay["items"], "weight": np.float32(replay["weight"])}
                params, opt_state, loss = step_fn(params, opt_state, sub, step_index, self._dense[r], mask[b], extra)
                step_index = step_index + 1
                losses.append(loss)
            return params, opt_state, step_index, jnp.mean(jnp.stack(losses))

        return epoch

    def _static_config(self) -> tuple:
        """What the compiled step depends on (everything but the data, the seed and the schedule length)."""
        return (self.n_items_, self.latent_size, self.n_layers, self.hidden_size, self.dropout, self.anneal_cap,
                self.anneal_steps, self.l2, self.learning_rate, self.batch_size)

    # --- the model ------------------------------------------------------------------------------------------
    def _encode(self, params, x, key, train):
        x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        if train:
            x = _dropout(key, x, self.dropout)
        h = x
        for i, layer in enumerate(params["encoder"]):
            h = h @ layer["w"] + layer["b"]
            if i < len(params["encoder"]) - 1:
                h = jnp.tanh(h)
        return h[:, : self.latent_size], h[:, self.latent_size:]

    def _decode(self, params, z):
        h = z
        for i, layer in enumerate(params["decoder"]):
            h = h @ layer["w"] + layer["b"]
            if i < len(params["decoder"]) - 1:
                h = jnp.tanh(h)
        return h

    def _batch_loss(self, params, x, mask, key, step, replay):
        """Loss of one batch of dense rows ``x`` (``mask``: 1 for real rows); ``replay``: see :class:`Replay`."""
        k_drop, k_eps = jax.random.split(key)
        mu, logvar = self._encode(params, x, k_drop, True)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k_eps, mu.shape)
        logits = self._decode(params, z)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.sum(log_probs * x, axis=-1)
        kl = 0.5 * jnp.sum(-logvar + jnp.exp(logvar) + mu**2 - 1.0, axis=-1)
        beta = jnp.minimum(self.anneal_cap, step.astype(jnp.float32) / self.anneal_steps)
        if replay is None:
            loss = jnp.sum(mask * (nll + beta * kl)) / jnp.maximum(jnp.sum(mask), 1.0)
        else:
            new = replay["is_new"]
            old = mask - new
            loss = jnp.sum(new * (nll + beta * kl)) / jnp.maximum(jnp.sum(new), 1.0)
            # distillation over the replay items only; masked logits stay finite so that 0 · log q is 0
            log_q = jax.nn.log_softmax(jnp.where(replay["items"], logits, -1e9), axis=-1)
            kd = -jnp.sum(replay["targets"] * log_q, axis=-1)
            loss = loss + replay["weight"] * jnp.sum(old * kd) / jnp.maximum(jnp.sum(old), 1.0)
        if self.l2:
            loss = loss + self.l2 * sum(jnp.sum(layer["w"] ** 2) for part in ("encoder", "decoder")
                                        for layer in params[part])
        return loss

    def _loss(self, params, batch, mask, key, step, aux):  # the base interface (unused by MVAE's own epoch)
        (users,) = batch
        return self._batch_loss(params, aux["dense"][users], mask, key, step, None)

    def _score_users(self, params, users, X_rows):
        x = jnp.asarray((sp.csr_matrix(X_rows) > 0).astype(np.float32).toarray())
        return np.asarray(self._scores_jit(params, x))

    @property
    def _scores_jit(self):
        fn = getattr(self, "_scores_fn", None)
        if fn is None:
            fn = jax.jit(lambda params, x: self._decode(params, self._encode(params, x, None, False)[0]))
            self._scores_fn = fn
        return fn

    def latent_means(self, X_context) -> np.ndarray:
        """``(b, latent_size)`` float32: the encoder's mean μ(x) of each context row (binarised), no dropout.

        The representation of a user that ADER's herding selects exemplars in.
        """
        self._check_fitted()
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        fn = getattr(self, "_means_fn", None)
        if fn is None:
            fn = self._means_fn = jax.jit(lambda params, x: self._encode(params, x, None, False)[0])
        out = np.empty((X_context.shape[0], self.latent_size), dtype=np.float32)
        for start in range(0, X_context.shape[0], 2048):
            rows = X_context[start: start + 2048]
            out[start: start + rows.shape[0]] = np.asarray(
                fn(self.params_, jnp.asarray((rows > 0).astype(np.float32).toarray())))
        return out


_MVAE_STEPS: dict[tuple, Callable] = {}


def _mvae_step(model: MVAE, optimizer) -> Callable:
    """The jit-compiled training step of MVAEs with ``model``'s static configuration (built once, then shared).

    The step closes over a private copy of the configuration, so later changes to ``model`` cannot leak into
    other models' steps. ``optimizer`` must be ``optax.adam(model.learning_rate)`` (part of the key).
    """
    key = model._static_config()
    fn = _MVAE_STEPS.get(key)
    if fn is None:
        proto = MVAE(latent_size=model.latent_size, n_layers=model.n_layers, hidden_size=model.hidden_size,
                     learning_rate=model.learning_rate, dropout=model.dropout, anneal_cap=model.anneal_cap,
                     anneal_steps=model.anneal_steps, l2=model.l2, batch_size=model.batch_size)
        proto.n_items_ = model.n_items_
        loss_and_grad = jax.value_and_grad(proto._batch_loss)

        @jax.jit
        def fn(params, opt_state, key, step_index, x, mask, replay):
            loss, grads = loss_and_grad(params, x, mask, key, step_index, replay)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        if len(_MVAE_STEPS) >= 16:  # a handful of configurations per session; bound the cache anyway
            _MVAE_STEPS.pop(next(iter(_MVAE_STEPS)))
        _MVAE_STEPS[key] = fn
    return fn


# ----------------------------------------------------------------------------------------------------------
# factory, search, recorded configurations
# ----------------------------------------------------------------------------------------------------------
_CLASSES: dict[str, type] = {"bias": BiasOnly, "mf": MF, "neumf": NeuMF, "lightgcn": LightGCN, "mvae": MVAE}


def make_competitor(name: str, **params) -> Recommender:
    """An unfitted competitor by model key (``bias``, ``mf``, ``neumf``, ``lightgcn``, ``mvae``).

    Raises:
        ParameterError: unknown model name, unknown or invalid hyper-parameter.
    """
    if name not in _CLASSES:
        raise ParameterError(f"unknown competitor {name!r}; known: {', '.join(COMPETITOR_NAMES)}.")
    cls = _CLASSES[name]
    if name == "mf":
        params.pop("n_layers", None)  # MF has no layers; Table 3 lists one grid for all models
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParameterError(f"{name}: {exc}. See help(infae_kit.competitors.{cls.__name__}).") from None


def parse_competitor_names(text: str | Sequence[str]) -> list[str]:
    """``"mf,mvae"`` → ``["mf", "mvae"]``; ``"all"`` → every competitor; ``""``/``"none"`` → ``[]``."""
    if isinstance(text, str):
        items = [t.strip().lower() for t in text.split(",") if t.strip()]
    else:
        items = [str(t).strip().lower() for t in text]
    if items in ([], ["none"]):
        return []
    if items == ["all"]:
        return list(COMPETITOR_NAMES)
    unknown = [t for t in items if t not in COMPETITOR_NAMES]
    if unknown:
        raise ParameterError(
            f"unknown competitor name(s) {unknown}; use a comma-separated list of {', '.join(COMPETITOR_NAMES)}, "
            "or all, or none."
        )
    return list(dict.fromkeys(items))


def recorded_config(name: str, dataset: str, path: str | Path | None = None) -> dict[str, Any]:
    """The best configuration recorded for ``name`` on ``dataset`` (empty dict: use the class defaults).

    Datasets without a recorded entry fall back to the ``"default"`` entry of the file, if any.
    """
    parse_competitor_names([name])
    configs = _read_configs(path)
    entry = configs.get(dataset, {}).get(name) or configs.get("default", {}).get(name) or {}
    return dict(entry.get("config", {}))


def _read_configs(path=None) -> dict:
    path = Path(path) if path is not None else CONFIGS_PATH
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); fix or delete the file.") from exc


def record_config(name: str, dataset: str, config: dict, validation: dict | None = None, note: str = "",
                  path: str | Path | None = None) -> Path:
    """Record (atomically) ``config`` as the best configuration of ``name`` on ``dataset``."""
    parse_competitor_names([name])
    path = Path(path) if path is not None else CONFIGS_PATH
    configs = _read_configs(path)
    entry = {"config": dict(config)}
    if validation is not None:
        entry["validation"] = {k: round(float(v), 4) for k, v in validation.items()}
    if note:
        entry["note"] = note
    configs.setdefault(dataset, {})[name] = entry
    return atomic_write_json(path, configs)


@dataclass
class CompetitorReport:
    """One competitor trained with one configuration and evaluated with the paper's protocol."""

    name: str
    config: dict[str, Any]
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    model: Any = field(repr=False)
    test: Any = field(repr=False, default=None)
    timings_s: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    trials: list[dict] = field(default_factory=list)


def fit_and_evaluate_competitor(name: str, data, config: dict | None = None, *, progress: bool = False,
                                keep_top_k: bool = True, test: bool = True) -> CompetitorReport:
    """Train ``name`` with ``config`` on ``data.train`` (early stopping on ``data.val``), evaluate val and test.

    Test uses train + validation as context, as for every model of the kit (the model itself is not refitted).
    """
    from infae_kit.evaluation import evaluate_model

    config = dict(config or {})
    if name != "bias":
        config["progress"] = progress
    t0 = time.perf_counter()
    model = make_competitor(name, **config).fit(data.train, validation=data.val)
    t1 = time.perf_counter()
    val = evaluate_model(model, data, "val").metrics
    test_result = evaluate_model(model, data, "test", keep_top_k=keep_top_k) if test else None
    t2 = time.perf_counter()
    config.pop("progress", None)
    return CompetitorReport(name, config, val, test_result.metrics if test else {}, model, test_result,
                            {"fit": t1 - t0, "evaluate": t2 - t1, "total": t2 - t0},
                            getattr(model, "best_epoch_", None))


def _sample_configs(name: str, n_trials: int, seed: int, grid: dict | None = None) -> list[dict]:
    keys = SEARCH_SPACE[name]
    grid = {k: tuple((grid or SEARCH_GRID)[k]) for k in keys}
    every = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if n_trials >= len(every):
        return every
    rng = np.random.default_rng([seed, COMPETITOR_NAMES.index(name)])  # models with equal grids draw differently
    return [every[i] for i in rng.choice(len(every), size=n_trials, replace=False)]


def search_competitor(name: str, data, n_trials: int = 8, *, seed: int = 0, grid: dict | None = None,
                      fixed: dict | None = None, progress: bool = False) -> CompetitorReport:
    """Budgeted random search over Table 3's grid (+ L2) on validation HR@100, then test with the best configuration.

    Args:
        name: model key.
        data: a RecDataset.
        n_trials: configurations drawn without replacement from the model's grid (all of them if the grid is
            smaller); Bias-only has no grid and is fitted once.
        seed: seed of the draw (each model is trained with its own ``seed``, default 42).
        grid: override :data:`SEARCH_GRID` (same keys).
        fixed: training parameters shared by every trial (``epochs``, ``batch_size``, ...).
        progress: a progress bar over trials.

    Returns:
        The best trial's :class:`CompetitorReport`, with ``trials`` listing every configuration's validation
        metrics and training time.
    """
    from tqdm.auto import tqdm

    n_trials = _positive_int("n_trials", n_trials)
    configs = [{}] if name == "bias" else _sample_configs(name, n_trials, seed, grid)
    trials, best = [], None
    for config in tqdm(configs, desc=f"{name} search", disable=not progress, leave=False):
        full = {**(fixed or {}), **config}
        report = fit_and_evaluate_competitor(name, data, full, test=False)
        trials.append({"config": full, "val": report.val_metrics, "fit_s": report.timings_s["fit"],
                       "best_epoch": report.best_epoch})
        if best is None or report.val_metrics[SELECT_BY] > best.val_metrics[SELECT_BY]:
            best = report
    from infae_kit.evaluation import evaluate_model

    test = evaluate_model(best.model, data, "test", keep_top_k=True)
    best.test, best.test_metrics, best.trials = test, test.metrics, trials
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infae_kit.competitors search --dataset magazine --models mf,mvae --trials 8 [--record]``."""
    parser = argparse.ArgumentParser(prog="python -m infae_kit.competitors")
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="random search over Table 3's grid on validation HR@100")
    search.add_argument("--dataset", required=True)
    search.add_argument("--models", default="all", help="comma-separated model keys, or all")
    search.add_argument("--trials", type=int, default=8)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--fixed", default="{}", help='JSON of shared training parameters, e.g. {"epochs": 60}')
    search.add_argument("--record", action="store_true", help="record each best configuration in the repo")
    search.add_argument("--out", type=Path, default=None, help="write every trial and the test metrics here (JSON)")
    args = parser.parse_args(argv)

    from infae_kit.data import load_dataset

    data = load_dataset(args.dataset)
    fixed = json.loads(args.fixed)
    summary = {}
    for name in parse_competitor_names(args.models):
        t0 = time.perf_counter()
        report = search_competitor(name, data, args.trials, seed=args.seed, fixed=fixed, progress=True)
        elapsed = time.perf_counter() - t0
        print(f"{args.dataset} {name}: best {report.config} val HR@100 {report.val_metrics[SELECT_BY]:.2f} "
              f"test HR@10 {report.test_metrics['HR@10']:.2f} NDCG@10 {report.test_metrics['NDCG@10']:.2f} "
              f"({len(report.trials)} trials, {elapsed:.0f} s)", flush=True)
        summary[name] = {"best": report.config, "val": report.val_metrics, "test": report.test_metrics,
                         "trials": report.trials, "search_s": elapsed}
        if args.record:
            record_config(name, args.dataset, report.config, {SELECT_BY: report.val_metrics[SELECT_BY]},
                          note=f"random search, {len(report.trials)} trials of Table 3's grid, seed {args.seed}, "
                               f"fixed {fixed}")
        if args.out is not None:
            atomic_write_json(args.out, {"dataset": args.dataset, "models": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
