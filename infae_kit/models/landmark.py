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

**Streaming.** The normal equations ``K_LU K_UL`` (``m × m``) and ``K_LU X`` (``m × items``) are sums over users,
so they are accumulated over blocks of ``block_users`` users read from the sparse matrix: per block, the Gram
``X_b Lᵀ`` (a sparse × dense product), the NTK from it with the jit-compiled
:func:`~infae_kit.models.ntk.ntk_from_gram` on the device, ``K_bᵀ K_b`` on the device and ``X_bᵀ K_b`` as a sparse
product on the host. No ``U × U`` matrix exists, and no more than one block of users is ever dense. Memory is
``O(m² + m · items + block · (m + items))``, estimated before anything is allocated
(:func:`estimate_landmark_memory_bytes`; :class:`~infae_kit.errors.MemoryBudgetError` names the ``m`` and block
size that would fit).

**Precision.** Blocks are computed in the model's dtype (float32 by default, like the paper's code); each block's
``K_bᵀ K_b`` and ``X_bᵀ K_b`` are added into float64 accumulators, and the ``m × m`` solve is always done in float64
(the normal equations square the kernel's condition number, beyond what float32 holds), in the eigenbasis of
``K_LL`` with its round-off directions left out (:class:`LandmarkSolver`): stable for ill-conditioned NTK Grams,
duplicate landmark rows and λ = 0.

**Landmarks** (:data:`SELECTIONS`): ``"uniform"`` (seeded sample of users), ``"kmeans++"`` (k-means++ seeding with
the distance of the NTK feature space, ``d²(x, c) = Θ(x,x) + Θ(c,c) − 2Θ(x,c)``, on a seeded candidate pool),
``"leverage"`` (approximate ridge-leverage scores from a uniform Nyström pilot, sampled without replacement),
``"distilled"`` (the rows of a given support matrix, e.g. a DISTILL-CF summary), or an explicit array of user
indices (``"given"``). :data:`RECOMMENDED_SELECTION` is the rule measured best on ML-1M (README, "Scale").

**Devices.** The block computations go through a :class:`BlockEngine`; the default runs on JAX's default
device. :mod:`infae_kit.scale` provides one that shards the blocks over every local device and over processes
(``jax.sharding`` + ``shard_map`` with a ``psum`` of the normal equations), with the same results.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from infae_kit.checks import check_interactions, is_int
from infae_kit.errors import DataError, MemoryBudgetError, NumericalError, ParameterError
from infae_kit.evaluation import metrics as M
from infae_kit.evaluation.protocol import DEFAULT_KS, EvaluationResult, MetricAccumulator
from infae_kit.evaluation.selection import TuningReport, select_on_validation
from infae_kit.io_utils import available_memory_bytes
from infae_kit.jax_compat import enable_x64
from infae_kit.models.base import Recommender
from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID
from infae_kit.models.ntk import B_STD, W_STD, ntk_from_gram, ntk_matrix, squared_row_norms

__all__ = [
    "SELECTIONS",
    "RECOMMENDED_SELECTION",
    "DEFAULT_BLOCK_USERS",
    "LandmarkBasis",
    "NormalEquations",
    "KernelSpec",
    "BlockEngine",
    "block_kernel",
    "block_normal_terms",
    "block_scores",
    "ntk_self",
    "check_landmark_users",
    "LandmarkInfiniteAE",
    "LandmarkReport",
    "select_landmark_users",
    "landmark_basis",
    "read_landmark_file",
    "accumulate_normal_equations",
    "LandmarkSolver",
    "solve_landmark",
    "estimate_landmark_memory_bytes",
    "check_landmark_memory",
    "tune_and_evaluate_landmark",
]

log = logging.getLogger(__name__)

SELECTIONS = ("uniform", "kmeans++", "leverage", "distilled", "given")
"""Landmark selection rules (see the module docstring)."""
RECOMMENDED_SELECTION = "uniform"
"""The rule measured best on ML-1M at m = 500 and 1,000 (uniform beat k-means++ and leverage on every metric;
README, "Scale"); the default for an integer number of landmarks."""
DEFAULT_BLOCK_USERS = 8192
"""Users per block of the streamed accumulation and scoring."""
CANDIDATE_POOL_PER_LANDMARK = 20
"""k-means++ and leverage scores look at ``min(U, 20 m)`` seeded candidate users (not all ``U``)."""
LEVERAGE_LAMBDA = 5.0
"""λ (scaled like ∞-AE's) of the ridge-leverage scores: the middle of the paper's grid."""


# ----------------------------------------------------------------------------------------------------------
# kernel pieces
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelSpec:
    """The NTK of ∞-AE's network over ``n_features`` items (see :mod:`infae_kit.models.ntk`)."""

    n_features: int
    depth: int = 1
    w_std: float = W_STD
    b_std: float = B_STD

    def kwargs(self) -> dict:
        return dict(n_features=self.n_features, depth=self.depth, w_std=self.w_std, b_std=self.b_std)


def ntk_self(sq_norms: jax.Array, spec: KernelSpec) -> jax.Array:
    """``(n,)`` NTK self-similarities ``Θ(x, x)`` from the squared norms ``‖x‖²`` (jit- and vmap-friendly)."""
    one = lambda q: ntk_from_gram(q.reshape(1, 1), q.reshape(1), q.reshape(1), **spec.kwargs())[0, 0]  # noqa: E731
    return jax.vmap(one)(sq_norms)


@functools.partial(jax.jit, static_argnames=("spec",))
def block_kernel(gram: jax.Array, sq_norms_b: jax.Array, sq_norms_l: jax.Array, valid: jax.Array,
                 spec: KernelSpec) -> jax.Array:
    """``(b, m)`` NTK of a block of users with the landmarks from their Gram; padded rows (``valid`` False) are 0."""
    k = ntk_from_gram(gram, sq_norms_b, sq_norms_l, **spec.kwargs())
    return jnp.where(valid[:, None], k, jnp.zeros((), k.dtype))


def block_normal_terms(gram, sq_norms_b, sq_norms_l, valid, spec: KernelSpec):
    """One block's share of the normal equations: ``(K_b (b, m), K_bᵀ K_b (m, m), Σ_b Θ(x, x))``.

    ``K_bᵀ K_b`` is computed at full float32 precision (no TF32/bf16 passes on GPUs). Traceable: the sharded
    engine calls it inside ``shard_map``.
    """
    k = block_kernel(gram, sq_norms_b, sq_norms_l, valid, spec)
    ktk = jnp.matmul(k.T, k, precision=jax.lax.Precision.HIGHEST)
    diag = jnp.where(valid, ntk_self(sq_norms_b, spec), jnp.zeros((), k.dtype))
    return k, ktk, jnp.sum(diag)


_block_normal_terms_jit = jax.jit(block_normal_terms, static_argnames=("spec",))


@jax.jit
def block_scores(k: jax.Array, beta: jax.Array) -> jax.Array:
    """``(b, items)`` scores ``K_b β`` at full float32 precision."""
    return jnp.matmul(k, beta, precision=jax.lax.Precision.HIGHEST)


# ----------------------------------------------------------------------------------------------------------
# landmarks
# ----------------------------------------------------------------------------------------------------------
@dataclass
class LandmarkBasis:
    """The ``m`` landmark rows of a landmark ∞-AE.

    Attributes:
      rows: ``(m, items)`` dense landmark rows in the compute dtype.
      sq_norms: ``(m,)`` squared norms of ``rows``.
      user_index: ``(m,)`` user indices of the landmarks (``None`` for a distilled support).
      selection: the rule that chose them.
    """

    rows: np.ndarray
    sq_norms: np.ndarray
    user_index: np.ndarray | None
    selection: str

    @property
    def m(self) -> int:
        return int(self.rows.shape[0])


def _check_count(m, n_users: int) -> int:
    if not is_int(m):
        raise ParameterError(f"landmarks must be a positive integer (m) or an array of user indices, got {m!r}.")
    m = int(m)
    if m < 1:
        raise ParameterError(f"landmarks must be at least 1 (got m = {m}); 500 to 2,000 is the useful range.")
    if m > n_users:
        raise ParameterError(
            f"landmarks m = {m:,} exceeds the {n_users:,} users of the training matrix; use m ≤ {n_users:,} "
            f"(m = {n_users:,} is exact ∞-AE)."
        )
    return m


def check_landmark_users(indices, n_users: int) -> np.ndarray:
    """``indices`` as a sorted int64 array of distinct user indices in ``[0, n_users)``.

    Raises:
      DataError: not 1-D integers, empty, duplicates, or users outside the matrix (named).
    """
    arr = np.asarray(indices)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"landmark users must be a non-empty 1-D array of user indices, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise DataError(f"landmark users must be integer user indices, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    unknown = arr[(arr < 0) | (arr >= n_users)]
    if unknown.size:
        raise DataError(
            f"{unknown.size} landmark user(s) are not users of the training matrix (valid indices 0…{n_users - 1}): "
            f"{unknown[:10].tolist()}{' …' if unknown.size > 10 else ''}. Use indices of this dataset's users."
        )
    uniq = np.unique(arr)
    if uniq.size != arr.size:
        raise DataError(f"landmark users contain {arr.size - uniq.size} duplicate(s); each landmark must be a distinct user.")
    return uniq


def read_landmark_file(path, user_ids: np.ndarray) -> np.ndarray:
    """User indices of the landmarks listed in a file, one original user id per line (``#`` comments allowed).

    Args:
      path: text file of user ids (as in ``data.user_ids``), or a ``.npy`` array of them.
      user_ids: ``(n_users,)`` original ids of the dataset's users (``RecDataset.user_ids``).

    Returns:
      Sorted ``(m,)`` int64 user indices.

    Raises:
      DataError: missing file, empty file, or ids that are not users of the dataset (the first ones named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"landmark file {path} does not exist; give a text file with one user id per line.")
    if path.suffix == ".npy":
        raw = np.load(path, allow_pickle=False).ravel()
    else:
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        raw = np.array([ln for ln in lines if ln])
    if raw.size == 0:
        raise DataError(f"landmark file {path} lists no user ids.")
    ids = np.asarray(user_ids)
    keys = ids.astype(str)
    order = np.argsort(keys, kind="stable")
    wanted = raw.astype(str)
    pos = np.searchsorted(keys[order], wanted)
    pos_c = np.minimum(pos, len(keys) - 1)
    found = keys[order][pos_c] == wanted
    if not found.all():
        missing = wanted[~found]
        raise DataError(
            f"landmark file {path}: {missing.size} user id(s) are not users of this dataset: "
            f"{missing[:10].tolist()}{' …' if missing.size > 10 else ''} (a user with fewer than 3 interactions is "
            "removed by the split). List ids from the dataset's user_ids."
        )
    return check_landmark_users(order[pos_c], len(ids))


def _candidate_pool(n_users: int, m: int, rng: np.random.Generator) -> np.ndarray:
    size = min(n_users, max(m, CANDIDATE_POOL_PER_LANDMARK * m))
    return np.arange(n_users) if size == n_users else np.sort(rng.choice(n_users, size=size, replace=False))


def _kernel_to(x_rows: sp.csr_matrix, y_dense: np.ndarray, x_norms: np.ndarray, y_norms: np.ndarray,
               spec: KernelSpec) -> np.ndarray:
    """``(n, k)`` float64 NTK between sparse rows and dense rows (small sizes: selection only)."""
    gram = np.asarray(x_rows @ y_dense.T, dtype=np.float64)
    with enable_x64():
        k = ntk_from_gram(jnp.asarray(gram), jnp.asarray(x_norms, jnp.float64), jnp.asarray(y_norms, jnp.float64),
                          **spec.kwargs())
        return np.asarray(k)


def _self_kernel(norms: np.ndarray, spec: KernelSpec) -> np.ndarray:
    with enable_x64():
        return np.asarray(jax.jit(ntk_self, static_argnames=("spec",))(jnp.asarray(norms, jnp.float64), spec))


def _kmeanspp(X: sp.csr_matrix, pool: np.ndarray, m: int, rng: np.random.Generator, spec: KernelSpec) -> np.ndarray:
    rows = sp.csr_matrix(X[pool], dtype=np.float64)
    norms = squared_row_norms(rows, np.float64)
    diag = _self_kernel(norms, spec)
    chosen = np.empty(m, dtype=np.int64)
    chosen[0] = rng.integers(len(pool))
    closest = np.full(len(pool), np.inf)
    taken = np.zeros(len(pool), dtype=bool)
    for t in range(m):
        c = chosen[t]
        taken[c] = True
        center = rows[c].toarray()
        k = _kernel_to(rows, center, norms, norms[c:c + 1], spec)[:, 0]
        np.minimum(closest, np.maximum(diag + diag[c] - 2.0 * k, 0.0), out=closest)
        if t + 1 == m:
            break
        weights = np.where(taken, 0.0, closest)
        total = weights.sum()
        if not np.isfinite(total) or total <= 0:  # every remaining candidate duplicates a chosen row
            weights = (~taken).astype(np.float64)
            total = weights.sum()
        chosen[t + 1] = rng.choice(len(pool), p=weights / total)
    return pool[np.sort(chosen)]


def _leverage(X: sp.csr_matrix, pool: np.ndarray, m: int, rng: np.random.Generator, spec: KernelSpec) -> np.ndarray:
    rows = sp.csr_matrix(X[pool], dtype=np.float64)
    norms = squared_row_norms(rows, np.float64)
    diag = _self_kernel(norms, spec)
    lam = LEVERAGE_LAMBDA * float(diag.mean())
    pilot = np.sort(rng.choice(len(pool), size=min(m, len(pool)), replace=False))
    pilot_dense = rows[pilot].toarray()
    k_ss = _kernel_to(rows[pilot], pilot_dense, norms[pilot], norms[pilot], spec)
    factor = sla.cho_factor(k_ss + lam * np.eye(len(pilot)), lower=True)
    scores = np.empty(len(pool))
    step = 4096
    for start in range(0, len(pool), step):
        k_bs = _kernel_to(rows[start:start + step], pilot_dense, norms[start:start + step], norms[pilot], spec)
        explained = np.einsum("ij,ji->i", k_bs, sla.cho_solve(factor, k_bs.T))
        scores[start:start + step] = np.maximum(diag[start:start + step] - explained, 0.0) / lam
    # m draws without replacement with probability ∝ score: the m largest log(score) + Gumbel noise
    keys = np.log(np.maximum(scores, 1e-300)) + rng.gumbel(size=len(pool))
    return pool[np.sort(np.argpartition(-keys, m - 1)[:m])]


def select_landmark_users(X, m: int, selection: str = RECOMMENDED_SELECTION, *, seed: int = 42,
                          depth: int = 1, w_std: float = W_STD, b_std: float = B_STD) -> np.ndarray:
    """Indices of ``m`` landmark users of ``X`` chosen by ``selection``.

    Args:
      X: ``(U, items)`` train rows (sparse or dense).
      m: number of landmarks (``1 ≤ m ≤ U``).
      selection: ``"uniform"``, ``"kmeans++"`` or ``"leverage"``.
      seed: seed of every random choice (the result is a deterministic function of the arguments).
      depth, w_std, b_std: the NTK whose feature geometry ``"kmeans++"`` and ``"leverage"`` use.

    Returns:
      Sorted ``(m,)`` int64 distinct user indices.
    """
    return _select_users(check_interactions(X, "X"), m, selection, seed, KernelSpec(int(X.shape[1]), int(depth),
                                                                                   float(w_std), float(b_std)))


def _select_users(X, m, selection: str, seed: int, spec: KernelSpec) -> np.ndarray:
    """:func:`select_landmark_users` on rows already checked (reads only the candidate pool's rows)."""
    n = X.shape[0]
    m = _check_count(m, n)
    rng = np.random.default_rng(seed)
    if selection == "uniform":
        return np.sort(rng.choice(n, size=m, replace=False)).astype(np.int64)
    if selection == "kmeans++":
        return _kmeanspp(X, _candidate_pool(n, m, rng), m, rng, spec)
    if selection == "leverage":
        return _leverage(X, _candidate_pool(n, m, rng), m, rng, spec)
    raise ParameterError(
        f"selection {selection!r} does not choose users from X; use 'uniform', 'kmeans++' or 'leverage' here "
        f"(all rules: {SELECTIONS})."
    )


def _resolve_selection(landmarks, selection: str | None, support) -> str:
    if support is not None:
        if selection not in (None, "distilled"):
            raise ParameterError(f"support= gives distilled landmarks; selection must be 'distilled' or None, got {selection!r}.")
        return "distilled"
    if selection == "distilled":
        raise ParameterError("selection='distilled' needs support=<the summary's (m, items) rows>, e.g. a DISTILL-CF support.")
    if selection is not None and selection not in SELECTIONS:
        raise ParameterError(f"unknown selection {selection!r}; choose one of {SELECTIONS}.")
    if not is_int(landmarks):
        if selection not in (None, "given"):
            raise ParameterError(f"an array of landmark users is selection 'given', not {selection!r}.")
        return "given"
    if selection == "given":
        raise ParameterError("selection='given' needs landmarks=<an array of user indices>.")
    return selection or RECOMMENDED_SELECTION


def landmark_basis(X, landmarks=1000, selection: str | None = None, *, support=None, seed: int = 42,
                   depth: int = 1, dtype="float32", w_std: float = W_STD, b_std: float = B_STD) -> LandmarkBasis:
    """The landmark rows of a landmark ∞-AE on train rows ``X``.

    Args:
      X: ``(U, items)`` train rows (sparse).
      landmarks: number ``m`` of landmark users, or an array of user indices of ``X``.
      selection: a rule of :data:`SELECTIONS`; ``None`` picks :data:`RECOMMENDED_SELECTION` for a number,
        ``"given"`` for an array and ``"distilled"`` when ``support`` is given.
      support: ``(m, items)`` rows (dense or sparse, any non-negative values) used as the landmarks themselves.
      seed, depth, w_std, b_std: as in :func:`select_landmark_users`.
      dtype: compute dtype of the rows.

    Returns:
      A :class:`LandmarkBasis`.
    """
    return _basis(check_interactions(X, "X"), landmarks, selection, support, seed, dtype,
                  KernelSpec(int(X.shape[1]), int(depth), float(w_std), float(b_std)))


def _basis(X, landmarks, selection, support, seed: int, dtype, spec: KernelSpec) -> LandmarkBasis:
    """:func:`landmark_basis` on rows already checked: reads only the landmark (and candidate) rows of ``X``."""
    dt = np.dtype(dtype)
    rule = _resolve_selection(landmarks, selection, support)
    if rule == "distilled":
        sup = check_interactions(support, "support", n_items=X.shape[1])
        if sup.shape[0] < 1:
            raise ParameterError("support has no rows; it needs at least one landmark row.")
        rows, index = sup.toarray().astype(dt), None
    else:
        if rule == "given":
            index = check_landmark_users(landmarks, X.shape[0])
        else:
            index = _select_users(X, landmarks, rule, seed, spec)
        rows = X[index].toarray().astype(dt)
    return LandmarkBasis(rows, squared_row_norms(rows, dt), index, rule)


# ----------------------------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------------------------
def estimate_landmark_memory_bytes(n_landmarks: int, n_items: int, block_users: int, n_lambdas: int = 1,
                                   dtype="float32") -> int:
    """Bytes a landmark ∞-AE holds at its peak, beyond the interaction matrices themselves.

    Stages: accumulation (landmark rows, the float64 accumulators ``m × m`` and ``m × items``, one block's Gram,
    kernel and ``X_bᵀ K_b``), solve (accumulators, the float64 factor and solution, ``n_lambdas`` β of
    ``m × items``) and scoring (the β, a block's kernel, its scores on device and host, the top-k mask copy).
    The peak is the largest stage.
    """
    s = np.dtype(dtype).itemsize
    m, d, b = int(n_landmarks), int(n_items), int(block_users)
    basis = m * d * s + 2 * m * m * 8  # rows, K_mm in float64 (+ its solve copy)
    accum = 8 * (m * m + m * d)
    block = 3 * b * m * s + d * m * s + 2 * b * m * 8  # gram, K (device + host), X_bᵀK_b, float64 temporaries
    betas = int(n_lambdas) * m * d * s
    solve = 8 * (2 * m * m + 2 * m * d)
    scores = 3 * b * d * s + b * m * s
    return max(basis + accum + block, basis + accum + solve + betas, basis + betas + scores)


def _largest_fitting(predicate, high: int) -> int:
    """Largest ``v`` in ``[1, high]`` with ``predicate(v)`` (monotone decreasing), 0 if none."""
    lo, hi = 0, int(high)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if predicate(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_landmark_memory(n_landmarks: int, n_items: int, block_users: int, n_lambdas: int = 1, dtype="float32",
                          *, limit_bytes: int | None = None) -> int:
    """Raise :class:`MemoryBudgetError` before a landmark ∞-AE that cannot fit; return the estimate in bytes.

    The message names the block size that would fit at this ``m`` and the ``m`` that would fit at this block size.
    """
    need = estimate_landmark_memory_bytes(n_landmarks, n_items, block_users, n_lambdas, dtype)
    have = available_memory_bytes() if limit_bytes is None else int(limit_bytes)
    if need <= have:
        return need
    budget = int(0.9 * have)
    fit = lambda mm, bb: estimate_landmark_memory_bytes(mm, n_items, bb, n_lambdas, dtype) <= budget  # noqa: E731
    best_block = _largest_fitting(lambda bb: fit(n_landmarks, bb), block_users)
    best_m = _largest_fitting(lambda mm: fit(mm, block_users), n_landmarks)
    gib = 1024**3
    options = []
    if best_block >= 1:
        options.append(f"block_users={best_block:,} with m={n_landmarks:,}")
    if best_m >= 1:
        options.append(f"m={best_m:,} landmarks with block_users={block_users:,}")
    if n_lambdas > 1:
        options.append("fewer λ values at once")
    hint = " or ".join(options) if options else "a machine with more memory"
    raise MemoryBudgetError(
        f"landmark ∞-AE with m={n_landmarks:,} landmarks, {n_items:,} items, blocks of {block_users:,} users and "
        f"{n_lambdas} λ needs about {need / gib:.2f} GiB but only {have / gib:.2f} GiB is available. "
        f"Use {hint}."
    )


# ----------------------------------------------------------------------------------------------------------
# the block engine (one device; infae_kit.scale shards it over devices and processes)
# ----------------------------------------------------------------------------------------------------------
class BlockEngine:
    """Runs the per-block device work of a landmark ∞-AE on JAX's default device.

    The host loop (:func:`accumulate_normal_equations`, the scoring passes) asks the engine for:

    * :meth:`local_users` — the users this process handles (all of them here);
    * :meth:`steps` — the blocks of each step (one block per device and step; here one);
    * :meth:`normal_terms` — the kernels of a step's blocks and the step's ``Σ K_bᵀ K_b``, ``Σ Θ(x, x)``;
    * :meth:`kernels` / :meth:`scores` — the kernels of a step's blocks, and their scores for one β;
    * :meth:`sum_across_processes` / :meth:`merge_evaluation` — reductions over processes (identity here).

    Subclasses override the device part and keep the host loop, so every engine computes the same sums.
    """

    n_processes = 1
    process_index = 0

    @property
    def blocks_per_step(self) -> int:
        return 1

    def local_users(self, n_users: int, block: int = 1) -> tuple[int, int]:
        """``(start, stop)`` of the users this process reads (a whole number of ``block``-user blocks)."""
        return 0, int(n_users)

    def steps(self, users: np.ndarray | tuple[int, int], block_users: int, n_users: int) -> Iterator[list]:
        """Yield, per step, a list of ``blocks_per_step`` user selections (slices or index arrays, maybe empty)."""
        if isinstance(users, tuple):
            start, stop = users
            for a in range(start, stop, block_users):
                yield [slice(a, min(a + block_users, stop))]
        else:
            for a in range(0, len(users), block_users):
                yield [users[a:a + block_users]]

    def padded_block(self, block_users: int, n_users: int) -> int:
        """Rows of every block array (one compiled shape, the same in every process): ``block_users``, or fewer
        when all ``n_users`` users (of every process) fit in one block — rounded up to a multiple of 8."""
        return int(min(block_users, max(8, -(-max(n_users, 1) // 8) * 8)))

    def _stack(self, grams, norms, rows: int, dtype):
        m = grams[0].shape[1] if grams else 0
        g = np.zeros((len(grams), rows, m), dtype=dtype)
        n = np.zeros((len(grams), rows), dtype=dtype)
        v = np.zeros((len(grams), rows), dtype=bool)
        for i, (gi, ni) in enumerate(zip(grams, norms)):
            g[i, : gi.shape[0]] = gi
            n[i, : ni.shape[0]] = ni
            v[i, : ni.shape[0]] = True
        return g, n, v

    def normal_terms(self, grams: list[np.ndarray], norms: list[np.ndarray], basis_norms: jax.Array,
                     spec: KernelSpec, rows: int):
        """``(kernels, Σ K_bᵀ K_b as float64 (m, m), Σ Θ(x,x))`` of one step's blocks (kernels as host arrays)."""
        g, n, v = self._stack(grams, norms, rows, basis_norms.dtype)
        k, ktk, tr = _block_normal_terms_jit(jnp.asarray(g[0]), jnp.asarray(n[0]), basis_norms, jnp.asarray(v[0]), spec)
        return [np.asarray(k)[: grams[0].shape[0]]], np.asarray(ktk, dtype=np.float64), float(tr)

    def kernels(self, grams, norms, basis_norms, spec: KernelSpec, rows: int):
        """Device handle of one step's block kernels (for :meth:`scores`)."""
        g, n, v = self._stack(grams, norms, rows, basis_norms.dtype)
        return block_kernel(jnp.asarray(g[0]), jnp.asarray(n[0]), basis_norms, jnp.asarray(v[0]), spec)

    def put(self, array: np.ndarray) -> jax.Array:
        """A host array (β, landmark norms) placed where :meth:`scores` needs it."""
        return jnp.asarray(array)

    def scores(self, kernels, beta: jax.Array, sizes: list[int]) -> list[np.ndarray]:
        """Host ``(b_i, items)`` scores of each block of a step for one β."""
        return [np.asarray(block_scores(kernels, beta))[: sizes[0]]]

    def sum_across_processes(self, array: np.ndarray) -> np.ndarray:
        """Sum of a float64 host array over processes (identity with one process)."""
        return array

    def merge_evaluation(self, acc: MetricAccumulator, ks: Sequence[int], n_users_total: int) -> EvaluationResult:
        """The evaluation of all users from this process's accumulator (its own result with one process)."""
        return acc.result()


# ----------------------------------------------------------------------------------------------------------
# normal equations and solve
# ----------------------------------------------------------------------------------------------------------
@dataclass
class NormalEquations:
    """Sums over the target users of a landmark ∞-AE (all float64).

    Attributes:
      ktk: ``(m, m)`` ``K_LU K_UL``.
      ktx: ``(m, items)`` ``K_LU X``.
      kernel_trace: ``Σ_u Θ(x_u, x_u)`` (``trace(K_UU)``, for λ's scale).
      n_users: number of target users ``U``.
      k_mm: ``(m, m)`` ``K_LL`` in float64.
    """

    ktk: np.ndarray
    ktx: np.ndarray
    kernel_trace: float
    n_users: int
    k_mm: np.ndarray = field(repr=False, default=None)

    @property
    def lambda_scale(self) -> float:
        """``trace(K_UU) / U``: λ' = λ · this (∞-AE's scaling)."""
        return self.kernel_trace / self.n_users


def _gram_rows(csr: sp.csr_matrix, basis: LandmarkBasis) -> tuple[np.ndarray, np.ndarray]:
    dt = basis.rows.dtype
    rows = csr if csr.dtype == dt else csr.astype(dt)
    return np.asarray(rows @ basis.rows.T, dtype=dt), squared_row_norms(rows, dt)


def accumulate_normal_equations(X, basis: LandmarkBasis, *, block_users: int = DEFAULT_BLOCK_USERS,
                                depth: int = 1, w_std: float = W_STD, b_std: float = B_STD,
                                engine: BlockEngine | None = None, progress: bool = False) -> NormalEquations:
    """Stream the users of ``X`` (this process's share) in blocks and sum the normal equations over all users.

    Args:
      X: ``(U, items)`` sparse train rows (anything whose ``X[a:b]`` is a csr block).
      basis: the landmarks.
      block_users: users per block (the only dense user rows at any time).
      depth, w_std, b_std: the NTK.
      engine: device engine (default: :class:`BlockEngine`, one device).
      progress: show a progress bar over steps.

    Returns:
      :class:`NormalEquations` summed over every user of every process.
    """
    from tqdm.auto import tqdm

    engine = engine or BlockEngine()
    n_users, n_items = int(X.shape[0]), int(X.shape[1])
    spec = KernelSpec(n_items, int(depth), float(w_std), float(b_std))
    rows = engine.padded_block(block_users, n_users)
    start, stop = engine.local_users(n_users, rows)
    m = basis.m
    ktk = np.zeros((m, m), dtype=np.float64)
    ktx_t = np.zeros((n_items, m), dtype=np.float64)
    trace = 0.0
    with enable_x64():
        basis_norms = engine.put(basis.sq_norms)
        n_steps = -(-max(stop - start, 0) // (rows * engine.blocks_per_step))
        for blocks in tqdm(engine.steps((start, stop), rows, n_users), total=n_steps, disable=not progress,
                           desc="landmark ∞-AE: normal equations", leave=False):
            csrs = [X[sel] for sel in blocks]
            grams, norms = zip(*(_gram_rows(c, basis) for c in csrs)) if csrs else ((), ())
            kernels, step_ktk, step_trace = engine.normal_terms(list(grams), list(norms), basis_norms, spec, rows)
            ktk += step_ktk
            trace += step_trace
            for csr, k in zip(csrs, kernels):
                if csr.shape[0]:
                    ktx_t += csr.T.astype(k.dtype) @ k
    ktx = engine.sum_across_processes(ktx_t).T.copy()
    k_mm = ntk_matrix(basis.rows, depth=depth, dtype="float64", w_std=w_std, b_std=b_std)
    return NormalEquations(ktk, ktx, float(trace), n_users, k_mm)


class LandmarkSolver:
    """``β = (K_LU K_UL + λ' K_LL)⁻¹ K_LU X`` for any number of λ, in float64, stable when ``K_LL`` is
    ill-conditioned (as NTK Grams are: their spectra decay fast).

    With ``K_LL = V S Vᵀ`` keep the ``r`` directions with ``s > 10⁻¹²·s_max`` (below that float64 eigenvalues are
    round-off), ``T = V_r S_r^{-1/2}``, and solve in the whitened basis ``β = T γ``::

        (Tᵀ K_LU K_UL T + λ' I) γ = Tᵀ K_LU X,        Tᵀ K_LU K_UL T = W D Wᵀ   →   γ = W (D + λ')⁻¹ Wᵀ Tᵀ K_LU X

    The ``r × r`` system has eigenvalues ``D + λ' ≥ λ'`` (well conditioned for λ > 0), both eigendecompositions are
    computed once, and each λ costs one ``m × r × items`` product. At λ = 0 the directions with
    ``D ≤ 10⁻¹²·D_max`` are left out (the minimum-norm least-squares solution; at m = U: interpolation).
    With nothing truncated this is the normal equations' exact solution (m = U: exactly ∞-AE's ``α``).
    """

    RELATIVE_CUTOFF = 1e-12

    def __init__(self, ne: NormalEquations):
        scale = ne.lambda_scale
        if not math.isfinite(scale) or scale <= 0:
            raise NumericalError(f"trace(K_UU)/U is {scale}: the kernel is broken (non-finite inputs?)")
        if not (np.all(np.isfinite(ne.ktk)) and np.all(np.isfinite(ne.ktx))):
            raise NumericalError("the normal equations hold non-finite values: the inputs or the kernel are broken.")
        self.ne = ne
        s, v = np.linalg.eigh(0.5 * (ne.k_mm + ne.k_mm.T))
        keep = s > self.RELATIVE_CUTOFF * s.max()
        t = v[:, keep] / np.sqrt(s[keep])
        b = t.T @ ne.ktk @ t
        d, w = np.linalg.eigh(0.5 * (b + b.T))
        self.d = np.maximum(d, 0.0)
        self.tw = t @ w  # (m, r)
        self.rhs = self.tw.T @ ne.ktx  # (r, items)
        self.rank = int(keep.sum())

    def solve(self, lam: float, *, dtype="float32", scale_lambda: bool = True) -> tuple[np.ndarray, float, int]:
        """``(β (m, items) in dtype, λ', directions used)`` for ridge ``lam`` (scaled by trace(K_UU)/U unless
        ``scale_lambda=False``)."""
        if not math.isfinite(lam) or lam < 0:
            raise ParameterError(f"λ must be a finite number ≥ 0, got {lam!r}")
        reg = float(lam) * (self.ne.lambda_scale if scale_lambda else 1.0)
        denom = self.d + reg
        use = denom > self.RELATIVE_CUTOFF * max(float(self.d.max()), 1e-300)
        inv = np.zeros_like(denom)
        inv[use] = 1.0 / denom[use]
        beta = (self.tw * inv) @ self.rhs
        if not np.all(np.isfinite(beta)):
            raise NumericalError(f"landmark ∞-AE: the solve at λ={lam} is not finite; use a larger λ.")
        return beta.astype(dtype), reg, int(use.sum())


def solve_landmark(ne: NormalEquations, lam: float, *, dtype="float32", scale_lambda: bool = True
                   ) -> tuple[np.ndarray, float, int]:
    """``β = (K_LU K_UL + λ' K_LL)⁻¹ K_LU X`` for one λ (see :class:`LandmarkSolver`).

    Args:
      ne: accumulated normal equations.
      lam: λ ≥ 0; ``λ' = λ · trace(K_UU)/U`` when ``scale_lambda`` (∞-AE's convention), else ``λ' = λ``.
      dtype: dtype of the returned β.

    Returns:
      ``(β (m, items), λ', directions of the landmark space used)``.
    """
    return LandmarkSolver(ne).solve(lam, dtype=dtype, scale_lambda=scale_lambda)


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

    def __init__(self, lam: float = 5.0, *, landmarks=1000, selection: str | None = None, support=None,
                 block_users: int = DEFAULT_BLOCK_USERS, depth: int = 1, dtype="float32", scale_lambda: bool = True,
                 seed: int = 42, w_std: float = W_STD, b_std: float = B_STD, memory_limit_bytes: int | None = None,
                 engine: BlockEngine | None = None):
        if not np.isfinite(lam) or lam < 0:
            raise ParameterError(f"lam must be a finite number >= 0, got {lam!r}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ParameterError(f"dtype must be float32 or float64, got {dtype!r}")
        if not is_int(depth) or depth < 1:
            raise ParameterError(f"depth must be an integer >= 1, got {depth!r}")
        self.selection = _resolve_selection(landmarks, selection, support)
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

    def fit(self, X) -> "LandmarkInfiniteAE":
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

    def save(self, path) -> Path:
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
    def load(cls, path) -> "LandmarkInfiniteAE":
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
                gram, norms = _gram_rows(csr, self.basis_)
                k = single.kernels([gram], [norms], norms_l, spec, rows)
                out[blocks[0]] = single.scores(k, beta, [csr.shape[0]])[0]
        if not np.all(np.isfinite(out)):
            raise NumericalError("landmark ∞-AE produced non-finite scores; refit with a larger λ or dtype='float64'")
        return out

    def predict(self, X_context) -> np.ndarray:
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
      n_users_evaluated: users the metrics average over (all, or the ``eval_users`` sample).
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
    memory_estimate_bytes: int = 0


def _eval_users(n_users: int, eval_users, eval_seed: int) -> np.ndarray | None:
    if eval_users is None or (is_int(eval_users) and int(eval_users) >= n_users):
        return None
    if not is_int(eval_users) or int(eval_users) < 1:
        raise ParameterError(f"eval_users must be a positive integer (a seeded sample of users) or None, got {eval_users!r}.")
    return np.sort(np.random.default_rng(eval_seed).choice(n_users, size=int(eval_users), replace=False))


def _score_pass(context, targets, excluded, users: np.ndarray, weights, negatives, betas: dict, basis, spec, engine,
                rows: int, ks, n_users: int, progress: bool, desc: str) -> dict:
    """One streamed pass over ``users`` scoring every β of ``betas``; returns ``{key: EvaluationResult}``.

    ``context(selection)`` gives the context rows of a block of users; ``targets`` and ``excluded`` are the
    ``(len(users), items)`` target and masked rows of ``users``; ``negatives`` the AUC negatives of all users.
    """
    from tqdm.auto import tqdm

    sel_all = users
    local_negatives = None if negatives is None else negatives[sel_all]
    accs = {key: MetricAccumulator(targets, excluded, weights, local_negatives, ks) for key in betas}
    n_local = len(sel_all)
    position = 0
    with enable_x64():
        norms_l = engine.put(basis.sq_norms)
        on_device = {key: engine.put(beta) for key, beta in betas.items()}
        n_steps = -(-n_local // (rows * engine.blocks_per_step))
        for blocks in tqdm(engine.steps(sel_all, rows, n_users), total=n_steps, disable=not progress, desc=desc,
                           leave=False):
            csrs = [context(sel) for sel in blocks]
            grams, norms = zip(*(_gram_rows(c, basis) for c in csrs))
            kernels = engine.kernels(list(grams), list(norms), norms_l, spec, rows)
            sizes = [c.shape[0] for c in csrs]
            for key, beta in on_device.items():
                at = position
                for scores in engine.scores(kernels, beta, sizes):
                    if scores.shape[0]:
                        accs[key].add(slice(at, at + scores.shape[0]), scores)
                    at += scores.shape[0]
            position += sum(sizes)
    return {key: engine.merge_evaluation(acc, ks, n_users) for key, acc in accs.items()}


def tune_and_evaluate_landmark(
    data,
    landmarks=1000,
    selection: str | None = None,
    lambdas: Sequence[float] = PAPER_LAMBDA_GRID,
    block_users: int = DEFAULT_BLOCK_USERS,
    *,
    support=None,
    depth: int = 1,
    dtype="float32",
    select_by: str = "HR@100",
    seed: int = 42,
    ks: Sequence[int] = DEFAULT_KS,
    n_negatives: int = 50,
    negatives_seed: int = 42,
    eval_users: int | None = None,
    eval_seed: int = 0,
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
        _check_count(landmarks, n_users) if is_int(landmarks) else len(np.asarray(landmarks)))
    need = check_landmark_memory(m, n_items, block_users, len(lambdas), dtype, limit_bytes=memory_limit_bytes)

    t = time.perf_counter()
    model = LandmarkInfiniteAE(lambdas[0], landmarks=landmarks, selection=selection, support=support,
                               block_users=block_users, depth=depth, dtype=dtype, seed=seed,
                               memory_limit_bytes=memory_limit_bytes, engine=engine)
    spec = KernelSpec(n_items, int(depth), W_STD, B_STD)
    model.basis_ = _basis(train, landmarks, model.selection, support, seed, dtype, spec)
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
    weights = M.propensity_weights(train) if weights is None else np.asarray(weights)
    if negatives is None and n_negatives:
        negatives = data.auc_negatives(n_negatives, negatives_seed)
    sample = _eval_users(n_users, eval_users, eval_seed)
    start, stop = engine.local_users(n_users, engine.padded_block(block_users, n_users))
    local = np.arange(start, stop) if sample is None else sample[(sample >= start) & (sample < stop)]
    timings["eval_setup"] = time.perf_counter() - t

    rows = engine.padded_block(block_users, n_users if sample is None else len(sample))
    t = time.perf_counter()
    val = _score_pass(lambda sel: train[sel], data.val[local], train[local], local, weights, negatives, betas,
                      model.basis_, spec, engine, rows, ks, n_users, progress, "landmark ∞-AE: validation, every λ")
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
    n_eval = n_users if sample is None else len(sample)
    return LandmarkReport(best, chosen.val_metrics, test.metrics, test, model, timings, select_by,
                          effective_lambdas=effective, ranks=ranks, n_landmarks=m, selection=model.basis_.selection,
                          landmark_users=model.basis_.user_index, n_users_trained=n_users, n_users_evaluated=n_eval,
                          memory_estimate_bytes=need)
