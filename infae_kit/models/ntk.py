"""Closed-form Neural Tangent Kernel of an infinitely wide fully-connected ReLU network, in plain JAX.

The network is the one ∞-AE uses (the paper's code builds it with neural-tangents ``stax``)::

    [Dense(W_std=√2, b_std=0.1) → ReLU] × depth → Dense(W_std=√2, b_std=0.1)      (NTK parameterisation)

For two inputs ``x, y ∈ R^d`` the kernel depends on them only through ``xᵀy``, ``‖x‖²`` and ``‖y‖²``, so it is
computed from the Gram matrix of the (sparse) user rows. With ``σ_w² = W_std²`` and ``σ_b² = b_std²``:

* input:  ``Σ⁰ = xᵀy / d``, ``q⁰_x = ‖x‖² / d``, ``Θ⁰ = 0``
* Dense:  ``Σ ← σ_w² Σ + σ_b²``, ``q ← σ_w² q + σ_b²``, ``Θ ← Σ + σ_w² Θ``
* ReLU:   with ``ρ = Σ / √(q_x q_y)`` (the cosine of the angle θ between the pre-activations),
  ``Σ ← √(q_x q_y)/(2π) · (√(1−ρ²) + (π − arccos ρ) ρ)`` (arc-cosine kernel of order 1),
  ``Θ ← Θ · (π − arccos ρ)/(2π)`` (dual of the derivative, arc-cosine kernel of order 0), ``q ← q/2``.

The final Dense gives the NTK ``Θ``; ``Σ`` is the NNGP kernel. Both arc-cosine functions get custom
derivatives that stay finite at ``ρ = ±1`` (the diagonal), so the kernel can be differentiated with respect to
the inputs (DISTILL-CF does exactly that).

The result equals neural-tangents' ``kernel_fn(x, y, 'ntk')`` (see ``tests/test_ntk.py``), without importing it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from infae_kit.checks import MatrixLike
from infae_kit.errors import ParameterError
from infae_kit.jax_compat import enable_x64

__all__ = [
    "W_STD",
    "B_STD",
    "ntk_from_gram",
    "gram_matrix",
    "column_counts",
    "sparse_product_is_cheaper",
    "sparse_gram_into",
    "sparse_transpose_product",
    "squared_row_norms",
    "ntk_matrix",
    "ntk_matrix_jax",
]

W_STD = math.sqrt(2.0)
"""Weight standard deviation of every Dense layer (the paper's code)."""
B_STD = 0.1
"""Bias standard deviation of every Dense layer (the paper's code)."""

_PI = math.pi


@jax.custom_jvp
def _arccos_kernel_order1(rho: jax.Array) -> jax.Array:
    """``J₁(ρ) = √(1−ρ²) + (π − arccos ρ)·ρ``; ``dJ₁/dρ = π − arccos ρ`` (finite on [−1, 1])."""
    rho = jnp.clip(rho, -1.0, 1.0)
    return jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0)) + (_PI - jnp.arccos(rho)) * rho


@_arccos_kernel_order1.defjvp
def _arccos_kernel_order1_jvp(primals, tangents):
    (rho,), (drho,) = primals, tangents
    out = _arccos_kernel_order1(rho)
    return out, (_PI - jnp.arccos(jnp.clip(rho, -1.0, 1.0))) * drho


@jax.custom_jvp
def _arccos_kernel_order0(rho: jax.Array) -> jax.Array:
    """``J₀(ρ) = π − arccos ρ``; its derivative ``1/√(1−ρ²)`` is set to 0 where ``|ρ| = 1``.

    ``|ρ| = 1`` happens on the diagonal (x = y), where ρ is identically 1 whatever x is, so its tangent is 0 and
    the product ``∞ · 0`` is resolved to 0 instead of NaN.
    """
    return _PI - jnp.arccos(jnp.clip(rho, -1.0, 1.0))


@_arccos_kernel_order0.defjvp
def _arccos_kernel_order0_jvp(primals, tangents):
    (rho,), (drho,) = primals, tangents
    out = _arccos_kernel_order0(rho)
    one_minus = 1.0 - rho * rho
    safe = jnp.where(one_minus > 0, one_minus, 1.0)
    deriv = jnp.where(one_minus > 0, 1.0 / jnp.sqrt(safe), 0.0)
    return out, deriv * drho


def _check_depth(depth: int) -> None:
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise ParameterError(f"depth must be an integer >= 1 (number of Dense→ReLU blocks), got {depth!r}")


