"""LightGCN (He et al., 2020): layer-mean of linear propagations over the normalised user–item graph, BPR."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from infae_kit.checks import positive_int
from infae_kit.models.training import BPRRecommender, apply_dropout, bpr_loss, normal_init

__all__ = [
    "LightGCN",
]


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


class LightGCN(BPRRecommender):
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
                 l2: float = 1e-4, **training: Any) -> None:
        training.setdefault("batch_size", 16384)
        super().__init__(latent_size=latent_size, learning_rate=learning_rate, dropout=dropout, l2=l2, **training)
        self.n_layers = positive_int("n_layers", n_layers)

    def _setup(self, X):
        user_degree = np.asarray(X.sum(axis=1)).ravel()
        item_degree = np.asarray(X.sum(axis=0)).ravel()
        coo = X.tocoo()
        norm = 1.0 / np.sqrt(np.maximum(user_degree[coo.row], 1) * np.maximum(item_degree[coo.col], 1))
        self._graph = _BipartiteProduct(X)
        self._edge_values = jnp.asarray(norm.astype(np.float32))  # coo of a csr keeps csr order

    def _init_params(self, key):
        ku, ki = jax.random.split(key)
        return {"user_emb": normal_init(ku, (self.n_users_, self.latent_size), 0.1),
                "item_emb": normal_init(ki, (self.n_items_, self.latent_size), 0.1)}

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
            values = apply_dropout(key, values, self.dropout)
        final_users, final_items = self._propagate(params, values)
        eu = final_users[users]
        loss = bpr_loss(jnp.sum(eu * final_items[pos], -1), jnp.sum(eu * final_items[neg], -1), mask)
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


