"""Landmark ∞-AE: ∞-AE whose kernel basis is ``m`` landmark rows while every user stays a regression target.

Exact ∞-AE (:mod:`infae_kit.models.infinite_ae`) solves kernel ridge regression over the ``U × U`` NTK Gram,
which stops at a few tens of thousands of users. Landmark ∞-AE is the Nyström / subset-of-regressors form of
the same regression: scores are restricted to ``f(x) = K(x, L) β`` with ``L`` the ``m`` landmark rows, and
``β`` minimises the ∞-AE objective over **all** ``U`` users::

    ‖X − K_UL β‖² + λ' βᵀ K_LL β     →     β = (K_LU K_UL + λ' K_LL)⁻¹ K_LU X          (m × items)
    scores(x) = K(x, L) β                                                             (any user row x)
    λ' = λ · trace(K_UU) / U = λ · mean_u Θ(x_u, x_u)                                 (∞-AE's own scaling)

``λ'`` is scaled exactly as :class:`~infae_kit.models.infinite_ae.InfiniteAE` scales it (the mean NTK
self-similarity of the users that are regression targets; it needs only the diagonal, never ``K_UU``), so the
paper's λ grid means the same thing for both models.

**Exact at m = U.** With the landmarks = all users, ``K_LU = K_UL = K_LL = K`` (symmetric, positive definite), so
``K K + λ' K = K (K + λ' I)`` and ``β = (K + λ' I)⁻¹ K⁻¹ K X = (K + λ' I)⁻¹ X = α`` — the two factors commute since
both are polynomials in ``K``. The scores ``K(x, U) β = K(x, U) α`` are then exactly ∞-AE's
(``tests/test_landmark.py`` checks it in float64 to 1e-6).

The landmarks and kernel pieces live in :mod:`infae_kit.models.landmark_basis`, the streamed normal
equations and their solve in :mod:`infae_kit.models.landmark_solver`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, check_interactions, is_int
from infae_kit.errors import (
    DataError,
    NumericalError,
    ParameterError,
)
from infae_kit.evaluation.protocol import (
    DEFAULT_KS,
    MetricAccumulator,
    propensity_weights_of,
)
from infae_kit.evaluation.selection import TuningReport, select_on_validation
from infae_kit.io_utils import progress_bar
from infae_kit.jax_compat import enable_x64
from infae_kit.models.base import Recommender
from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID
from infae_kit.models.landmark_basis import (
    KernelSpec,
    LandmarkBasis,
    build_landmark_basis,
    check_landmark_count,
    resolve_selection,
    landmark_basis,
)
from infae_kit.models.landmark_solver import (
    DEFAULT_BLOCK_USERS,
    BlockEngine,
    LandmarkSolver,
    NormalEquations,
    gram_rows,
    accumulate_normal_equations,
    check_landmark_memory,
    solve_landmark,
)
from infae_kit.models.ntk import (
    B_STD,
    W_STD,
)

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset

__all__ = ["LandmarkInfiniteAE", "LandmarkReport", "evaluation_users", "evaluated_and_selection_users",
           "tune_and_evaluate_landmark"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------------------
def _check_block(block_users) -> int:
    if not is_int(block_users) or int(block_users) < 1:
        raise ParameterError(f"block_users must be a positive integer (users per streamed block), got {block_users!r}.")
    return int(block_users)


class LandmarkInfiniteAE(Recommender):
    """Landmark ∞-AE: ∞-AE with ``m`` landmark rows as its kernel basis and every user as a regression target.

    Args:
      lam: ridge λ, scaled by ``trace(K_UU)/U`` like :class:`~infae_kit.models.infinite_ae.InfiniteAE`
        (``scale_lambda=False`` uses it as is).
      landmarks: number ``m`` of landmark users, or an array of user indices of the matrix passed to ``fit``.
      selection: a rule of :data:`SELECTIONS` (``None``: :data:`RECOMMENDED_SELECTION` for a number, ``"given"``
        for an array, ``"distilled"`` with ``support``).
      support: ``(m, items)`` rows used as the landmarks (e.g. a DISTILL-CF support's matrix).
      block_users: users per streamed block.
      depth: hidden Dense→ReLU blocks (the paper: 1).
      dtype: ``"float32"`` (default) or ``"float64"`` for the blocks; the solve is always float64.
      seed: seed of the landmark selection.
      memory_limit_bytes: override the available-memory check (default: /proc/meminfo).
      engine: a :class:`BlockEngine` (default: one device; see :mod:`infae_kit.scale` for sharded ones).

    Attributes (after ``fit``):
      basis_: the :class:`LandmarkBasis`.
      beta_: ``(m, items)`` weights.
      effective_lambda_: λ' added (times ``K_LL``); ``rank_``: directions of the landmark space used.
      n_users_trained_: users that were regression targets.

    Examples:
      >>> import scipy.sparse as sp
      >>> X = sp.random(60, 30, density=0.2, format="csr", random_state=0)
      >>> X.data[:] = 1.0
      >>> model = LandmarkInfiniteAE(lam=5.0, landmarks=20, selection="uniform").fit(X)
      >>> model.recommend(X[:2], k=3).shape
      (2, 3)
    """

    def __init__(self, lam: float = 5.0, *, landmarks: int | npt.ArrayLike = 1000, selection: str | None = None,
                 support: MatrixLike | None = None, block_users: int = DEFAULT_BLOCK_USERS, depth: int = 1,
                 dtype: npt.DTypeLike = "float32", scale_lambda: bool = True, seed: int = 42, w_std: float = W_STD,
                 b_std: float = B_STD, memory_limit_bytes: int | None = None, engine: BlockEngine | None = None):
        if not np.isfinite(lam) or lam < 0:
            raise ParameterError(f"lam must be a finite number >= 0, got {lam!r}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ParameterError(f"dtype must be float32 or float64, got {dtype!r}")
        if not is_int(depth) or depth < 1:
            raise ParameterError(f"depth must be an integer >= 1, got {depth!r}")
        self.selection = resolve_selection(landmarks, selection, support)
        self.lam = float(lam)
        self.landmarks = landmarks
        self.support = support
        self.block_users = _check_block(block_users)
        self.depth = int(depth)
        self.dtype = np.dtype(dtype)
        self.scale_lambda = scale_lambda
        self.seed = seed
        self.w_std = w_std
        self.b_std = b_std
        self.memory_limit_bytes = memory_limit_bytes
        self.engine = engine or BlockEngine()

    def _basis(self, X: sp.csr_matrix) -> LandmarkBasis:
        m = self.support.shape[0] if self.support is not None else (
            int(self.landmarks) if is_int(self.landmarks) else len(np.asarray(self.landmarks)))
        check_landmark_memory(m, X.shape[1], self.block_users, 1, self.dtype, limit_bytes=self.memory_limit_bytes)
        return landmark_basis(X, self.landmarks, self.selection, support=self.support, seed=self.seed,
                              depth=self.depth, dtype=self.dtype, w_std=self.w_std, b_std=self.b_std)

    def fit(self, X: MatrixLike) -> "LandmarkInfiniteAE":
        """Fit on ``X``: ``(U, items)`` binary csr rows, every one a regression target. Returns ``self``."""
        X = check_interactions(X, "X")
        self.basis_ = self._basis(X)
        ne = accumulate_normal_equations(X, self.basis_, block_users=self.block_users, depth=self.depth,
                                         w_std=self.w_std, b_std=self.b_std, engine=self.engine)
        self.set_solution(ne, self.lam)
        return self

    def set_solution(self, ne: NormalEquations, lam: float, beta: np.ndarray | None = None) -> "LandmarkInfiniteAE":
        """Set λ and β from accumulated normal equations (solving unless ``beta`` is given)."""
        if beta is None:
            beta, reg, rank = solve_landmark(ne, lam, dtype=self.dtype, scale_lambda=self.scale_lambda)
        else:
            reg, rank = lam * (ne.lambda_scale if self.scale_lambda else 1.0), -1
        self.lam = float(lam)
        self.beta_, self.effective_lambda_, self.rank_ = beta, reg, rank
        self.n_items_ = int(ne.ktx.shape[1])
        self.n_users_trained_ = int(ne.n_users)
        return self

    def save(self, path: Path | str) -> Path:
        """Write the fitted model (landmark rows, β, λ and the kernel's settings) to an ``.npz`` file, atomically."""
        import io

        from infae_kit.io_utils import atomic_write_bytes

        self._check_fitted()
        buffer = io.BytesIO()
        index = self.basis_.user_index
        np.savez(buffer, beta=self.beta_, rows=self.basis_.rows, sq_norms=self.basis_.sq_norms,
                 user_index=np.array([], dtype=np.int64) if index is None else index,
                 has_user_index=index is not None, selection=self.basis_.selection, lam=self.lam,
                 effective_lambda=self.effective_lambda_, rank=self.rank_, depth=self.depth,
                 dtype=self.dtype.name, w_std=self.w_std, b_std=self.b_std, n_users_trained=self.n_users_trained_,
                 block_users=self.block_users, scale_lambda=self.scale_lambda)
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path | str) -> "LandmarkInfiniteAE":
        """A model written by :meth:`save`, ready to ``predict`` / ``recommend``."""
        try:
            with np.load(path, allow_pickle=False) as z:
                f = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path} is not a saved landmark ∞-AE ({exc}).") from exc
        index = f["user_index"] if bool(f["has_user_index"]) else None
        model = cls(float(f["lam"]), landmarks=1, selection="uniform", block_users=int(f["block_users"]),
                    depth=int(f["depth"]), dtype=str(f["dtype"]), scale_lambda=bool(f["scale_lambda"]),
                    w_std=float(f["w_std"]), b_std=float(f["b_std"]))
        model.selection = str(f["selection"])
        model.basis_ = LandmarkBasis(f["rows"], f["sq_norms"], index, model.selection)
        model.beta_, model.effective_lambda_, model.rank_ = f["beta"], float(f["effective_lambda"]), int(f["rank"])
        model.n_items_, model.n_users_trained_ = int(f["beta"].shape[1]), int(f["n_users_trained"])
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "beta_"):
            raise ParameterError("this LandmarkInfiniteAE is not fitted yet: call fit(X) first")

    def _scores(self, Xc: sp.csr_matrix) -> np.ndarray:
        spec = KernelSpec(self.n_items_, self.depth, float(self.w_std), float(self.b_std))
        check_landmark_memory(self.basis_.m, self.n_items_, min(self.block_users, Xc.shape[0]), 1, self.dtype,
                              limit_bytes=self.memory_limit_bytes)
        out = np.empty((Xc.shape[0], self.n_items_), dtype=self.dtype)
        single = BlockEngine()  # scoring given rows is local to this process
        rows = single.padded_block(self.block_users, Xc.shape[0])
        with enable_x64():
            norms_l = single.put(self.basis_.sq_norms)
            beta = single.put(self.beta_)
            for blocks in single.steps((0, Xc.shape[0]), rows, Xc.shape[0]):
                csr = Xc[blocks[0]]
                gram, norms = gram_rows(csr, self.basis_)
                k = single.kernels([gram], [norms], norms_l, spec, rows)
                out[blocks[0]] = single.scores(k, beta, [csr.shape[0]])[0]
        if not np.all(np.isfinite(out)):
            raise NumericalError("landmark ∞-AE produced non-finite scores; refit with a larger λ or dtype='float64'")
        return out

    def predict(self, X_context: MatrixLike) -> np.ndarray:
        """Scores ``(b, items)`` in the model's dtype for the context rows (any users: they are just rows)."""
        self._check_fitted()
        return self._scores(check_interactions(X_context, "X_context", n_items=self.n_items_))


