"""∞-AE: kernel ridge regression with the NTK of an infinitely wide autoencoder (paper §3, Algorithms 1–2).

Given the binary train rows ``X`` (users × items) and the NTK Gram ``K = Θ(X, X)``::

    α      = (K + λ' I)⁻¹ X,            λ' = λ · trace(K) / n          (the paper's code scales λ this way)
    scores = Θ(X_context, X) · α                                       (any users, seen or not: they are rows)

Two exact shortcuts make the paper's λ search cheap:

* the kernel ``K`` is computed once and reused for every λ (the paper's code recomputes it per λ);
* when the context rows *are* the training rows (the validation pass), ``K α = X − λ' α``, so the validation
  scores need no extra ``n × n × items`` product.

At λ = 0 the ridge vanishes and KRR interpolates its training rows: the validation scores of a training user are
exactly its train row, so every unseen item ties at 0 (the paper's float32 code gets noise there: AUC 0.50).
The kit evaluates that exact limit instead of inverting an ill-conditioned matrix. Everywhere else, a kernel
that is not numerically positive definite gets a defined recovery: a jitter of 1e-6·trace(K)/n, multiplied by
10 until the Cholesky factorisation succeeds (at most 1e-2·trace(K)/n), recorded in ``jitter_`` and warned
about; beyond that a :class:`~infae_kit.errors.NumericalError` says what to do. Scores are never NaN.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import numpy.typing as npt
import scipy.linalg as sla
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, check_interactions, non_negative_float
from infae_kit.errors import MemoryBudgetError, NumericalError, ParameterError
from infae_kit.evaluation import metrics as M
from infae_kit.evaluation.protocol import (
    DEFAULT_BATCH_USERS,
    DEFAULT_KS,
    MetricAccumulator,
    evaluate_model,
    propensity_weights_of,
    split_protocol,
    user_batches,
)
from infae_kit.evaluation.selection import TuningReport, select_on_validation
from infae_kit.io_utils import available_memory_bytes
from infae_kit.models.base import Recommender
from infae_kit.models.ntk import B_STD, W_STD, column_counts, gram_matrix, ntk_matrix, sparse_product_is_cheaper

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset

__all__ = [
    "PAPER_LAMBDA_GRID",
    "InfiniteAE",
    "InfiniteAEReport",
    "RidgeSolver",
    "check_memory",
    "estimate_fit_memory_bytes",
    "fit_infinite_ae",
    "tune_and_evaluate_infinite_ae",
]

log = logging.getLogger(__name__)

PAPER_LAMBDA_GRID: tuple[float, ...] = (0.0, 1.0, 5.0, 20.0, 50.0, 100.0)
"""λ grid the paper searched for ∞-AE (Table 3)."""

_JITTERS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def estimate_fit_memory_bytes(n_train_users: int, n_items: int, dtype: npt.DTypeLike = "float32",
                              n_context_users: int | None = None) -> int:
    """Bytes the ∞-AE fit and one scoring pass hold at their peak.

    Three ``n × n`` buffers (the kernel kept for reuse across λ, its Cholesky factor, and the Gram of the
    train rows kept for the test pass), four ``n × items`` ones (the dense train rows, α for the current and
    the best λ, a score buffer), and one batch of context scores and cross-kernel.
    """
    s = np.dtype(dtype).itemsize
    n, m = int(n_train_users), int(n_items)
    b = min(int(n_context_users if n_context_users is not None else n), DEFAULT_BATCH_USERS)
    return s * (3 * n * n + 4 * n * m + b * n + b * m)


def _max_users_that_fit(budget_bytes: int, n_items: int, dtype) -> int:
    s = np.dtype(dtype).itemsize
    # 3n² + 4nm + bn + bm ≤ budget/s with b ≤ n (take b = n): 4n² + 5nm - budget/s ≤ 0
    a, bq, c = 4.0, 5.0 * n_items, -budget_bytes / s
    return max(int((-bq + math.sqrt(bq * bq - 4 * a * c)) / (2 * a)), 0)


def check_memory(n_train_users: int, n_items: int, dtype: npt.DTypeLike = "float32", *, limit_bytes: int | None = None,
                 n_context_users: int | None = None) -> int:
    """Raise :class:`MemoryBudgetError` before allocating an ∞-AE that cannot fit; return the estimate."""
    need = estimate_fit_memory_bytes(n_train_users, n_items, dtype, n_context_users)
    have = available_memory_bytes() if limit_bytes is None else int(limit_bytes)
    if need > have:
        fit = _max_users_that_fit(int(0.8 * have), n_items, dtype)
        gib = 1024**3
        raise MemoryBudgetError(
            f"∞-AE on {n_train_users:,} users × {n_items:,} items needs about {need / gib:.1f} GiB "
            f"(an {n_train_users:,} × {n_train_users:,} {np.dtype(dtype).name} kernel is "
            f"{n_train_users**2 * np.dtype(dtype).itemsize / gib:.1f} GiB, and the solve keeps three such matrices), "
            f"but only {have / gib:.1f} GiB is available. Train on a random subset with user_budget={fit:,} "
            "(the paper's Netflix protocol), or distil the users first with DISTILL-CF."
        )
    return need


class RidgeSolver:
    """Cholesky solves of ``(K + λ' I) α = X`` for several λ, reusing ``K``."""

    def __init__(self, K: np.ndarray, rhs: np.ndarray):
        self.K = K
        self.rhs = rhs
        self.n = K.shape[0]
        self.trace_scale = float(np.trace(K, dtype=np.float64)) / self.n
        if not math.isfinite(self.trace_scale) or self.trace_scale <= 0:
            raise NumericalError(f"kernel trace/n is {self.trace_scale}: the kernel is broken (non-finite inputs?)")
        self._work = np.empty_like(K)

    def _solve_with_factor(self, lower: np.ndarray) -> np.ndarray:
        """``α = X K_reg⁻¹`` row-wise, i.e. ``αᵀ = Xᵀ L⁻ᵀ L⁻¹``, with two right-side BLAS trsm calls.

        Working on ``Xᵀ`` (the C-ordered ``X`` seen as a Fortran array) returns α already C-ordered, avoiding
        the two layout copies ``cho_solve`` would make (0.3 s each on ML-1M).
        """
        from scipy.linalg.blas import get_blas_funcs

        trsm = get_blas_funcs("trsm", (lower,))
        bt = np.array(self.rhs, dtype=lower.dtype, order="C", copy=True).T  # (items, n), Fortran-ordered
        bt = trsm(1.0, lower, bt, side=1, lower=1, trans_a=1, overwrite_b=1)  # Xᵀ L⁻ᵀ
        bt = trsm(1.0, lower, bt, side=1, lower=1, trans_a=0, overwrite_b=1)  # · L⁻¹
        return bt.T

    def solve(self, lam: float) -> tuple[np.ndarray, float, float]:
        """Returns ``(alpha, effective diagonal added, jitter fraction used)``."""
        base = abs(float(lam)) * self.trace_scale
        for jitter in (0.0,) + _JITTERS:
            diag = base + jitter * self.trace_scale
            np.copyto(self._work, self.K)
            self._work[np.diag_indices(self.n)] += self._work.dtype.type(diag)
            try:
                # K is symmetric, so its transpose (a Fortran-ordered view) is the same matrix: factor in place.
                lower, _ = sla.cho_factor(self._work.T, lower=True, overwrite_a=True, check_finite=False)
            except np.linalg.LinAlgError:
                continue
            alpha = self._solve_with_factor(lower)
            if np.all(np.isfinite(alpha)):
                if jitter:
                    warnings.warn(
                        f"∞-AE kernel is not positive definite in {self.K.dtype} at λ={lam}: added a jitter of "
                        f"{jitter:g}·trace(K)/n to the diagonal (recorded as jitter_). Use float64 to avoid it.",
                        RuntimeWarning, stacklevel=3,
                    )
                return alpha, diag, jitter
        raise NumericalError(
            f"∞-AE: (K + λ'I) is not positive definite in {self.K.dtype} at λ={lam}, even with a jitter of "
            f"{_JITTERS[-1]:g}·trace(K)/n. Use dtype='float64' or a larger λ."
        )


class InfiniteAE(Recommender):
    """∞-AE recommender: fit on binary user rows, score any user rows.

    Args:
      lam: ridge λ, scaled by ``trace(K)/n`` like the paper's code (set ``scale_lambda=False`` to use it as is).
      depth: hidden Dense→ReLU blocks of the autoencoder (the paper uses 1).
      dtype: ``"float32"`` (default, like the paper) or ``"float64"``.
      user_budget: train on this many users drawn at random (seeded) instead of all (paper's Netflix protocol).
      seed: seed of the user sample.
      memory_limit_bytes: override the available-memory check (default: /proc/meminfo).

    Attributes (after ``fit``):
      train_rows_: ``(n, items)`` csr of the users the model was trained on.
      train_user_index_: indices of those users in the matrix passed to ``fit``.
      alpha_: ``(n, items)`` dual weights.
      effective_lambda_: diagonal added to ``K`` (λ·trace(K)/n plus any jitter).
      jitter_: jitter fraction used by the recovery (0 when none).

    Examples:
      >>> import scipy.sparse as sp
      >>> X = sp.random(50, 30, density=0.2, format="csr", random_state=0, data_rvs=lambda n: [1.0] * n)
      >>> model = InfiniteAE(lam=5.0).fit(X)
      >>> model.recommend(X[:2], k=3).shape
      (2, 3)
    """

    def __init__(self, lam: float = 5.0, *, depth: int = 1, dtype: npt.DTypeLike = "float32", scale_lambda: bool = True,
                 user_budget: int | None = None, seed: int = 42, w_std: float = W_STD, b_std: float = B_STD,
                 memory_limit_bytes: int | None = None):
        lam = non_negative_float("lam", lam)
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ParameterError(f"dtype must be float32 or float64, got {dtype!r}")
        if user_budget is not None and (not isinstance(user_budget, (int, np.integer)) or user_budget < 1):
            raise ParameterError(f"user_budget must be a positive integer or None, got {user_budget!r}")
        if not isinstance(depth, (int, np.integer)) or depth < 1:
            raise ParameterError(f"depth must be an integer >= 1, got {depth!r}")
        self.lam = float(lam)
        self.depth = int(depth)
        self.dtype = np.dtype(dtype)
        self.scale_lambda = scale_lambda
        self.user_budget = user_budget
        self.seed = seed
        self.w_std = w_std
        self.b_std = b_std
        self.memory_limit_bytes = memory_limit_bytes

    # -- fitting -------------------------------------------------------------------------------------------
    def _select_users(self, X: sp.csr_matrix) -> np.ndarray:
        n = X.shape[0]
        if self.user_budget is None or self.user_budget >= n:
            return np.arange(n)
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(n, size=self.user_budget, replace=False))

    def _kernel(self, x, y=None, gram=None) -> np.ndarray:
        return ntk_matrix(x, y, depth=self.depth, dtype=self.dtype, w_std=self.w_std, b_std=self.b_std, gram=gram)

    def _prepare(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Select users, check memory, build the dense rows and the kernel. Returns ``(K, X_dense)``."""
        X = check_interactions(X, "X", require_interactions=True)
        idx = self._select_users(X)
        rows = check_interactions(X[idx], f"X's {len(idx)} sampled users (user_budget={self.user_budget})",
                                  require_interactions=True)
        check_memory(len(idx), X.shape[1], self.dtype, limit_bytes=self.memory_limit_bytes)
        self.train_user_index_ = idx
        self.train_rows_ = rows
        self.n_items_ = X.shape[1]
        # α needs the dense train rows as the right-hand side anyway, so the Gram uses them (BLAS syrk-class).
        dense = rows.toarray().astype(self.dtype, copy=False)
        self._train_dense = dense
        self._train_column_counts = column_counts(rows)
        if sparse_product_is_cheaper(rows, rows, y_column_counts=self._train_column_counts):
            self._train_gram = gram_matrix(rows, dtype=self.dtype, sparse_product=True)
        else:
            self._train_gram = gram_matrix(dense, dtype=self.dtype)
        K = self._kernel(rows, gram=self._train_gram)
        return K, dense

    def fit(self, X: MatrixLike) -> "InfiniteAE":
        """Fit on ``X``: ``(n_users, n_items)`` binary csr (or dense) rows. Returns ``self``."""
        K, dense = self._prepare(X)
        del self._train_gram  # only the tuning routine reuses it
        solver = RidgeSolver(K, dense)
        lam = self.lam if self.scale_lambda else self.lam / solver.trace_scale
        self.alpha_, self.effective_lambda_, self.jitter_ = solver.solve(lam)
        return self

    # -- inference -----------------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "alpha_"):
            raise ParameterError("this InfiniteAE is not fitted yet: call fit(X) first")

    def _context_kernel(self, batch: sp.csr_matrix) -> np.ndarray:
        """``(b, n_train)`` NTK of context rows with the training rows."""
        # Short rows over a long catalogue multiply faster as sparse matrices; otherwise the batch's rows are
        # densified for a BLAS product with the dense training rows.
        if sparse_product_is_cheaper(batch, self.train_rows_, y_column_counts=self._train_column_counts):
            gram = gram_matrix(batch, self.train_rows_, dtype=self.dtype, sparse_product=True)
        else:
            gram = gram_matrix(batch.toarray().astype(self.dtype, copy=False), self._train_dense, dtype=self.dtype)
        return self._kernel(batch, self.train_rows_, gram=gram)

    def _scores(self, Xc: sp.csr_matrix, batch_size: int = DEFAULT_BATCH_USERS) -> np.ndarray:
        out = np.empty((Xc.shape[0], self.n_items_), dtype=self.dtype)
        for rows in user_batches(Xc.shape[0], batch_size):
            out[rows] = self._context_kernel(Xc[rows]) @ self.alpha_
        if not np.all(np.isfinite(out)):
            raise NumericalError("∞-AE produced non-finite scores; refit with dtype='float64' or a larger λ")
        return out

    def predict(self, X_context: MatrixLike, batch_size: int = DEFAULT_BATCH_USERS) -> np.ndarray:
        """Scores ``(b, n_items)`` in the model's dtype for the context rows ``X_context`` (any users: they are
        just rows), computed ``batch_size`` rows at a time."""
        self._check_fitted()
        Xc = check_interactions(X_context, "X_context", n_items=self.n_items_)
        return self._scores(Xc, batch_size)

    def recommend(self, X_context: MatrixLike, k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """Top-``k`` item indices ``(b, k)`` per context row, excluding the row's own items by default."""
        self._check_fitted()
        Xc = check_interactions(X_context, "X_context", n_items=self.n_items_)
        return M.top_k_items(self._scores(Xc), k, exclude=Xc if exclude_seen else None, inplace=True)


