"""MF: ``α + β_u + β_i + γ_u·γ_i`` trained with BPR (Rendle et al., 2009)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from infae_kit.models.training import BPRRecommender, apply_dropout, normal_init

__all__ = [
    "MF",
]


# ----------------------------------------------------------------------------------------------------------
# MF
# ----------------------------------------------------------------------------------------------------------
class MF(BPRRecommender):
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
                 **training: Any) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)

    def _init_params(self, key):
        ku, ki = jax.random.split(key)
        d = self.latent_size
        return {
            "global_bias": jnp.zeros((), jnp.float32),
            "user_bias": jnp.zeros(self.n_users_, jnp.float32),
            "item_bias": jnp.zeros(self.n_items_, jnp.float32),
            "user_emb": normal_init(ku, (self.n_users_, d), 0.1),
            "item_emb": normal_init(ki, (self.n_items_, d), 0.1),
        }

    def _pair_scores(self, params, users, items, key, train):
        ku, ki = jax.random.split(key)
        gu = params["user_emb"][users]
        gi = params["item_emb"][items]
        if train:
            gu, gi = apply_dropout(ku, gu, self.dropout), apply_dropout(ki, gi, self.dropout)
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