# ----------------------------------------------------------------------------------------------------------
# λ on validation, then test
# ----------------------------------------------------------------------------------------------------------
@dataclass
class LandmarkReport(TuningReport):
    """Outcome of :func:`tune_and_evaluate_landmark`: a :class:`~infae_kit.evaluation.selection.TuningReport`
    (``best_value`` is the λ picked, ``val_metrics``, ``test_metrics``, ``test``, ``model``, ``timings_s``)
    plus the landmark basis.

    Attributes:
      effective_lambdas, ranks: ``{λ: λ'}``, ``{λ: directions of the landmark space used}``.
      n_landmarks, selection, landmark_users: the basis (``landmark_users`` is ``None`` for a support).
      n_users_trained: users that were regression targets (all of them).
      n_users_evaluated: users the test metrics average over (all, or the ``eval_users`` sample).
      n_users_selection: users whose validation items picked λ (``select_users``, or all evaluated users).
      memory_estimate_bytes: the estimate checked before allocating.

    ``timings_s`` holds ``select``, ``accumulate``, ``solve_lambda=…``, ``val_eval``, ``test`` and ``total``.
    """

    effective_lambdas: dict[float, float] = field(default_factory=dict)
    ranks: dict[float, int] = field(default_factory=dict)
    n_landmarks: int = 0
    selection: str = ""
    landmark_users: np.ndarray | None = field(repr=False, default=None)
    n_users_trained: int = 0
    n_users_evaluated: int = 0
    n_users_selection: int = 0
    memory_estimate_bytes: int = 0


