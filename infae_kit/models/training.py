"""What the trained competitors share: parameter checks, BPR triplet sampling and the training loop (Adam,
jit-compiled epochs, early stopping on validation HR@100, a progress bar)."""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from infae_kit.checks import (
    MatrixLike,
    binary_interactions,
    check_interactions,
    check_seed,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
)
from infae_kit.errors import DataError, NumericalError, ParameterError
from infae_kit.evaluation.metrics import propensity_weights
from infae_kit.io_utils import progress_bar
from infae_kit.models.base import Recommender

__all__ = [
    "SELECT_BY",
    "sample_bpr_triplets",
    "batched",
    "TrainedRecommender",
    "warm_start_params",
    "bpr_loss",
    "apply_dropout",
    "BPRRecommender",
    "normal_init",
    "glorot_init",
]

SELECT_BY = "HR@100"
"""Validation metric that early stopping and the hyper-parameter search maximise (as for ∞-AE and EASE)."""


# ----------------------------------------------------------------------------------------------------------
# parameter checks
# ----------------------------------------------------------------------------------------------------------

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


def batched(arrays: Sequence[np.ndarray], batch_size: int) -> tuple[list[np.ndarray], np.ndarray]:
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
class TrainedRecommender(Recommender):
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
        self.latent_size = positive_int("latent_size", latent_size)
        self.learning_rate = positive_float("learning_rate", learning_rate)
        self.dropout = fraction("dropout", dropout)
        self.l2 = non_negative_float("l2", l2)
        self.batch_size = positive_int("batch_size", batch_size)
        self.epochs = positive_int("epochs", epochs)
        self.eval_every = positive_int("eval_every", eval_every)
        self.patience = positive_int("patience", patience)
        self.seed = check_seed(seed)
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

    def _optimizer(self) -> optax.GradientTransformation:
        """The optimiser :meth:`fit` trains with: Adam at ``learning_rate`` (NeuMF can fine-tune with plain SGD)."""
        return optax.adam(self.learning_rate)

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

    def fit(self, X: MatrixLike, validation: MatrixLike | None = None, *, init_params: Any = None,
            init_step: int = 0) -> "TrainedRecommender":
        """Train on ``X`` (users × items, binarised); early-stop on ``validation`` HR@100 if given.

        Args:
            X: ``(n_users, n_items)`` train interactions.
            validation: optional ``(n_users, n_items)`` held-out positives of the same users (e.g.
                ``data.val``). Every ``eval_every`` epochs the model ranks all items for every user with
                ``X``'s items excluded; training stops after ``patience`` evaluations without a better
                validation HR@100 and the best parameters are kept. Without it, training runs ``epochs``
                epochs and keeps the last parameters.
            init_params: warm start: start from these parameters (e.g. ``previous.params_``, same
                architecture and item count) instead of a fresh seeded initialisation. The optimiser's state
                (Adam's moments) starts afresh. Models whose parameters are per user (MF, NeuMF, LightGCN) also need the same users.
            init_step: value of the optimisation-step counter at the start (schedules that depend on it, such
                as MVAE's KL annealing, continue from there; pass ``previous.steps_run_`` to continue).

        Returns:
            ``self``, with ``history_`` (epoch, loss, validation metrics), ``best_epoch_``, ``train_time_s_``
            and ``steps_run_`` (the step counter at the end: ``init_step`` + the steps taken).
        """
        from infae_kit.evaluation.protocol import MetricAccumulator, user_batches

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
            params = warm_start_params(params, init_params, type(self).__name__)
        optimizer = self._optimizer()
        opt_state = optimizer.init(params)
        epoch_program = self._epoch_program(optimizer)
        aux = self._aux()
        rng = np.random.default_rng(self.seed)
        step_index = jnp.asarray(int(init_step), dtype=jnp.int32)
        weights = propensity_weights(X)
        self.history_ = []
        best_value, best_params, best_epoch, stale = -np.inf, params, 0, 0
        bar = progress_bar(range(1, self.epochs + 1), desc=f"{self.name} epochs", enabled=self.progress)
        for epoch in bar:
            inputs = [jnp.asarray(a) for a in self._epoch_inputs(rng, X)]
            params, opt_state, step_index, loss = epoch_program(params, opt_state, jax.random.fold_in(key, epoch),
                                                                step_index, inputs, aux)
            loss = float(loss)
            if not math.isfinite(loss):
                bar.fail()
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
        bar.finish()  # an early stop is a normal end
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
        return binary_interactions(X, "X", require_interactions=True)

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

    def predict(self, X_context: MatrixLike, users: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Scores of every item for the context rows (``users``: their fitted-user indices, where needed)."""
        self._check_fitted()
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        users = self._check_users(X_context, users)
        out = np.empty(X_context.shape, dtype=np.float32)
        for start in range(0, X_context.shape[0], 2048):
            stop = min(start + 2048, X_context.shape[0])
            out[start:stop] = np.asarray(self._score_users(self.params_, users[start:stop], X_context[start:stop]))
        return out

    def recommend(self, X_context: MatrixLike, k: int = 10, exclude_seen: bool = True,
                  users: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Top-``k`` items of every context row, best first (see :meth:`Recommender.recommend`)."""
        from infae_kit.evaluation.metrics import top_k_items

        scores = self.predict(X_context, users=users)
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        return top_k_items(scores, k, exclude=X_context if exclude_seen else None, inplace=True)

    def _scores(self, X_context):  # Recommender's hook (predict is overridden)
        return self.predict(X_context)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def warm_start_params(fresh: Any, given: Any, model_name: str) -> Any:
    """``given`` (a parameter tree) as jax arrays of ``fresh``'s dtypes, after checking it has the structure and
    shapes of ``fresh``."""
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


def bpr_loss(pos: jax.Array, neg: jax.Array, mask: jax.Array) -> jax.Array:
    """BPR loss of a batch: mean over the real (``mask`` 1) ``(b,)`` pairs of ``−log σ(pos − neg)``."""
    return -jnp.sum(mask * jax.nn.log_sigmoid(pos - neg)) / jnp.maximum(jnp.sum(mask), 1.0)


def apply_dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout: each entry of ``x`` zeroed with probability ``rate``, the others scaled by 1/(1 − rate)."""
    if rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class BPRRecommender(TrainedRecommender):
    """BPR training on (user, positive, negative) triplets of the train matrix."""

    needs_user_index = True

    def _setup(self, X):
        pass

    def _epoch_inputs(self, rng, X):
        users, pos, neg = sample_bpr_triplets(rng, X)
        arrays, mask = batched([users, pos, neg], self.batch_size)
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
        loss = bpr_loss(s_pos, s_neg, mask)
        if self.l2:
            loss = loss + self.l2 * 0.5 * jnp.sum(mask * self._l2_terms(params, users, pos, neg)) / jnp.maximum(
                jnp.sum(mask), 1.0)
        return loss


def normal_init(key: jax.Array, shape: tuple[int, ...], std: float) -> jax.Array:
    """float32 ``N(0, std²)`` array of ``shape``."""
    return std * jax.random.normal(key, shape, dtype=jnp.float32)


def glorot_init(key: jax.Array, fan_in: int, fan_out: int) -> jax.Array:
    """``(fan_in, fan_out)`` float32 Glorot-uniform weights: U(−a, a), a = sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)
