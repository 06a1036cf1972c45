"""MVAE (Liang et al., 2018): multinomial likelihood, KL annealing, dropout on the L2-normalised input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from infae_kit.checks import binary_interactions, check_interactions, non_negative_float, positive_int
from infae_kit.errors import DataError, MemoryBudgetError, ParameterError
from infae_kit.io_utils import available_memory_bytes
from infae_kit.models.training import TrainedRecommender, apply_dropout, batched, glorot_init


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


class MVAE(TrainedRecommender):
    """Multinomial variational autoencoder (Liang et al., 2018).

    Encoder: dropout on the L2-normalised input row, ``n_layers − 1`` tanh layers of width ``hidden_size``,
    then a linear layer to ``(μ, log σ²)`` of size ``latent_size``. Decoder: the mirror (tanh hidden layers,
    linear output = item logits). Loss per user: ``−Σ_i x_i log softmax(logits)_i + β KL(q(z|x) ‖ N(0, I))``
    with ``β = min(anneal_cap, step / anneal_steps)`` (KL annealing). Scores: the logits at ``z = μ``.
    Any context row can be scored.

    For continual learning (:mod:`infae_kit.experiments.continual_models`) :meth:`fit` also takes ``init_params`` /
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
        self.n_layers = positive_int("n_layers", n_layers)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.anneal_cap = non_negative_float("anneal_cap", anneal_cap)
        self.anneal_steps = positive_int("anneal_steps", anneal_steps)
        self._replay = None
        self._binarize = True
        self._dense = None

    # --- continual-learning entry point -------------------------------------------------------------------
    def fit(self, X, validation=None, *, init_params=None, init_step: int = 0, replay: Replay | None = None,
            binarize: bool = True) -> "MVAE":
        """Train on ``X``; see :meth:`TrainedRecommender.fit` for ``validation``, ``init_params``, ``init_step``.

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
            raise ParameterError(f"replay must be an infae_kit.models.competitors.Replay, got {type(replay).__name__}.")
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
        layers = lambda sizes, ks: [{"w": glorot_init(k, a, b), "b": jnp.zeros(b, jnp.float32)}
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
        arrays, mask = batched([order.astype(np.int32)], self.batch_size)
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
            x = apply_dropout(key, x, self.dropout)
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


