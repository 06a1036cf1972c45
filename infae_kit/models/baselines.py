"""Baselines of the paper's Table 1 that have a closed form: PopRec and EASE (Steck, 2019).

Both follow the kit's recommender interface (the one ∞-AE has too):

* ``fit(X)`` with ``X`` a users × items matrix (scipy.sparse, or a dense array such as a synthesized
  DISTILL-CF support) → ``self``;
* ``predict(X_context)`` → ``(b, n_items)`` float32 scores for the users whose known items are ``X_context``;
* ``recommend(X_context, k=10, exclude_seen=True)`` → ``(b, k)`` item indices, best first, never an item of
  ``X_context`` (see :func:`infae_kit.evaluation.metrics.top_k_items` for tie-breaking).

Example:
    >>> model = EASE(lam=100.0).fit(dataset.train)
    >>> scores = model.predict(dataset.train)          # (n_users, n_items)
    >>> top10 = model.recommend(dataset.train, k=10)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, check_interactions, non_negative_float
from infae_kit.errors import MemoryBudgetError, NumericalError, ParameterError
from infae_kit.io_utils import available_memory_bytes
from infae_kit.models.base import Recommender
from infae_kit.models.ntk import sparse_product_is_cheaper

__all__ = [
    "EASE_LAMBDA_GRID",
    "item_gram",
    "PopRec",
    "EASE",
    "ease_item_weights",
]

EASE_LAMBDA_GRID = (1.0, 10.0, 100.0, 1000.0, 10000.0)
"""EASE's λ grid of the paper's Table 3."""

_GIB = 1024**3


class PopRec(Recommender):
    """Recommends the most popular train items to everyone (paper Appendix B.1).

    Popularity is the column sum of the train matrix (the item's interaction count for binary data).

    Attributes:
        item_counts_: ``(n_items,)`` float32 popularity, after ``fit``.
    """

    def __init__(self) -> None:
        self.item_counts_: np.ndarray | None = None
        self.n_items_ = None

    def fit(self, X: MatrixLike) -> "PopRec":
        """Count item popularity in ``X`` (users × items)."""
        X = check_interactions(X, "X", require_interactions=True)
        self.item_counts_ = np.asarray(X.sum(axis=0), dtype=np.float32).ravel()
        self.n_items_ = X.shape[1]
        return self

    def _scores(self, X_context: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.item_counts_, (X_context.shape[0], 1))

    def __repr__(self) -> str:
        return "PopRec()"


def item_gram(X: sp.csr_matrix, dtype: npt.DTypeLike = np.float32, block_items: int = 2048) -> np.ndarray:
    """``XᵀX`` as a dense ``(m, m)`` array for ``X`` ``(n_users, m)``.

    Sparse products one column block of ``block_items`` items at a time (bounded temporaries) when the cost model
    expects them cheaper (:func:`~infae_kit.models.ntk.sparse_product_is_cheaper`: short rows over many users),
    else BLAS products of the densified rows, ``block_items`` users at a time (dense-ish rows such as a
    DISTILL-CF summary's: a 500 × 18,530 summary takes seconds that way and over 20 minutes as sparse products).
    """
    n_items = X.shape[1]
    X = sp.csr_matrix(X).astype(dtype, copy=False)
    X_t = X.T.tocsr()
    if not sparse_product_is_cheaper(X_t, X_t):
        gram = np.zeros((n_items, n_items), dtype=dtype)
        for start in range(0, X.shape[0], block_items):
            rows = X[start:start + block_items].toarray()
            gram += rows.T @ rows
        return gram
    X_csc = X.tocsc()
    gram = np.empty((n_items, n_items), dtype=dtype)
    for start in range(0, n_items, block_items):  # loop over item blocks (bounded temporaries)
        stop = min(start + block_items, n_items)
        gram[:, start:stop] = (X_t @ X_csc[:, start:stop]).toarray()
    return gram


def ease_item_weights(
    X: MatrixLike,
    lam: float,
    *,
    dtype: npt.DTypeLike = np.float32,
    memory_budget_bytes: int | None = None,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """EASE's item–item weights ``B`` (Steck, 2019): ``argmin ||X − XB||² + λ||B||²`` s.t. ``diag(B) = 0``.

    Closed form: ``G = XᵀX + λI``, ``P = G⁻¹``, ``B_ij = −P_ij / P_jj`` (column-wise), ``B_jj = 0``.
    ``P`` comes from a Cholesky factorisation (LAPACK ``potrf``/``potri``), computed in place so that peak
    memory is about one ``m × m`` array.

    Args:
        X: ``(n_users, m)`` users × items matrix (sparse or dense).
        lam: ridge ``λ ≥ 0`` (the paper's grid is :data:`EASE_LAMBDA_GRID`).
        dtype: float32 (default) or float64.
        memory_budget_bytes: refuse to start above this many bytes (default: the memory available now).
        gram: ``XᵀX`` as an ``(m, m)`` array of ``dtype`` when the caller already has it (a λ grid on a large
          catalogue computes it once); it is **overwritten** with the result's workspace, so pass a copy.

    Returns:
        ``(m, m)`` array ``B`` of ``dtype``, zero diagonal.

    Raises:
        ParameterError: negative or non-finite ``λ``, unsupported dtype.
        DataError: ``X`` without a single interaction (what ``check_interactions`` refuses).
        MemoryBudgetError: ``m × m`` would not fit.
        NumericalError: ``XᵀX + λI`` is not positive definite (singular Gram with ``λ = 0``).
    """
    lam = _check_lambda(lam)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ParameterError(f"dtype must be float32 or float64, got {dtype}.")
    X = check_interactions(X, "X", require_interactions=True)
    n_items = X.shape[1]
    # one m × m array (Gram → Cholesky → inverse → B, all in place) plus column-block temporaries
    needed = n_items * n_items * dtype.itemsize + 4 * 2048 * n_items * dtype.itemsize
    budget = available_memory_bytes() if memory_budget_bytes is None else int(memory_budget_bytes)
    if needed > budget:
        raise MemoryBudgetError(
            f"EASE needs an {n_items} × {n_items} {dtype.name} matrix, about {needed / _GIB:.2f} GiB, but only "
            f"{budget / _GIB:.2f} GiB are available. Hint: use dtype=float32, fewer items (drop rare items), or a "
            "machine with more memory."
        )
    if gram is None:
        gram = item_gram(X, dtype)
    elif gram.shape != (n_items, n_items) or gram.dtype != dtype or not gram.flags.c_contiguous:
        raise ParameterError(f"gram must be a C-ordered ({n_items}, {n_items}) {dtype.name} array (XᵀX), got "
                             f"{gram.shape} {gram.dtype}")
    gram[np.diag_indices(n_items)] += dtype.type(lam)
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (gram,))
    # gram is symmetric, so its C-ordered buffer is also its Fortran-ordered transpose: factorise in place.
    factor, info = potrf(gram.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise NumericalError(
            f"XᵀX + λI is not positive definite (LAPACK potrf info={info}) with λ={lam}; use a positive λ "
            "(e.g. one of EASE_LAMBDA_GRID) or dtype=float64."
        )
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise NumericalError(f"Inverting XᵀX + λI failed (LAPACK potri info={info}) with λ={lam}; increase λ.")
    inverse = np.asarray(inverse)
    _symmetrize_from_upper(inverse)
    weights = inverse.T if not inverse.flags.c_contiguous else inverse  # symmetric: either view is P
    weights = np.ascontiguousarray(weights)
    diag = np.diag(weights).copy()
    if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
        raise NumericalError(f"EASE's inverse Gram has a non-positive or non-finite diagonal with λ={lam}; increase λ.")
    weights /= -diag[None, :]
    weights[np.diag_indices(n_items)] = 0.0
    return weights


def _symmetrize_from_upper(matrix: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle (as LAPACK stores it, Fortran order) onto the lower one, in place, by blocks."""
    # potri leaves the upper triangle of the Fortran-ordered array valid; view it in Fortran order.
    mat = matrix if matrix.flags.f_contiguous else matrix.T
    n = mat.shape[0]
    for start in range(0, n, block):  # loop over blocks of rows, bounded temporaries
        stop = min(start + block, n)
        # lower part of rows start:stop, columns < stop
        upper_block = mat[:stop, start:stop].T.copy()  # (stop-start, stop): U[j, i] for i in block, j < stop
        rows = np.arange(start, stop)[:, None]
        cols = np.arange(stop)[None, :]
        lower = cols < rows
        target = mat[start:stop, :stop]
        target[lower] = upper_block[lower]


def _check_lambda(lam) -> float:
    return non_negative_float("lam", lam, hint=f"The paper's grid is {EASE_LAMBDA_GRID}.")


class EASE(Recommender):
    """EASE (Steck, 2019): a linear item–item autoencoder with a zero-diagonal closed form.

    Args:
        lam: ridge ``λ ≥ 0``; the paper grid-searches :data:`EASE_LAMBDA_GRID`.
        dtype: float32 (default) or float64 for the ``m × m`` solve.
        memory_budget_bytes: optional cap on the ``m × m`` allocation (default: memory available).

    Attributes:
        item_weights_: ``(n_items, n_items)`` ``B``, after ``fit``.
    """

    def __init__(self, lam: float = 100.0, *, dtype: npt.DTypeLike = np.float32,
                 memory_budget_bytes: int | None = None) -> None:
        self.lam = _check_lambda(lam)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ParameterError(f"dtype must be float32 or float64, got {self.dtype}.")
        self.memory_budget_bytes = memory_budget_bytes
        self.item_weights_: np.ndarray | None = None
        self.n_items_ = None

    def fit(self, X: MatrixLike, *, gram: np.ndarray | None = None) -> "EASE":
        """Fit ``B`` on ``X`` (users × items); ``gram``: ``XᵀX`` from :func:`item_gram` when it is already
        computed (it is overwritten: pass a copy to fit several λ from one)."""
        self.item_weights_ = ease_item_weights(
            X, self.lam, dtype=self.dtype, memory_budget_bytes=self.memory_budget_bytes, gram=gram
        )
        self.n_items_ = self.item_weights_.shape[0]
        return self

    def _scores(self, X_context: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X_context.astype(self.dtype, copy=False) @ self.item_weights_)

    def __repr__(self) -> str:
        return f"EASE(lam={self.lam!r}, dtype={self.dtype.name})"
