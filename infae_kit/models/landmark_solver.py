"""Landmark ∞-AE's normal equations, streamed over user blocks, and their float64 solve.

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

**Devices.** The block computations go through a :class:`BlockEngine`; the default runs on JAX's default
device. :mod:`infae_kit.scale` provides one that shards the blocks over every local device and over processes
(``jax.sharding`` + ``shard_map`` with a ``psum`` of the normal equations), with the same results.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from infae_kit.errors import (
    MemoryBudgetError,
    NumericalError,
    ParameterError,
)
from infae_kit.evaluation.protocol import (
    EvaluationResult,
    MetricAccumulator,
)
from infae_kit.io_utils import available_memory_bytes, progress_bar
from infae_kit.jax_compat import enable_x64
from infae_kit.models.landmark_basis import (
    KernelSpec,
    LandmarkBasis,
    block_normal_terms_jit,
    block_kernel,
    host_normal_terms,
    block_scores,
)
from infae_kit.models.ntk import (
    B_STD,
    W_STD,
    gram_matrix,
    ntk_matrix,
    sparse_gram_into,
    sparse_product_is_cheaper,
    sparse_transpose_product,
    squared_row_norms,
)

__all__ = [
    "DEFAULT_BLOCK_USERS",
    "NormalEquations",
    "BlockEngine",
    "accumulate_normal_equations",
    "LandmarkSolver",
    "solve_landmark",
    "estimate_landmark_memory_bytes",
    "check_landmark_memory",
]

log = logging.getLogger(__name__)

DEFAULT_BLOCK_USERS = 8192
"""Users per block of the streamed accumulation and scoring."""


# ----------------------------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------------------------
def estimate_landmark_memory_bytes(n_landmarks: int, n_items: int, block_users: int, n_lambdas: int = 1,
                                   dtype: npt.DTypeLike = "float32") -> int:
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


def check_landmark_memory(n_landmarks: int, n_items: int, block_users: int, n_lambdas: int = 1,
                          dtype: npt.DTypeLike = "float32", *, limit_bytes: int | None = None) -> int:
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

    @functools.cached_property
    def host_products(self) -> bool:
        """Whether ``K_bᵀ K_b`` is computed on the host (CPU devices: OpenBLAS beats XLA's dot there). Then
        :meth:`normal_terms` returns this process's sums, added over processes once at the end."""
        return jax.default_backend() == "cpu"

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
                     spec: KernelSpec, rows: int) -> tuple[list[np.ndarray], np.ndarray, float]:
        """``(kernels, Σ K_bᵀ K_b as float64 (m, m), Σ Θ(x,x))`` of one step's blocks (kernels as host arrays).

        Args:
          grams: per block, its ``(b_i, m)`` Gram with the landmark rows.
          norms: per block, its ``(b_i,)`` squared row norms.
          basis_norms: ``(m,)`` squared norms of the landmark rows, on the device (:meth:`put`).
          spec: the NTK.
          rows: rows of every padded block array (:meth:`padded_block`).

        Returns:
          ``(kernels, ktk, trace)``: the ``(b_i, m)`` kernel of each block on the host, the step's
          ``Σ K_bᵀ K_b`` ``(m, m)`` float64 and its ``Σ Θ(x, x)`` (over this process's blocks when
          :attr:`host_products`, else over every process's).
        """
        if self.host_products:
            kernels = [np.asarray(self.kernels(grams, norms, basis_norms, spec, rows))[: grams[0].shape[0]]]
            return (kernels, *host_normal_terms(kernels, norms, spec))
        g, n, v = self._stack(grams, norms, rows, basis_norms.dtype)
        k, ktk, tr = block_normal_terms_jit(jnp.asarray(g[0]), jnp.asarray(n[0]), basis_norms, jnp.asarray(v[0]), spec)
        return [np.asarray(k)[: grams[0].shape[0]]], np.asarray(ktk, dtype=np.float64), float(tr)

    def kernels(self, grams: list[np.ndarray], norms: list[np.ndarray], basis_norms: jax.Array, spec: KernelSpec,
                rows: int) -> jax.Array:
        """Device handle of one step's block kernels (for :meth:`scores`): ``(rows, m)`` (arguments as in
        :meth:`normal_terms`; padding rows are 0)."""
        g, n, v = self._stack(grams, norms, rows, basis_norms.dtype)
        return block_kernel(jnp.asarray(g[0]), jnp.asarray(n[0]), basis_norms, jnp.asarray(v[0]), spec)

    def put(self, array: np.ndarray) -> jax.Array:
        """A host array (β, landmark norms) placed where :meth:`scores` needs it."""
        return jnp.asarray(array)

    def scores(self, kernels: jax.Array, beta: jax.Array, sizes: list[int]) -> list[np.ndarray]:
        """Host ``(b_i, items)`` scores of each block of a step for one ``(m, items)`` β, from :meth:`kernels`;
        ``sizes`` are the blocks' real rows ``b_i``."""
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