def ntk_from_gram(
    gram: jax.Array,
    sq_norms_x: jax.Array,
    sq_norms_y: jax.Array,
    n_features: int,
    depth: int = 1,
    w_std: float = W_STD,
    b_std: float = B_STD,
    return_nngp: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """NTK of ``[Dense → ReLU] × depth → Dense`` from inner products.

    Args:
      gram: ``(n, m)`` inner products ``x_iᵀ y_j``.
      sq_norms_x: ``(n,)`` squared norms ``‖x_i‖²``.
      sq_norms_y: ``(m,)`` squared norms ``‖y_j‖²``.
      n_features: input dimension ``d`` (number of items); neural-tangents divides inner products by it.
      depth: number of hidden Dense→ReLU blocks (>= 1; the paper's ∞-AE uses 1).
      w_std, b_std: weight and bias standard deviations of every Dense layer.
      return_nngp: also return the NNGP kernel.

    Returns:
      ``(n, m)`` NTK in the dtype of ``gram`` (and the ``(n, m)`` NNGP kernel if ``return_nngp``).

    This function is pure JAX: it can be jitted and differentiated (the arc-cosine functions have custom
    derivatives that stay finite on the diagonal).
    """
    _check_depth(depth)
    if n_features <= 0:
        raise ParameterError(f"n_features must be positive, got {n_features}")
    gram = jnp.asarray(gram)
    dtype = gram.dtype if jnp.issubdtype(gram.dtype, jnp.floating) else jnp.float32
    gram = gram.astype(dtype)
    w2 = jnp.asarray(w_std**2, dtype)
    b2 = jnp.asarray(b_std**2, dtype)
    nngp = gram / n_features
    qx = jnp.asarray(sq_norms_x, dtype)[:, None] / n_features
    qy = jnp.asarray(sq_norms_y, dtype)[None, :] / n_features
    ntk = jnp.zeros_like(nngp)
    for _ in range(depth):
        # Dense
        nngp = w2 * nngp + b2
        qx = w2 * qx + b2
        qy = w2 * qy + b2
        ntk = nngp + w2 * ntk
        # ReLU
        scale = jnp.sqrt(qx * qy)
        rho = nngp / scale
        nngp = scale / (2 * _PI) * _arccos_kernel_order1(rho)
        ntk = ntk * _arccos_kernel_order0(rho) / (2 * _PI)
        qx = qx / 2
        qy = qy / 2
    # Output Dense
    nngp = w2 * nngp + b2
    ntk = nngp + w2 * ntk
    return (ntk, nngp) if return_nngp else ntk


def _as_float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ParameterError(f"dtype must be float32 or float64, got {dt}")
    return dt


# Throughputs per core of this machine class (x86 with AVX2, OpenBLAS / scipy sparsetools), measured on ML-1M and
# netflix-shape rows with both products on every core (BLAS threads; sparse row chunks in threads). Only their
# ratio matters: it chooses between a BLAS product of densified rows and a sparse × sparse product.
_DENSE_FLOPS_PER_S = 6.4e10
_SPARSE_MULTIPLY_ADDS_PER_S = 2.85e8
_SPARSE_OUTPUT_ENTRIES_PER_S = 3.8e7
_SPARSE_BLOCK_ENTRIES = 1 << 25  # at most 32M entries (about 400 MB) of sparse product per row block of x


def column_counts(x: sp.spmatrix) -> np.ndarray:
    """``(d,)`` float64 number of stored entries in each column of the ``(n, d)`` sparse rows ``x``."""
    return np.bincount(sp.csr_matrix(x).indices, minlength=x.shape[1]).astype(np.float64)


def sparse_product_is_cheaper(x: sp.spmatrix, y: sp.spmatrix, *, y_column_counts: np.ndarray | None = None) -> bool:
    """Whether the sparse product ``x yᵀ`` is expected to beat a BLAS product of the densified rows.

    The sparse product costs one multiply-add per pair of nonzeros sharing a column (``Σ_k c_x[k] c_y[k]`` with
    ``c`` the column counts) plus the handling of each output entry; the dense one costs ``2 n m d`` flops at
    BLAS speed (``n m d`` when ``x`` is ``y``: a symmetric rank-k update). Both run on every core. Sparse wins on
    long-tailed catalogues with short rows (netflix-shape: about 4× faster), dense on small dense-ish ones
    (ML-1M: 1.06 s against 1.37 s for its 6,040 × 6,040 Gram on 2 cores).

    Args:
      x: ``(n, d)`` sparse rows.
      y: ``(m, d)`` sparse rows.
      y_column_counts: ``(d,)`` nonzeros per column of ``y``, when the caller keeps them.
    """
    n, d = x.shape
    m = y.shape[0]
    cy = column_counts(y) if y_column_counts is None else y_column_counts
    cx = cy if x is y else column_counts(x)
    multiply_adds = float(cx @ cy)
    sparse_s = multiply_adds / _SPARSE_MULTIPLY_ADDS_PER_S + n * m / _SPARSE_OUTPUT_ENTRIES_PER_S
    dense_s = (1.0 if x is y else 2.0) * n * m * d / _DENSE_FLOPS_PER_S
    return sparse_s < dense_s


def host_threads() -> int:
    """CPU cores this process may run on (scipy's sparse products release the GIL, so row chunks run in threads)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _in_row_chunks(n_rows: int, chunk_rows: int, work: Callable[[int, int], None]) -> None:
    """Run ``work(start, stop)`` over consecutive row chunks of at most ``chunk_rows`` rows, on the host's cores."""
    spans = [(a, min(a + chunk_rows, n_rows)) for a in range(0, n_rows, max(1, chunk_rows))]
    threads = min(host_threads(), len(spans))
    if threads <= 1:
        for a, b in spans:
            work(a, b)
        return
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, a, b) for a, b in spans]:
            future.result()


