"""The recommender interface every model of the kit shares (∞-AE, landmark ∞-AE, PopRec, EASE, the trained
competitors).

* ``fit(X)`` with ``X`` a ``(users, items)`` interaction matrix (scipy.sparse, or a dense array such as a
  synthesised DISTILL-CF support) → ``self``;
* ``predict(X_context)`` → ``(b, items)`` float32 scores for the users whose known items are ``X_context``;
* ``recommend(X_context, k=10, exclude_seen=True)`` → ``(b, k)`` item indices, best first, never an item of
  ``X_context`` (see :func:`infae_kit.evaluation.metrics.top_k_items` for tie-breaking).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, check_interactions
from infae_kit.errors import ParameterError
from infae_kit.evaluation.metrics import top_k_items

__all__ = ["Recommender"]


class Recommender:
    """Base class: input checks and ``recommend`` on top of a subclass's ``fit`` / ``_scores``."""

    n_items_: int | None = None

    def fit(self, X: MatrixLike) -> "Recommender":  # pragma: no cover - interface
        """Fit on ``X``, a ``(users, items)`` interaction matrix; returns ``self``."""
        raise NotImplementedError

    def _scores(self, X_context: sp.csr_matrix) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if self.n_items_ is None:
            raise ParameterError(f"{type(self).__name__} is not fitted yet; call .fit(train) first.")

    def predict(self, X_context: MatrixLike) -> np.ndarray:
        """Scores of every item for the users whose known items are ``X_context``.

        Args:
            X_context: ``(b, n_items)`` users × items matrix (sparse or dense).

        Returns:
            ``(b, n_items)`` float32 scores (higher is better); seen items are *not* masked.
        """
        self._check_fitted()
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        return np.ascontiguousarray(self._scores(X_context), dtype=np.float32)

    def recommend(self, X_context: MatrixLike, k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """Top-``k`` items of every context user, best first.

        Args:
            X_context: ``(b, n_items)`` users × items matrix.
            k: number of items (capped at ``n_items``).
            exclude_seen: never return an item of the user's own ``X_context`` row.

        Returns:
            ``(b, min(k, n_items))`` int64 item indices.
        """
        self._check_fitted()
        X_context = check_interactions(X_context, "X_context", n_items=self.n_items_)
        scores = np.ascontiguousarray(self._scores(X_context), dtype=np.float32)
        return top_k_items(scores, k, exclude=X_context if exclude_seen else None, inplace=True)
