"""MVAE (Liang et al., 2018): multinomial likelihood, KL annealing, dropout on the L2-normalised input."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, check_interactions, non_negative_float, positive_int
from infae_kit.errors import MemoryBudgetError
from infae_kit.io_utils import available_memory_bytes
from infae_kit.models.training import TrainedRecommender, apply_dropout, batched, glorot_init

__all__ = ["MVAE"]


# ----------------------------------------------------------------------------------------------------------
# MVAE
# ----------------------------------------------------------------------------------------------------------
class MVAE(TrainedRecommender):
    """Multinomial variational autoencoder (Liang et al., 2018).

    Encoder: dropout on the L2-normalised input row, ``n_layers − 1`` tanh layers of width ``hidden_size``,
    then a linear layer to ``(μ, log σ²)`` of size ``latent_size``. Decoder: the mirror (tanh hidden layers,
    linear output = item logits). Loss per user: ``−Σ_i x_i log softmax(logits)_i + β KL(q(z|x) ‖ N(0, I))``
    with ``β = min(anneal_cap, step / anneal_steps)`` (KL annealing). Scores: the logits at ``z = μ``.
    Any context row can be scored.

    Like every trained competitor, :meth:`fit` can warm start from an earlier model's parameters (``init_params``,
    ``init_step``: the KL-annealing schedule continues). The continual-learning variant with ADER's replayed
    exemplars and soft rows is :class:`infae_kit.experiments.continual_models.ContinualMVAE`.

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
                 **training: Any) -> None:
        training.setdefault("batch_size", 500)
        training.setdefault("eval_every", 2)
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = positive_int("n_layers", n_layers)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.anneal_cap = non_negative_float("anneal_cap", anneal_cap)
        self.anneal_steps = positive_int("anneal_steps", anneal_steps)
        self._dense = None

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

    def _row_order(self, rng, n_rows: int) -> np.ndarray:
        """The order an epoch visits the ``n_rows`` training rows in: a seeded permutation."""
        return rng.permutation(n_rows)

    def _epoch_inputs(self, rng, X):
        """``[rows (n_batches, batch_size), mask]``: the rows in :meth:`_row_order`, in full batches (the last
        padded)."""
        arrays, mask = batched([self._row_order(rng, X.shape[0]).astype(np.int32)], self.batch_size)
        return arrays + [mask]

    def _batch_extra(self, rows: np.ndarray, mask: np.ndarray) -> dict[str, Any] | None:
        """Inputs of a batch's loss besides its dense rows (none here; a subclass's extra loss terms)."""
        return None

    def _epoch_program(self, optimizer):
        """One epoch = a Python loop over the batches, each a call of the shared jit-compiled step."""
        step_fn = _mvae_step(self, optimizer)

        def epoch(params, opt_state, key, step_index, inputs, aux):
            rows, mask = (np.asarray(a) for a in inputs)
            losses = []
            for b in range(rows.shape[0]):
                key, sub = jax.random.split(key)
                r = rows[b]
                extra = self._batch_extra(r, mask[b])
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

    def _row_losses(self, params, x, key, step):
        """``(ELBO loss per row (b,), decoder logits (b, n_items))`` of a batch of dense rows ``x``."""
        k_drop, k_eps = jax.random.split(key)
        mu, logvar = self._encode(params, x, k_drop, True)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k_eps, mu.shape)
        logits = self._decode(params, z)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.sum(log_probs * x, axis=-1)
        kl = 0.5 * jnp.sum(-logvar + jnp.exp(logvar) + mu**2 - 1.0, axis=-1)
        beta = jnp.minimum(self.anneal_cap, step.astype(jnp.float32) / self.anneal_steps)
        return nll + beta * kl, logits

    def _l2_penalty(self, params):
        if not self.l2:
            return 0.0
        return self.l2 * sum(jnp.sum(layer["w"] ** 2) for part in ("encoder", "decoder") for layer in params[part])

    def _batch_loss(self, params, x, mask, key, step, extra):
        """Loss of one batch of dense rows ``x`` (``mask``: 1 for real rows; ``extra``: :meth:`_batch_extra`)."""
        elbo, _ = self._row_losses(params, x, key, step)
        return jnp.sum(mask * elbo) / jnp.maximum(jnp.sum(mask), 1.0) + self._l2_penalty(params)

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

    def latent_means(self, X_context: MatrixLike) -> np.ndarray:
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
    """The jit-compiled training step of MVAEs of ``model``'s class with its static configuration (built once,
    then shared).

    The step closes over a private copy of the configuration, so later changes to ``model`` cannot leak into
    other models' steps. ``optimizer`` must be ``optax.adam(model.learning_rate)`` (part of the key).
    """
    key = (type(model), *model._static_config())
    fn = _MVAE_STEPS.get(key)
    if fn is None:
        proto = type(model)(latent_size=model.latent_size, n_layers=model.n_layers, hidden_size=model.hidden_size,
                     learning_rate=model.learning_rate, dropout=model.dropout, anneal_cap=model.anneal_cap,
                     anneal_steps=model.anneal_steps, l2=model.l2, batch_size=model.batch_size)
        proto.n_items_ = model.n_items_
        loss_and_grad = jax.value_and_grad(proto._batch_loss)

        @jax.jit
        def fn(params, opt_state, key, step_index, x, mask, extra):
            loss, grads = loss_and_grad(params, x, mask, key, step_index, extra)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        if len(_MVAE_STEPS) >= 16:  # a handful of configurations per session; bound the cache anyway
            _MVAE_STEPS.pop(next(iter(_MVAE_STEPS)))
        _MVAE_STEPS[key] = fn
    return fn