def sparse_gram_into(x: sp.csr_matrix, y_t: sp.csr_matrix, out: np.ndarray) -> np.ndarray:
    """``out[:] = x @ y_t`` for sparse ``x (n, d)`` and ``y_t (d, m)`` (a transposed row set), as a sparse product.

    Row chunks of ``x`` run in threads on every host core; each chunk's sparse product holds at most about
    400 MB / cores entries before it is written into ``out`` ``(n, m)``.
    """
    m = max(1, y_t.shape[1])
    rows = max(1, min(-(-x.shape[0] // host_threads()), _SPARSE_BLOCK_ENTRIES // (m * host_threads())))

    def work(a: int, b: int) -> None:
        (x[a:b] @ y_t).toarray(out=out[a:b])

    _in_row_chunks(x.shape[0], rows, work)
    return out


def sparse_transpose_product(x: sp.csr_matrix, k: np.ndarray, *, add_into: np.ndarray | None = None) -> np.ndarray:
    """``xᵀ k`` ``(d, m)`` for sparse rows ``x (n, d)`` and dense ``k (n, m)``, in threads over chunks of ``x``'s
    columns (the product's rows), in ``k``'s dtype; or, with ``add_into`` (``(d, m)``, e.g. a float64
    accumulator), added into it chunk by chunk in the same threads and returned."""
    xt = x.T.tocsr().astype(k.dtype, copy=False)
    out = np.empty((xt.shape[0], k.shape[1]), dtype=k.dtype) if add_into is None else add_into
    if out.shape != (xt.shape[0], k.shape[1]):
        raise ParameterError(f"add_into has shape {out.shape}, expected {(xt.shape[0], k.shape[1])}")

    def work(a: int, b: int) -> None:
        if add_into is None:
            out[a:b] = xt[a:b] @ k
        else:
            out[a:b] += xt[a:b] @ k

    _in_row_chunks(xt.shape[0], -(-xt.shape[0] // host_threads()), work)
    return out


def gram_matrix(x: MatrixLike, y: MatrixLike | None = None, *, block_rows: int = 4096,
                dtype: npt.DTypeLike = np.float32, sparse_product: bool = False) -> np.ndarray:
    """Dense Gram matrix ``x yᵀ`` of two row sets, never densifying a whole sparse input.

    Args:
      x: ``(n, d)`` scipy sparse matrix or dense array.
      y: ``(m, d)`` rows (defaults to ``x``).
      block_rows: rows of ``y`` densified at a time when ``x`` is sparse (bounds the extra memory to
        ``block_rows × d``).
      dtype: output dtype.
      sparse_product: when both inputs are sparse, multiply them as sparse matrices (blocks of ``x``'s rows
        small enough that each sparse block product stays under about 400 MB, in threads on every core) instead of
        densifying ``y``; see :func:`sparse_product_is_cheaper` for when that pays.

    Returns:
      ``(n, m)`` dense array. For binary inputs the entries are co-occurrence counts, exact in float32 up to 2²⁴.
    """
    y = x if y is None else y
    if x.shape[1] != y.shape[1]:
        raise ParameterError(f"x has {x.shape[1]} columns but y has {y.shape[1]}: both must be rows over the same items")
    if not sp.issparse(x) and not sp.issparse(y):
        xa = np.asarray(x, dtype=dtype)
        ya = xa if y is x else np.asarray(y, dtype=dtype)
        return xa @ ya.T
    xs = sp.csr_matrix(x, dtype=dtype) if sp.issparse(x) else None
    out = np.empty((x.shape[0], y.shape[0]), dtype=dtype)
    if sparse_product and xs is not None and sp.issparse(y):
        return sparse_gram_into(xs, sp.csr_matrix(sp.csr_matrix(y, dtype=dtype).T), out)
    if xs is None:  # dense x, sparse y: (y xᵀ)ᵀ
        ys = sp.csr_matrix(y, dtype=dtype)
        return np.ascontiguousarray((ys @ np.asarray(x, dtype=dtype).T).T)
    ycsr = sp.csr_matrix(y, dtype=dtype) if sp.issparse(y) else None
    for start in range(0, y.shape[0], block_rows):
        stop = min(start + block_rows, y.shape[0])
        block = ycsr[start:stop].toarray() if ycsr is not None else np.asarray(y[start:stop], dtype=dtype)
        out[:, start:stop] = xs @ block.T
    return out


def squared_row_norms(x: MatrixLike, dtype: npt.DTypeLike = np.float32) -> np.ndarray:
    """``(n,)`` squared Euclidean norms of the rows of an ``(n, d)`` sparse or dense matrix."""
    if sp.issparse(x):
        xc = sp.csr_matrix(x)
        return np.asarray(xc.multiply(xc).sum(axis=1), dtype=dtype).ravel()
    xa = np.asarray(x, dtype=dtype)
    return np.einsum("ij,ij->i", xa, xa)


_ntk_from_gram_jit = jax.jit(ntk_from_gram, static_argnames=("n_features", "depth", "w_std", "b_std", "return_nngp"))


def ntk_matrix(
    x: MatrixLike,
    y: MatrixLike | None = None,
    *,
    depth: int = 1,
    dtype: Literal["float32", "float64"] | np.dtype = "float32",
    w_std: float = W_STD,
    b_std: float = B_STD,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """NTK matrix ``K[i, j] = Θ(x_i, y_j)`` between two sets of bag-of-items rows.

    Args:
      x: ``(n, d)`` rows (scipy sparse or dense).
      y: ``(m, d)`` rows; defaults to ``x``.
      depth: hidden Dense→ReLU blocks (>= 1).
      dtype: ``float32`` (default, like the paper's code) or ``float64`` (computed in JAX's 64-bit mode,
        enabled for this call only).
      w_std, b_std: layer standard deviations.
      gram: precomputed ``x yᵀ`` (skips the product).

    Returns:
      ``(n, m)`` numpy array of the requested dtype.

    Examples:
      >>> import scipy.sparse as sp
      >>> x = sp.random(5, 20, density=0.3, format="csr", random_state=0)
      >>> ntk_matrix(x).shape
      (5, 5)
    """
    _check_depth(depth)
    dt = _as_float_dtype(dtype)
    y_is_x = y is None
    y = x if y_is_x else y
    if gram is None:
        gram = gram_matrix(x, y, dtype=dt)
    if gram.shape != (x.shape[0], y.shape[0]):
        raise ParameterError(f"gram has shape {gram.shape}, expected {(x.shape[0], y.shape[0])}")
    nx = squared_row_norms(x, dt)
    ny = nx if y_is_x else squared_row_norms(y, dt)
    # float64 runs in JAX's 64-bit mode for this call only (the global setting is left alone).
    with enable_x64(dt == np.float64 or jax.config.x64_enabled):
        k = _ntk_from_gram_jit(jnp.asarray(gram, dt), jnp.asarray(nx, dt), jnp.asarray(ny, dt),
                               n_features=int(x.shape[1]), depth=int(depth), w_std=float(w_std), b_std=float(b_std))
        return np.asarray(k, dtype=dt)


def ntk_matrix_jax(x: jax.Array, y: jax.Array | None = None, *, depth: int = 1,
                   w_std: float = W_STD, b_std: float = B_STD) -> jax.Array:
    """Differentiable NTK between dense JAX row sets ``x (n, d)`` and ``y (m, d)`` (defaults to ``x``).

    Use this inside jitted/differentiated code (e.g. DISTILL-CF's bilevel objective).
    """
    y = x if y is None else y
    gram = x @ y.T
    return ntk_from_gram(gram, jnp.sum(x * x, axis=1), jnp.sum(y * y, axis=1), n_features=x.shape[1],
                         depth=depth, w_std=w_std, b_std=b_std)
