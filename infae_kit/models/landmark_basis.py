"""Landmark ∞-AE's kernel pieces and its landmarks: which rows span the kernel basis.

**Kernel pieces.** :class:`KernelSpec` and the jit-compiled per-block functions (:func:`block_kernel`,
:func:`block_normal_terms`, :func:`block_scores`) that every :class:`~infae_kit.models.landmark_solver.BlockEngine`
runs, on one device or sharded (:mod:`infae_kit.scale`).

**Landmarks** (:data:`SELECTIONS`): ``"uniform"`` (seeded sample of users), ``"kmeans++"`` (k-means++ seeding with
the distance of the NTK feature space, ``d²(x, c) = Θ(x,x) + Θ(c,c) − 2Θ(x,c)``, on a seeded candidate pool),
``"leverage"`` (approximate ridge-leverage scores from a uniform Nyström pilot, sampled without replacement),
``"distilled"`` (the rows of a given support matrix, e.g. a DISTILL-CF summary), or an explicit array of user
indices (``"given"``). :data:`RECOMMENDED_SELECTION` is the rule measured best on ML-1M (README, "Scale").
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import scipy.linalg as sla
import scipy.sparse as sp

from infae_kit.checks import MatrixLike, check_interactions, is_int
from infae_kit.errors import (
    DataError,
    ParameterError,
)
from infae_kit.jax_compat import enable_x64
from infae_kit.models.ntk import (
    B_STD,
    W_STD,
    ntk_from_gram,
    squared_row_norms,
)

__all__ = [
    "SELECTIONS",
    "RECOMMENDED_SELECTION",
    "LandmarkBasis",
    "KernelSpec",
    "block_kernel",
    "block_normal_terms",
    "block_scores",
    "ntk_self",
    "check_landmark_users",
    "select_landmark_users",
    "landmark_basis",
    "read_landmark_file",
]

log = logging.getLogger(__name__)

SELECTIONS = ("uniform", "kmeans++", "leverage", "distilled", "given")
"""Landmark selection rules (see the module docstring)."""
RECOMMENDED_SELECTION = "uniform"
"""The rule measured best on ML-1M at m = 500 and 1,000 (uniform beat k-means++ and leverage on every metric;
README, "Scale"); the default for an integer number of landmarks."""
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
        """The spec as keyword arguments of :func:`~infae_kit.models.ntk.ntk_from_gram`."""
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


def block_normal_terms(gram: jax.Array, sq_norms_b: jax.Array, sq_norms_l: jax.Array, valid: jax.Array,
                       spec: KernelSpec) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One block's share of the normal equations: ``(K_b (b, m), K_bᵀ K_b (m, m), Σ_b Θ(x, x))``.

    ``K_bᵀ K_b`` is computed at full float32 precision (no TF32/bf16 passes on GPUs). Traceable: the sharded
    engine calls it inside ``shard_map``.

    Args:
      gram: ``(b, m)`` Gram ``X_b Lᵀ`` of the block's rows with the landmark rows.
      sq_norms_b: ``(b,)`` squared norms of the block's rows.
      sq_norms_l: ``(m,)`` squared norms of the landmark rows.
      valid: ``(b,)`` bool, False on padding rows (their kernel rows and self-similarities are 0).
      spec: the NTK.

    Returns:
      ``(K_b (b, m), K_bᵀ K_b (m, m), Σ_b Θ(x, x))`` (a scalar) in the block's dtype.
    """
    k = block_kernel(gram, sq_norms_b, sq_norms_l, valid, spec)
    ktk = jnp.matmul(k.T, k, precision=jax.lax.Precision.HIGHEST)
    diag = jnp.where(valid, ntk_self(sq_norms_b, spec), jnp.zeros((), k.dtype))
    return k, ktk, jnp.sum(diag)


block_normal_terms_jit = jax.jit(block_normal_terms, static_argnames=("spec",))


@functools.partial(jax.jit, static_argnames=("spec",))
def _self_trace(sq_norms: jax.Array, spec: KernelSpec) -> jax.Array:
    return jnp.sum(ntk_self(sq_norms, spec))


def host_normal_terms(kernels: list[np.ndarray], norms: list[np.ndarray], spec: KernelSpec
                      ) -> tuple[np.ndarray, float]:
    """``(Σ_i K_iᵀ K_i (m, m) float64, Σ_i Σ Θ(x, x))`` over blocks whose ``(b_i, m)`` kernels are on the host.

    Each ``K_iᵀ K_i`` is a float32 OpenBLAS product (on CPUs about 2× faster than XLA's dot), added into float64
    in block order, so every engine that hands over the same blocks gets the same sums.
    """
    m = kernels[0].shape[1] if kernels else 0
    ktk = np.zeros((m, m), dtype=np.float64)
    trace = 0.0
    for k, n in zip(kernels, norms):
        if k.shape[0]:
            ktk += np.matmul(k.T, k)
            trace += float(_self_trace(jnp.asarray(n), spec))
    return ktk, trace


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

    @functools.cached_property
    def sparse_rows_t(self) -> sp.csr_matrix:
        """``(items, m)`` the landmark rows transposed, sparse (for sparse × sparse Grams with user blocks)."""
        return sp.csr_matrix(sp.csr_matrix(self.rows).T)

    @functools.cached_property
    def column_counts(self) -> np.ndarray:
        """``(items,)`` number of landmark rows that hold each item (the sparse product's cost model)."""
        return np.count_nonzero(self.rows, axis=0).astype(np.float64)


def check_landmark_count(m, n_users: int) -> int:
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


def check_landmark_users(indices: npt.ArrayLike, n_users: int) -> np.ndarray:
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


def read_landmark_file(path: Path | str, user_ids: np.ndarray) -> np.ndarray:
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


def select_landmark_users(X: MatrixLike, m: int, selection: str = RECOMMENDED_SELECTION, *, seed: int = 42,
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
    m = check_landmark_count(m, n)
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


def resolve_selection(landmarks, selection: str | None, support) -> str:
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


def landmark_basis(X: MatrixLike, landmarks: int | npt.ArrayLike = 1000, selection: str | None = None, *,
                   support: MatrixLike | None = None, seed: int = 42, depth: int = 1,
                   dtype: npt.DTypeLike = "float32", w_std: float = W_STD, b_std: float = B_STD) -> LandmarkBasis:
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
    return build_landmark_basis(check_interactions(X, "X"), landmarks, selection, support, seed, dtype,
                  KernelSpec(int(X.shape[1]), int(depth), float(w_std), float(b_std)))


def build_landmark_basis(X, landmarks, selection, support, seed: int, dtype, spec: KernelSpec) -> LandmarkBasis:
    """:func:`landmark_basis` on rows already checked: reads only the landmark (and candidate) rows of ``X``."""
    dt = np.dtype(dtype)
    rule = resolve_selection(landmarks, selection, support)
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
