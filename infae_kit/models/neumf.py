"""NeuMF: ``α + β_u + β_i + φ(γ_u, γ_i)`` with φ the GMF ⊕ MLP tower of He et al. (2017), trained with BPR."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from infae_kit.checks import positive_int
from infae_kit.models.training import BPRRecommender, apply_dropout, glorot_init, normal_init

__all__ = [
    "NeuMF",
]


# ----------------------------------------------------------------------------------------------------------
# NeuMF
# ----------------------------------------------------------------------------------------------------------
class NeuMF(BPRRecommender):
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
                 l2: float = 1e-4, **training: Any) -> None:
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = positive_int("n_layers", n_layers)

    def _init_params(self, key):
        d = self.latent_size
        keys = jax.random.split(key, 6 + self.n_layers)
        mlp = []
        fan_in = 2 * d
        for layer in range(self.n_layers):
            mlp.append({"w": glorot_init(keys[6 + layer], fan_in, d), "b": jnp.zeros(d, jnp.float32)})
            fan_in = d
        return {
            "global_bias": jnp.zeros((), jnp.float32),
            "user_bias": jnp.zeros(self.n_users_, jnp.float32),
            "item_bias": jnp.zeros(self.n_items_, jnp.float32),
            "gmf_user": normal_init(keys[0], (self.n_users_, d), 0.1),
            "gmf_item": normal_init(keys[1], (self.n_items_, d), 0.1),
            "mlp_user": normal_init(keys[2], (self.n_users_, d), 0.1),
            "mlp_item": normal_init(keys[3], (self.n_items_, d), 0.1),
            "mlp": mlp,
            "out": glorot_init(keys[4], 2 * d, 1)[:, 0],
        }

    def _pair_scores(self, params, users, items, key, train):
        keys = jax.random.split(key, 4)
        gu, gi = params["gmf_user"][users], params["gmf_item"][items]
        mu, mi = params["mlp_user"][users], params["mlp_item"][items]
        if train:
            gu, gi = apply_dropout(keys[0], gu, self.dropout), apply_dropout(keys[1], gi, self.dropout)
            mu, mi = apply_dropout(keys[2], mu, self.dropout), apply_dropout(keys[3], mi, self.dropout)
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