def evaluation_users(n_users: int, eval_users: int | None, eval_seed: int = 0) -> np.ndarray | None:
    """The users :func:`tune_and_evaluate_landmark` evaluates: ``None`` for all of them, else a sorted seeded
    sample of ``eval_users`` user indices ``(eval_users,)`` (every user stays a regression target either way).

    Raises:
      ParameterError: ``eval_users`` neither ``None`` nor a positive integer.
    """
    if eval_users is None or (is_int(eval_users) and int(eval_users) >= n_users):
        return None
    if not is_int(eval_users) or int(eval_users) < 1:
        raise ParameterError(f"eval_users must be a positive integer (a seeded sample of users) or None, got {eval_users!r}.")
    return np.sort(np.random.default_rng(eval_seed).choice(n_users, size=int(eval_users), replace=False))


def evaluated_and_selection_users(n_users: int, eval_users: int | None, select_users: int | None,
                                  eval_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(evaluated (e,), selection (s,))`` sorted user indices of :func:`tune_and_evaluate_landmark`.

    ``evaluated`` is every user or the :func:`evaluation_users` sample of ``eval_users`` (seed ``eval_seed``);
    ``selection``, whose validation items pick λ, is all of them or a seeded sample (seed ``eval_seed + 1``) of
    ``select_users`` of them.
    """
    sample = evaluation_users(n_users, eval_users, eval_seed)
    evaluated = np.arange(n_users) if sample is None else sample
    pick = evaluation_users(len(evaluated), select_users, eval_seed + 1)
    return evaluated, evaluated if pick is None else evaluated[pick]


def _score_pass(context, targets, excluded, users: np.ndarray, weights, negatives, betas: dict, basis, spec, engine,
                rows: int, ks, n_users: int, progress: bool, desc: str) -> dict:
    """One streamed pass over ``users`` scoring every β of ``betas``; returns ``{key: EvaluationResult}``.

    ``context(selection)`` gives the context rows of a block of users; ``targets`` and ``excluded`` are the
    ``(len(users), items)`` target and masked rows of ``users``; ``negatives`` the AUC negatives of all users.
    """
    sel_all = users
    local_negatives = None if negatives is None else negatives[sel_all]
    accs = {key: MetricAccumulator(targets, excluded, weights, local_negatives, ks) for key in betas}
    n_local = len(sel_all)
    position = 0
    with enable_x64():
        norms_l = engine.put(basis.sq_norms)
        on_device = {key: engine.put(beta) for key, beta in betas.items()}
        n_steps = -(-n_local // (rows * engine.blocks_per_step))
        bar = progress_bar(engine.steps(sel_all, rows, n_users), total=n_steps, enabled=progress, desc=desc)
        for blocks in bar:
            csrs = [context(sel) for sel in blocks]
            grams, norms = zip(*(gram_rows(c, basis) for c in csrs))
            kernels = engine.kernels(list(grams), list(norms), norms_l, spec, rows)
            sizes = [c.shape[0] for c in csrs]
            for key, beta in on_device.items():
                at = position
                for scores in engine.scores(kernels, beta, sizes):
                    if scores.shape[0]:
                        accs[key].add(slice(at, at + scores.shape[0]), scores)
                    at += scores.shape[0]
            position += sum(sizes)
        bar.finish()
    return {key: engine.merge_evaluation(acc, ks, n_users) for key, acc in accs.items()}


def tune_and_evaluate_landmark(
    data: RecDataset,
    landmarks: int | npt.ArrayLike = 1000,
    selection: str | None = None,
    lambdas: Sequence[float] = PAPER_LAMBDA_GRID,
    block_users: int = DEFAULT_BLOCK_USERS,
    *,
    support: MatrixLike | None = None,
    depth: int = 1,
    dtype: npt.DTypeLike = "float32",
    select_by: str = "HR@100",
    seed: int = 42,
    ks: Sequence[int] = DEFAULT_KS,
    n_negatives: int = 50,
    negatives_seed: int = 42,
    eval_users: int | None = None,
    eval_seed: int = 0,
    select_users: int | None = None,
    weights: np.ndarray | None = None,
    negatives: np.ndarray | None = None,
    engine: BlockEngine | None = None,
    progress: bool = True,
    memory_limit_bytes: int | None = None,
) -> LandmarkReport:
    """The paper's ∞-AE protocol for landmark ∞-AE: λ on validation ``select_by``, test with train+val as context.

    The normal equations are accumulated once; each λ costs one ``m × m`` float64 solve; the validation scores of
    every λ come from one streamed pass over the users (each block's kernel computed once, then one product per λ).

    Args:
      data: a :class:`~infae_kit.data.RecDataset` (or any object with row-sliceable ``train``/``val``/``test``,
        ``n_users``, ``n_items`` and ``auc_negatives``).
      landmarks, selection, support, depth, dtype, seed: as in :class:`LandmarkInfiniteAE`.
      lambdas: λ grid (default: the paper's {0, 1, 5, 20, 50, 100}).
      block_users: users per streamed block.
      select_by: validation metric that picks λ (the paper's code: HR@100).
      ks, n_negatives, negatives_seed: evaluation settings (as :func:`~infae_kit.evaluation.protocol.evaluate_model`).
      eval_users: evaluate validation and test on a seeded sample of this many users (``None``: all users).
        Every user is still a regression target.
      eval_seed: seed of that sample.
      select_users: pick λ on the validation items of a seeded sample (seed ``eval_seed + 1``) of this many of
        the evaluated users (``None``: all of them). Each λ costs a scoring pass over these users.
      weights, negatives: precomputed propensity weights ``(items,)`` and AUC negatives ``(U, n_negatives)``
        (default: from ``data``).
      engine: device engine (default: one device).
      progress: progress bars.
      memory_limit_bytes: override the available-memory check.

    Returns:
      :class:`LandmarkReport`.
    """
    if not lambdas:
        raise ParameterError("lambdas is empty: give at least one λ")
    lambdas = [float(v) for v in lambdas]
    if any(not np.isfinite(v) or v < 0 for v in lambdas):
        raise ParameterError(f"every λ must be finite and >= 0, got {lambdas}")
    block_users = _check_block(block_users)
    engine = engine or BlockEngine()
    t_total = time.perf_counter()
    timings: dict[str, float] = {}
    train = data.train
    n_users, n_items = int(data.n_users), int(data.n_items)
    m = int(support.shape[0]) if support is not None else (
        check_landmark_count(landmarks, n_users) if is_int(landmarks) else len(np.asarray(landmarks)))
    need = check_landmark_memory(m, n_items, block_users, len(lambdas), dtype, limit_bytes=memory_limit_bytes)

    t = time.perf_counter()
    model = LandmarkInfiniteAE(lambdas[0], landmarks=landmarks, selection=selection, support=support,
                               block_users=block_users, depth=depth, dtype=dtype, seed=seed,
                               memory_limit_bytes=memory_limit_bytes, engine=engine)
    spec = KernelSpec(n_items, int(depth), W_STD, B_STD)
    model.basis_ = build_landmark_basis(train, landmarks, model.selection, support, seed, dtype, spec)
    timings["select"] = time.perf_counter() - t

    t = time.perf_counter()
    ne = accumulate_normal_equations(train, model.basis_, block_users=block_users, depth=depth, engine=engine,
                                     progress=progress)
    timings["accumulate"] = time.perf_counter() - t

    t = time.perf_counter()
    solver = LandmarkSolver(ne)
    timings["solve_setup"] = time.perf_counter() - t
    betas, effective, ranks = {}, {}, {}
    for lam in lambdas:
        t = time.perf_counter()
        betas[lam], effective[lam], ranks[lam] = solver.solve(lam, dtype=dtype)
        timings[f"solve_lambda={lam:g}"] = time.perf_counter() - t

    t = time.perf_counter()
    weights = propensity_weights_of(data) if weights is None else np.asarray(weights)
    if negatives is None and n_negatives:
        negatives = data.auc_negatives(n_negatives, negatives_seed)
    evaluated, choosers = evaluated_and_selection_users(n_users, eval_users, select_users, eval_seed)
    start, stop = engine.local_users(n_users, engine.padded_block(block_users, n_users))
    local = evaluated[(evaluated >= start) & (evaluated < stop)]
    local_choosers = choosers[(choosers >= start) & (choosers < stop)]
    timings["eval_setup"] = time.perf_counter() - t

    rows = engine.padded_block(block_users, len(evaluated))
    t = time.perf_counter()
    val = _score_pass(lambda sel: train[sel], data.val[local_choosers], train[local_choosers], local_choosers,
                      weights, negatives, betas, model.basis_, spec, engine,
                      engine.padded_block(block_users, len(choosers)), ks, n_users, progress,
                      "landmark ∞-AE: validation, every λ")
    timings["val_eval"] = time.perf_counter() - t
    # Every λ was scored in the one pass above; the shared selection loop only picks among them.
    chosen = select_on_validation(lambdas, lambda lam: (val[lam].metrics, None), select_by=select_by)
    best = chosen.best_value
    model.set_solution(ne, best, betas[best])
    model.effective_lambda_, model.rank_ = effective[best], ranks[best]

    def train_val(sel):  # the test context, and the items it masks: train ∪ validation rows
        ctx = (train[sel] + data.val[sel]).tocsr()
        ctx.data[:] = 1.0
        return ctx

    t = time.perf_counter()
    test = _score_pass(train_val, data.test[local], train_val(local), local, weights, negatives, {best: betas[best]},
                       model.basis_, spec, engine, rows, ks, n_users, progress, "landmark ∞-AE: test")[best]
    timings["test"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_total
    n_eval = len(evaluated)
    return LandmarkReport(best, chosen.val_metrics, test.metrics, test, model, timings, select_by,
                          effective_lambdas=effective, ranks=ranks, n_landmarks=m, selection=model.basis_.selection,
                          landmark_users=model.basis_.user_index, n_users_trained=n_users, n_users_evaluated=n_eval,
                          n_users_selection=len(choosers), memory_estimate_bytes=need)
