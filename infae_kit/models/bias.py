"""Bias-only: ``r̂_ui = α + β_u + β_i`` fitted by (ridge) least squares in closed form (Appendix B.1)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, binary_interactions, check_interactions, non_negative_float
from infae_kit.models.base import Recommender

__all__ = [
    "bias_only_least_squares",
    "BiasOnly",
]


# ----------------------------------------------------------------------------------------------------------
# Bias-only
# ----------------------------------------------------------------------------------------------------------
def bias_only_least_squares(X: MatrixLike, ridge: float = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """Closed-form ``argmin Σ_ui (X_ui − α − β_u − β_i)² + ridge (‖β_users‖² + ‖β_items‖²)`` over the full matrix.

    Setting the gradients to zero gives ``Σ_u β_u = Σ_i β_i = 0`` (for ``ridge > 0``; for ``ridge = 0`` this is
    the usual identifiability constraint of the two-way layout), hence ``α = mean(X)``,
    ``β_u = (r_u − m α) / (m + ridge)`` and ``β_i = (c_i − n α) / (n + ridge)`` with ``r_u`` / ``c_i`` the row /
    column sums of the ``n × m`` matrix.

    Returns:
        ``(α, user_bias (n,), item_bias (m,))`` in float64.
    """
    ridge = non_negative_float("ridge", ridge)
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
        self.ridge = non_negative_float("ridge", ridge)
        self.n_items_ = None

    def fit(self, X: MatrixLike, validation: MatrixLike | None = None) -> "BiasOnly":
        """Solve the least squares on ``X`` (users × items); ``validation`` is accepted and unused."""
        X = binary_interactions(X, "X", require_interactions=True)
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