def fit_infinite_ae(X: MatrixLike, lam: float = 5.0, **kwargs: Any) -> InfiniteAE:
    """Fit an :class:`InfiniteAE` on ``X`` with ridge ``lam`` (see the class for the other arguments)."""
    return InfiniteAE(lam, **kwargs).fit(X)


@dataclass
class InfiniteAEReport(TuningReport):
    """Outcome of :func:`tune_and_evaluate_infinite_ae`: a :class:`~infae_kit.evaluation.selection.TuningReport`
    (``best_value`` is the λ picked, ``model`` the fitted :class:`InfiniteAE` at that λ) with the solves' details.

    Attributes:
      effective_lambdas: ``{λ: diagonal added}`` (λ·trace(K)/n plus any jitter).
      jitters: ``{λ: jitter fraction used}`` (0 = none needed).
      timings_s: ``kernel``, ``eval_setup``, ``solve_lambda=…``, ``val_eval_lambda=…``, ``test``, ``total``.
    """

    effective_lambdas: dict[float, float] = field(default_factory=dict)
    jitters: dict[float, float] = field(default_factory=dict)


def tune_and_evaluate_infinite_ae(
    data: RecDataset,
    lambdas: Sequence[float] = PAPER_LAMBDA_GRID,
    *,
    train: MatrixLike | None = None,
    depth: int = 1,
    dtype: npt.DTypeLike = "float32",
    select_by: str = "HR@100",
    user_budget: int | None = None,
    seed: int = 42,
    ks: Sequence[int] = DEFAULT_KS,
    n_negatives: int = 50,
    negatives_seed: int = 42,
    batch_size: int = DEFAULT_BATCH_USERS,
    evaluate_test: bool = True,
    progress: bool = True,
    memory_limit_bytes: int | None = None,
) -> InfiniteAEReport:
    """The paper's ∞-AE protocol: pick λ on validation by ``select_by``, then test with train+val as context.

    λ is picked by the kit's one selection loop (:func:`~infae_kit.evaluation.selection.select_on_validation`)
    with ∞-AE's exact shortcuts: the kernel is computed once and each λ costs one Cholesky factorisation and
    solve; when the model is trained on every user of ``data.train``, validation scores use ``K α = X − λ' α``,
    otherwise (a ``user_budget`` sample, or other ``train`` rows such as a distilled support: "fit on a support,
    pick λ on validation") the cross-kernel of the validation context with the training rows is computed once
    and kept across λ when it takes at most a quarter of the available memory.

    Args:
      data: a :class:`infae_kit.data.RecDataset` (its users are evaluated).
      lambdas: λ grid (default: the paper's {0, 1, 5, 20, 50, 100}).
      train: ``(n_rows, n_items)`` rows to fit on instead of ``data.train`` (binary or soft, e.g. a DISTILL-CF
        support); validation and test still use ``data``'s users.
      depth, dtype, user_budget, seed, memory_limit_bytes: as in :class:`InfiniteAE`.
      select_by: validation metric that picks λ (the paper's code: HR@100).
      ks, n_negatives, negatives_seed, batch_size: evaluation settings.
      evaluate_test: run the test pass (``False``: validation only, ``test_metrics`` empty and ``test`` None).
      progress: show a progress bar over λ.

    Returns:
      :class:`InfiniteAEReport`.

    Raises:
      ParameterError: an empty grid, a λ that is negative or not finite, ``train`` with another number of items.
    """
    if not lambdas:
        raise ParameterError("lambdas is empty: give at least one λ")
    lambdas = [float(l) for l in lambdas]
    if any(not np.isfinite(l) or l < 0 for l in lambdas):
        raise ParameterError(f"every λ must be finite and >= 0, got {lambdas}")
    if train is not None and train.shape[1] != data.n_items:
        raise ParameterError(f"train has {train.shape[1]} items but the dataset has {data.n_items}")
    t_total = time.perf_counter()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    model = InfiniteAE(lambdas[0], depth=depth, dtype=dtype, user_budget=user_budget, seed=seed,
                       memory_limit_bytes=memory_limit_bytes)
    K, dense = model._prepare(data.train if train is None else train)
    solver = RidgeSolver(K, dense)
    timings["kernel"] = time.perf_counter() - t

    t = time.perf_counter()
    weights = propensity_weights_of(data)
    negatives = data.auc_negatives(n_negatives, negatives_seed) if n_negatives else None
    context, targets, excluded = split_protocol(data, "val")
    batches = list(user_batches(data.n_users, batch_size))
    all_users_trained = train is None and len(model.train_user_index_) == data.n_users
    if all_users_trained:
        # One score buffer is reused across λ: a fresh 90 MB array per λ costs its page faults every time.
        score_buffer = np.empty((min(batch_size, data.n_users), data.n_items), dtype=dense.dtype)
        context_kernels = None
    else:
        n_rows = model.train_rows_.shape[0]
        keep = data.n_users * n_rows * model.dtype.itemsize <= available_memory_bytes() // 4
        context_kernels = [model._context_kernel(context[rows]) for rows in batches] if keep else None
    timings["eval_setup"] = time.perf_counter() - t
    effective: dict[float, float] = {}
    jitters: dict[float, float] = {}

    def validate(lam: float):
        t = time.perf_counter()
        if lam == 0.0 and all_users_trained:
            alpha, diag, jit = None, 0.0, 0.0
        else:
            alpha, diag, jit = solver.solve(lam)
        timings[f"solve_lambda={lam:g}"] = time.perf_counter() - t
        effective[lam], jitters[lam] = diag, jit

        t = time.perf_counter()
        acc = MetricAccumulator(targets, excluded, weights, negatives, ks)
        for i, rows in enumerate(batches):
            if all_users_trained:
                # K α = X − λ'α exactly (the validation context is the training rows themselves).
                buf = score_buffer[: rows.stop - rows.start]
                if alpha is None:
                    np.copyto(buf, dense[rows])
                else:
                    np.multiply(alpha[rows], -dense.dtype.type(diag), out=buf)
                    buf += dense[rows]
                acc.add(rows, buf, scores_writable=True)
            else:
                k_ctx = context_kernels[i] if context_kernels is not None else model._context_kernel(context[rows])
                acc.add(rows, k_ctx @ alpha, scores_writable=True)
        metrics = acc.result().metrics
        timings[f"val_eval_lambda={lam:g}"] = time.perf_counter() - t
        log.info("∞-AE λ=%g: validation %s", lam, metrics)
        return metrics, (alpha, diag, jit)

    chosen = select_on_validation(lambdas, validate, select_by=select_by, progress=progress, desc="∞-AE λ grid")
    del context_kernels
    alpha, diag, jit = chosen.best_state
    if alpha is None:  # λ = 0 won (only possible on degenerate data): solve it explicitly
        alpha, diag, jit = solver.solve(0.0)
    model.lam = chosen.best_value
    model.alpha_, model.effective_lambda_, model.jitter_ = alpha, diag, jit
    del solver, K

    t = time.perf_counter()
    gram_train = model.__dict__.pop("_train_gram")
    test = None
    if evaluate_test and all_users_trained:
        # Test context = train ∪ val rows. Their Gram with the train rows is Gram(train) + Δ·trainᵀ, where
        # Δ = (train ∪ val) − train holds the validation-only items: exact, and a sparse product instead of a
        # second dense n × n × items one.
        context, targets, excluded = split_protocol(data, "test")
        delta = sp.csr_matrix(context - data.train)
        delta.eliminate_zeros()
        gram = gram_train + np.asarray(delta.astype(model.dtype) @ dense.T, dtype=model.dtype)
        del gram_train
        k_pred = model._kernel(context, model.train_rows_, gram=gram)
        del gram
        acc = MetricAccumulator(targets, excluded, weights, negatives, ks, keep_top_k=True)
        for rows in batches:
            acc.add(rows, k_pred[rows] @ alpha, scores_writable=True)
        del k_pred
        test = acc.result()
    elif evaluate_test:
        del gram_train
        test = evaluate_model(model, data, "test", ks=ks, batch_size=batch_size, n_negatives=n_negatives,
                              negatives_seed=negatives_seed, keep_top_k=True)
    timings["test"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_total
    return InfiniteAEReport(chosen.best_value, chosen.val_metrics, test.metrics if test is not None else {}, test,
                            model, timings, select_by, effective, jitters)