def gram_rows(csr: sp.csr_matrix, basis: LandmarkBasis) -> tuple[np.ndarray, np.ndarray]:
    """``(X_b Lᵀ (b, m), ‖x‖² (b,))`` of a block of sparse rows with the landmark rows, in the basis' dtype.

    The Gram is a sparse × sparse product (in threads over row chunks) when the cost model expects it to beat the
    sparse × dense one (:func:`~infae_kit.models.ntk.sparse_product_is_cheaper`: long-tailed catalogues such as
    netflix-shape, about 3× faster there), else the sparse rows times the dense landmark rows.
    """
    dt = basis.rows.dtype
    rows = csr if csr.dtype == dt else csr.astype(dt)
    if rows.shape[0] and sparse_product_is_cheaper(rows, basis.sparse_rows_t.T, y_column_counts=basis.column_counts):
        gram = sparse_gram_into(rows, basis.sparse_rows_t, np.empty((rows.shape[0], basis.m), dtype=dt))
    else:
        gram = np.asarray(rows @ basis.rows.T, dtype=dt)
    return gram, squared_row_norms(rows, dt)


def accumulate_normal_equations(X: sp.csr_matrix, basis: LandmarkBasis, *,
                                block_users: int = DEFAULT_BLOCK_USERS, depth: int = 1, w_std: float = W_STD,
                                b_std: float = B_STD, engine: BlockEngine | None = None,
                                progress: bool = False) -> NormalEquations:
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
        bar = progress_bar(engine.steps((start, stop), rows, n_users), total=n_steps, enabled=progress,
                           desc="landmark ∞-AE: normal equations")
        for blocks in bar:
            csrs = [X[sel] for sel in blocks]
            grams, norms = zip(*(gram_rows(c, basis) for c in csrs)) if csrs else ((), ())
            kernels, step_ktk, step_trace = engine.normal_terms(list(grams), list(norms), basis_norms, spec, rows)
            ktk += step_ktk
            trace += step_trace
            for csr, k in zip(csrs, kernels):
                if csr.shape[0]:
                    sparse_transpose_product(csr, k, add_into=ktx_t)
        bar.finish()
    if engine.host_products:  # the step sums were this process's own
        ktk = engine.sum_across_processes(ktk)
        trace = float(engine.sum_across_processes(np.array([trace]))[0])
    ktx = engine.sum_across_processes(ktx_t).T.copy()
    return NormalEquations(ktk, ktx, float(trace), n_users, landmark_kernel(basis, depth, w_std, b_std))


def landmark_kernel(basis: LandmarkBasis, depth: int = 1, w_std: float = W_STD, b_std: float = B_STD) -> np.ndarray:
    """``K_LL`` ``(m, m)`` float64, its Gram a sparse × sparse product when the cost model expects that cheaper."""
    rows = sp.csr_matrix(basis.sparse_rows_t.T, dtype=np.float64)
    sparse = sparse_product_is_cheaper(rows, rows, y_column_counts=basis.column_counts)
    gram = gram_matrix(rows, dtype=np.float64, sparse_product=True) if sparse else None
    return ntk_matrix(basis.rows, depth=depth, dtype="float64", w_std=w_std, b_std=b_std, gram=gram)


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

    def solve(self, lam: float, *, dtype: npt.DTypeLike = "float32", scale_lambda: bool = True
              ) -> tuple[np.ndarray, float, int]:
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


def solve_landmark(ne: NormalEquations, lam: float, *, dtype: npt.DTypeLike = "float32", scale_lambda: bool = True
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
