"""neural-tangents as a *reference* (tests, notebook 01): never on the kit's hot paths.

neural-tangents 0.6.5 imports ``neural_tangents.experimental`` at import time, which imports tensorflow and
tf2jax (only used by its TF interop). The kit installs neural-tangents without those dependencies (see the
README's "Version pins"), so :func:`import_neural_tangents` imports it with ``neural_tangents.experimental``
replaced by a placeholder that raises a clear error if anything in it is used. If tensorflow *is* installed,
the real package is imported unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
from typing import Callable, Sequence

import numpy as np

from infae_kit.checks import MatrixLike

__all__ = [
    "import_neural_tangents",
    "reference_autoencoder_kernel_fn",
    "empirical_ntk_by_width",
]

_EXPERIMENTAL = "neural_tangents.experimental"


class _ExperimentalUnavailable(types.ModuleType):
    def __getattr__(self, name):  # pragma: no cover - trivial
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"neural_tangents.experimental.{name} needs tensorflow and tf2jax, which infae_kit does not install "
            "(see docs/design.md, 'Why each library, and the version pins'). `pip install tensorflow tf2jax` if you need neural-tangents' TF interop."
        )


def import_neural_tangents() -> types.ModuleType:
    """Import and return the ``neural_tangents`` module, without requiring tensorflow.

    Raises:
      ImportError: with install instructions if neural-tangents itself is missing.
    """
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    if importlib.util.find_spec("neural_tangents") is None:
        raise ImportError(
            "neural-tangents is not installed. Install the pinned version without its tensorflow dependency: "
            "`pip install --no-deps -r requirements/neural-tangents.txt` (or run `make env`)."
        )
    have_tf = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf2jax") is not None
    if not have_tf and _EXPERIMENTAL not in sys.modules:
        sys.modules[_EXPERIMENTAL] = _ExperimentalUnavailable(_EXPERIMENTAL)
    return importlib.import_module("neural_tangents")


def reference_autoencoder_kernel_fn(n_items: int, depth: int = 1, width: int = 1024) -> tuple[Callable, Callable, Callable]:
    """neural-tangents ``kernel_fn`` of the paper's autoencoder: [Dense(width) → Relu] × depth → Dense(n_items).

    ``W_std = √2``, ``b_std = 0.1``, NTK parameterisation, as in the paper's code. Returns
    ``(init_fn, apply_fn, kernel_fn)``.
    """
    nt = import_neural_tangents()
    stax = nt.stax
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=math.sqrt(2.0), b_std=0.1, parameterization="ntk"), stax.Relu()]
    layers += [stax.Dense(n_items, W_std=math.sqrt(2.0), b_std=0.1, parameterization="ntk")]
    return stax.serial(*layers)


def empirical_ntk_by_width(
    x: MatrixLike,
    y: MatrixLike | None = None,
    widths: Sequence[int] = (64, 256, 1024, 4096),
    n_seeds: int = 3,
    depth: int = 1,
    seed: int = 42,
    *,
    n_outputs: int = 1,
    max_dense_entries: int = 10_000_000,
) -> np.ndarray:
    """Relative error of finite networks' empirical NTK to the analytic (infinite-width) NTK, per width and seed.

    For every width ``w`` and seed, a finite network ``[Dense(w) → Relu] × depth → Dense(n_outputs)``
    (:func:`reference_autoencoder_kernel_fn`: NTK parameterisation, ``W_std = √2``, ``b_std = 0.1``) is initialised
    with ``stax``'s ``init_fn``, its empirical NTK ``J(x) J(y)ᵀ`` is computed with ``nt.empirical_ntk_fn``
    (traced, i.e. averaged, over the output units), and compared with :func:`infae_kit.models.ntk.ntk_matrix` (same
    dtype as JAX's default float) by the relative Frobenius error ``‖Θ_w − Θ_∞‖_F / ‖Θ_∞‖_F``.

    In the infinite-width limit the NTK of a network with ``k`` outputs is ``Θ_∞ ⊗ I_k`` whatever ``k`` is, so
    one output unit (the default) already tests the kernel ∞-AE uses; the autoencoder's ``n_items`` outputs
    would only average ``n_items`` such per-unit kernels and multiply the cost by ``n_items``.

    Args:
      x: ``(n, d)`` rows (scipy sparse or dense), densified.
      y: ``(m, d)`` rows; ``None`` for ``Θ(x, x)``.
      widths: hidden-layer widths to try (positive integers).
      n_seeds: independent initialisations per width.
      depth: hidden Dense→ReLU blocks (>= 1).
      seed: base PRNG seed; width ``w`` and seed ``s`` use ``fold_in(fold_in(PRNGKey(seed), w), s)``.
      n_outputs: output units of the finite networks (traced over).
      max_dense_entries: refuse inputs whose dense copy would exceed this many entries.

    Returns:
      ``(len(widths), n_seeds)`` float64 array of relative Frobenius errors.

    Raises:
      ParameterError: bad widths / seeds / depth / shapes, or inputs too large to densify.

    Cost: implementation ``NTK_VECTOR_PRODUCTS`` (the structured-derivatives one does not run with JAX 0.5);
    depth 3 at width 4096 with ``n = 20`` rows takes a few seconds on a CPU.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.sparse as sp

    from infae_kit.errors import ParameterError
    from infae_kit.models.ntk import ntk_matrix

    widths = tuple(widths)
    if not widths or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1 for w in widths):
        raise ParameterError(f"widths must be a non-empty sequence of positive integers, got {widths!r}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise ParameterError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ParameterError(f"depth must be an integer >= 1 (number of Dense→ReLU blocks), got {depth!r}")
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, (int, np.integer)) or n_outputs < 1:
        raise ParameterError(f"n_outputs must be a positive integer, got {n_outputs!r}")
    if y is not None and y.shape[1] != x.shape[1]:
        raise ParameterError(f"x has {x.shape[1]} columns but y has {y.shape[1]}: both must be rows over the same items")
    for name, rows in (("x", x), ("y", y)):
        if rows is not None and rows.shape[0] * rows.shape[1] > max_dense_entries:
            raise ParameterError(
                f"{name} has shape {rows.shape}: densifying it exceeds max_dense_entries={max_dense_entries}. "
                "The empirical NTK is a check on a handful of rows: pass a subsample (e.g. x[:32])."
            )

    nt = import_neural_tangents()
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32

    def dense(rows):
        return jnp.asarray(rows.toarray() if sp.issparse(rows) else np.asarray(rows), dtype=dtype)

    x_dense = dense(x)
    y_dense = None if y is None else dense(y)
    analytic = np.asarray(
        ntk_matrix(x, y, depth=int(depth), dtype=np.dtype(dtype).name), dtype=np.float64
    )
    analytic_norm = np.linalg.norm(analytic)
    base_key = jax.random.PRNGKey(seed)
    errors = np.empty((len(widths), int(n_seeds)), dtype=np.float64)
    for i, width in enumerate(widths):
        init_fn, apply_fn, _ = reference_autoencoder_kernel_fn(n_items=int(n_outputs), depth=int(depth),
                                                               width=int(width))
        ntk_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                             implementation=nt.NtkImplementation.NTK_VECTOR_PRODUCTS))
        width_key = jax.random.fold_in(base_key, int(width))
        for s in range(int(n_seeds)):
            _, params = init_fn(jax.random.fold_in(width_key, s), x_dense.shape)
            params = jax.tree_util.tree_map(lambda p: p.astype(dtype), params)
            empirical = np.asarray(ntk_fn(x_dense, y_dense, params), dtype=np.float64)
            errors[i, s] = np.linalg.norm(empirical - analytic) / analytic_norm
    return errors
