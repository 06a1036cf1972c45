"""The multi-step Gumbel sampler of DISTILL-CF (paper §4): relaxed Bernoulli-like rows from a learnable prior,
differentiable with O(μ·items) memory whatever the number of samples γ."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from infae_kit.errors import ParameterError

__all__ = [
    "NOISE_GENERATORS",
    "frechet_coefficients",
    "frechet_power",
    "gumbel_noise",
    "gumbel_sum_backward",
    "gumbel_sum_forward",
    "gumbel_sum_forward_storing",
    "hard_gumbel_support",
    "hash_uniform",
    "lowbias32",
    "multi_step_gumbel",
    "noise_from_seed",
    "sample_seeds",
    "stored_draws",
]


NOISE_GENERATORS = ("hash", "threefry")
"""Sources of the sampler's per-element Gumbel noise (see :func:`gumbel_noise`)."""


def lowbias32(x: jax.Array) -> jax.Array:
    """A 32-bit integer bijection with good avalanche (Wellons' ``lowbias32``, hash-prospector, public domain)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def sample_seeds(key: jax.Array, n_samples: int, generator: str) -> jax.Array:
    """``(γ, 2)`` uint32 per-sample seeds of ``key``: ``jax.random.split(key, γ)`` for ``"threefry"``, two random
    words of each split key for ``"hash"``."""
    keys = jax.random.split(key, n_samples)
    if generator == "threefry":
        return keys
    return jax.vmap(lambda k: jax.random.bits(k, (2,), jnp.uint32))(keys)


def hash_uniform(seed: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """The ``"hash"`` generator's float32 uniforms ``u = (j + ½) / 2²³`` of one sample (``seed``: 2 uint32 words).

    ``j`` is the top 23 bits of two ``lowbias32`` rounds over the element's row-major index; ``u`` lies in
    ``[2⁻²⁴, 1 − 2⁻²⁴]``, exact in float32 (never 0 or 1).
    """
    n_cols = shape[1]
    counter = (jax.lax.broadcasted_iota(jnp.uint32, shape, 0) * jnp.uint32(n_cols)
               + jax.lax.broadcasted_iota(jnp.uint32, shape, 1))
    bits = lowbias32(lowbias32(counter ^ seed[0]) ^ seed[1])
    # j < 2²³ converts exactly through int32 (a vectorised conversion; uint32 → float32 is not on AVX2)
    return ((bits >> 9).astype(jnp.int32).astype(jnp.float32) + 0.5) * jnp.float32(2.0 ** -23)


def noise_from_seed(seed: jax.Array, shape: tuple[int, ...], dtype: npt.DTypeLike, generator: str) -> jax.Array:
    """Standard Gumbel noise of one sample from its seed (see :func:`gumbel_noise`)."""
    if generator == "threefry":
        return jax.random.gumbel(seed, shape, dtype)
    return (-jnp.log(-jnp.log(hash_uniform(seed, tuple(shape))))).astype(dtype)


_FRECHET_MIN_TAU = 1.0
_FRECHET_MAX_DEGREE = 12
_FRECHET_REL_TOL = 6e-8
_EXP_OFFSET = 26  # E = −log u ≥ 5.96e-8 > 2⁻²⁵, so its binary exponent + 26 is ≥ 0 and < 2⁵


def frechet_coefficients(tau: float) -> np.ndarray | None:
    """Power-basis coefficients of ``m^(−1/τ)`` on ``m ∈ [1, 2)`` in ``t = 2m − 3 ∈ [−1, 1)``, or None.

    The lowest degree (≤ 12) whose Chebyshev fit has a relative error ≤ 6·10⁻⁸ (float32's half ulp is
    6·10⁻⁸) on a fine grid; None for τ < 1, where no such degree exists (the caller then uses log and exp).
    """
    if tau < _FRECHET_MIN_TAU:
        return None
    t = np.linspace(-1.0, 1.0, 20001)
    target = ((t + 3.0) / 2.0) ** (-1.0 / tau)
    for degree in range(4, _FRECHET_MAX_DEGREE + 1):
        fit = np.polynomial.chebyshev.Chebyshev.fit(t, target, degree)
        coef = fit.convert(kind=np.polynomial.Polynomial).coef
        if np.max(np.abs(np.polyval(coef[::-1], t) - target) / target) <= _FRECHET_REL_TOL:
            return coef
    return None


def frechet_power(e: jax.Array, tau: float, coef: np.ndarray) -> jax.Array:
    """``E^(−1/τ)`` for float32 ``E`` in ``[2⁻²⁵, 2⁶)`` (what ``−log u`` takes), without log or exp.

    With ``E = 2^k · m``, ``m ∈ [1, 2)`` read from its bits: ``m^(−1/τ)`` is the polynomial ``coef``
    (:func:`frechet_coefficients`) and ``2^(−k/τ)`` a product of the constants ``2^(−2^b/τ)`` over the set bits
    ``b`` of ``k + 26``. Relative error ≤ 3·10⁻⁷ (a few float32 roundings), as ``exp(−log(E)/τ)``.
    """
    bits = jax.lax.bitcast_convert_type(e, jnp.int32)
    k = (bits >> 23) - 127 + _EXP_OFFSET
    m = jax.lax.bitcast_convert_type((bits & 0x007FFFFF) | 0x3F800000, jnp.float32)
    t = m * 2.0 - 3.0
    p = jnp.float32(coef[-1])
    for c in coef[-2::-1]:
        p = p * t + jnp.float32(c)
    p = p * jnp.float32(2.0 ** (_EXP_OFFSET / tau))
    for b in range(5):
        p = jnp.where(((k >> b) & 1) == 1, p * jnp.float32(2.0 ** (-(2 ** b) / tau)), p)
    return p


def gumbel_noise(key: jax.Array, shape: tuple[int, int], dtype: npt.DTypeLike = jnp.float32,
                 generator: str = "hash") -> jax.Array:
    """Standard Gumbel noise of ``shape`` (2-D), the noise of one multi-step Gumbel sample.

    ``"threefry"`` is ``jax.random.gumbel`` (JAX's counter-based threefry-2x32, 20 rounds per pair of words).
    ``"hash"`` (the sampler's default) derives two 32-bit words from ``key`` with threefry and hashes each
    element's index with them (two rounds of the ``lowbias32`` integer bijection), takes the top 23 bits as a
    uniform ``u ∈ (0, 1)`` and returns ``−log(−log u)``. Same distribution up to the 23-bit resolution of ``u``
    (as the threefry path), and a 4× cheaper generator: DISTILL-CF draws γ · μ · items noise values twice
    per step (forward and the re-drawing backward), 370 M each way on ML-1M with μ = 500, γ = 200, and threefry
    alone took 2.6 s of each pass on 2 CPU cores (``benchmarks/bench_distill.py``). Tests check the uniformity,
    the Gumbel moments and the independence across seeds and neighbouring elements.
    """
    if len(shape) != 2:
        raise ParameterError(f"shape must be 2-D (rows, items), got {shape!r}")
    _check_noise(generator, shape, "generator")
    seed = sample_seeds(key, 1, generator)[0]
    return noise_from_seed(seed, tuple(shape), dtype, generator)


_GUMBEL_MAX = float(-np.log(-np.log1p(-2.0 ** -24)))
"""16.64: the largest noise either generator can draw (``u ≤ 1 − 2⁻²⁴``)."""
_FIXED_SHIFT_MIN_TAU = 0.25


def _softmax_shift(logits: jax.Array, tau: float) -> jax.Array | None:
    """A per-row bound ``(max_i logits_i + G_max) / τ ≥ max_i (logits_i + G_i) / τ`` for every draw, or None.

    Shifting by it instead of each draw's own maximum leaves the softmax unchanged, never overflows, and spares
    XLA a max-reduction pass (which re-computed the noise: 10–13 % of the sampler's time). The row's best entry
    is then at most ``(G_max − G_min) / τ ≈ 21/τ`` below the shift, which cannot underflow for τ ≥ 0.25; below
    that the exact per-draw maximum is used.
    """
    if tau < _FIXED_SHIFT_MIN_TAU:
        return None
    return (jnp.max(logits, axis=-1, keepdims=True) + _GUMBEL_MAX) / tau


def _unnormalised_draws(logits: jax.Array, tau: float, generator: str):
    """A function ``seed -> e`` giving one draw's softmax numerators (``softmax = e / Σ_items e``).

    ``"hash"`` at τ ≥ 1 takes the Fréchet form: ``exp(G/τ) = E^(−1/τ)`` with ``E = −log u`` (as
    ``exp(−G) = −log u``), so ``softmax((x + G)/τ) ∝ a · E^(−1/τ)`` with ``a = exp((x − max x)/τ)`` computed once per
    pass and ``E^(−1/τ)`` by :func:`frechet_power`: one log per element instead of two logs and an exp, the
    same uniforms, equal to float32 rounding (``tests/test_distill.py`` checks the values, the distribution and
    the gradient against the plain softmax). Otherwise ``exp((x + G)/τ − shift)`` (:func:`_softmax_shift`).
    """
    coef = frechet_coefficients(tau) if generator == "hash" else None
    row_max = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    if coef is not None:
        a = jnp.exp((logits - row_max) / tau)
        return lambda seed: a * frechet_power(-jnp.log(hash_uniform(seed, logits.shape)), tau, coef)
    shift = _softmax_shift(row_max, tau)

    def draw(seed):
        z = (logits + noise_from_seed(seed, logits.shape, logits.dtype, generator)) / tau
        return jnp.exp(z - jnp.max(z, axis=-1, keepdims=True) if shift is None else z - shift)

    return draw


def gumbel_sum_forward(logits: jax.Array, seeds: jax.Array, tau: float, generator: str
                       ) -> tuple[jax.Array, jax.Array]:
    """``Σ_k softmax((logits + G_k)/τ)`` over the per-sample seeds, and each draw's row normalisers.

    One pass per draw: the unnormalised draw ``e_k`` is computed once, its row sums ``Z_k`` reduced from it, and
    ``e_k · (1/Z_k)`` accumulated; memory O(μ·items + γ·μ) whatever γ.

    Args:
      logits: ``(μ, items)`` prior.
      seeds: ``(γ, 2)`` uint32 per-sample seeds (:func:`sample_seeds`).
      tau: temperature τ > 0.
      generator: ``"hash"`` or ``"threefry"``.

    Returns:
      ``(S, Z)``: the ``(μ, items)`` sum and the ``(γ, μ)`` row normalisers (what the backward reuses).
    """
    draw = _unnormalised_draws(logits, tau, generator)
    return jax.lax.scan(lambda acc, seed: _add_draw(acc, draw(seed)), jnp.zeros_like(logits), seeds)


def gumbel_sum_forward_storing(logits: jax.Array, seeds: jax.Array, store: jax.Array, tau: float, generator: str
                               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`gumbel_sum_forward` that also writes the first ``m`` draws' numerators ``e_k`` into ``store``.

    The values of ``(S, Z)`` are bit-identical to :func:`gumbel_sum_forward`'s (the same draws, accumulated in
    the same order). Handing ``store`` to :func:`gumbel_sum_backward` spares it re-drawing those ``m`` samples,
    for ``m · μ · items`` floats of memory: jit this with ``store`` donated so that its buffer is reused in
    place from step to step.

    Args:
      logits, seeds, tau, generator: as in :func:`gumbel_sum_forward`.
      store: ``(m, μ, items)`` buffer of the logits' dtype, ``0 ≤ m ≤ γ``; its old contents are ignored.

    Returns:
      ``(S, Z, store)``, ``store[k]`` holding draw ``k``'s numerators for ``k < m``.
    """
    m = store.shape[0]
    _check_store(store, logits, seeds)
    if m == 0:
        return (*gumbel_sum_forward(logits, seeds, tau, generator), store)
    draw = _unnormalised_draws(logits, tau, generator)

    def body(carry, k_and_seed):
        acc, buf = carry
        k, seed = k_and_seed
        e = draw(seed)
        acc, z = _add_draw(acc, e)
        return (acc, jax.lax.dynamic_update_index_in_dim(buf, e, k, 0)), z

    (total, store), head = jax.lax.scan(body, (jnp.zeros_like(logits), store), (jnp.arange(m), seeds[:m]))
    total, tail = jax.lax.scan(lambda acc, seed: _add_draw(acc, draw(seed)), total, seeds[m:])
    return total, jnp.concatenate([head, tail]), store


def _add_draw(acc: jax.Array, e: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(acc + e / Z, Z)`` for one draw's ``(μ, items)`` numerators ``e`` and their ``(μ,)`` row sums ``Z``."""
    z = jnp.sum(e, axis=-1)
    return acc + e * (1.0 / z)[:, None], z


def _check_store(store: jax.Array, logits: jax.Array, seeds: jax.Array) -> None:
    if store.ndim != 3 or store.shape[1:] != logits.shape or store.shape[0] > seeds.shape[0] \
            or store.dtype != logits.dtype:
        raise ParameterError(f"the draw store must be (m, {', '.join(map(str, logits.shape))}) {logits.dtype} "
                             f"with m <= γ = {seeds.shape[0]}, got {store.shape} {store.dtype}")


def stored_draws(budget_bytes: int, gamma: int, shape: tuple[int, int], itemsize: int = 4) -> int:
    """How many of γ draws of a ``shape`` (μ, items) sample a memory budget of ``budget_bytes`` can keep."""
    per_draw = max(math.prod(shape) * itemsize, 1)
    return int(min(gamma, max(budget_bytes, 0) // per_draw))


def gumbel_sum_backward(logits: jax.Array, seeds: jax.Array, total: jax.Array, norms: jax.Array, g: jax.Array,
                        tau: float, generator: str, stored: jax.Array | None = None) -> jax.Array:
    """VJP of :func:`gumbel_sum_forward`'s sum with respect to ``logits``, for the cotangent ``g``.

    With ``s_k = e_k / Z_k`` the VJP of ``Σ_k softmax(z_k/τ)`` is ``(1/τ) Σ_k s_k ⊙ (g − ⟨s_k, g⟩)
    = (1/τ) (S ⊙ g − Σ_k ⟨e_k, g⟩/Z_k² · e_k)``: the first term comes from the forward's sum ``S``
    (``total``), the second re-draws each ``e_k`` from its seed once and reuses the forward's ``Z_k``
    (``norms``), so a draw costs one noise evaluation, one reduction and one accumulation.

    Args:
      logits, seeds, tau, generator: as in :func:`gumbel_sum_forward`.
      total: ``(μ, items)`` the forward's sum ``S``.
      norms: ``(γ, μ)`` the forward's row normalisers ``Z``.
      g: ``(μ, items)`` cotangent of the sum.
      stored: the ``(m, μ, items)`` numerators of the first ``m`` draws written by
        :func:`gumbel_sum_forward_storing`, read instead of re-drawn: the same gradient (bit for bit at the
        datasets' shapes; XLA may fuse the two ways differently at toy sizes, a last-bit difference).

    Returns:
      ``(μ, items)`` gradient with respect to ``logits``.
    """
    draw = _unnormalised_draws(logits, tau, generator)

    def add(acc, e, z):
        inv = 1.0 / z
        c = jnp.sum(e * g, axis=-1) * (inv * inv)
        return acc + e * c[:, None], None

    second = jnp.zeros_like(logits)
    m = 0
    if stored is not None:
        _check_store(stored, logits, seeds)
        m = stored.shape[0]
        second = jax.lax.scan(lambda acc, e_z: add(acc, *e_z), second, (stored, norms[:m]))[0]
    second = jax.lax.scan(lambda acc, s_z: add(acc, draw(s_z[0]), s_z[1]), second, (seeds[m:], norms[m:]))[0]
    return (total * g - second) / tau


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _gumbel_sum(logits: jax.Array, seeds: jax.Array, tau: float, generator: str) -> jax.Array:
    """``Σ_k softmax((logits + G_k)/τ)`` with the custom VJP of :func:`gumbel_sum_backward`."""
    return gumbel_sum_forward(logits, seeds, tau, generator)[0]


def _gumbel_sum_fwd(logits, seeds, tau, generator):
    total, norms = gumbel_sum_forward(logits, seeds, tau, generator)
    return total, (logits, seeds, total, norms)


def _gumbel_sum_bwd(tau, generator, res, g):
    logits, seeds, total, norms = res
    return gumbel_sum_backward(logits, seeds, total, norms, g, tau, generator), None  # seeds: not differentiable


_gumbel_sum.defvjp(_gumbel_sum_fwd, _gumbel_sum_bwd)


def _check_sampler_args(n_samples, tau) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ParameterError(f"n_samples (γ) must be an integer >= 1, got {n_samples!r}")
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)) or not tau > 0 \
            or not math.isfinite(tau):
        raise ParameterError(f"tau (the Gumbel temperature) must be a finite number > 0, got {tau!r}")


def _check_noise(noise: str, shape: tuple[int, ...], name: str = "noise") -> None:
    """A known generator, and a sample the hash can index (its element counter is 32-bit)."""
    if noise not in NOISE_GENERATORS:
        raise ParameterError(f"{name} must be one of {NOISE_GENERATORS}, got {noise!r}")
    if noise == "hash" and math.prod(shape) >= 2 ** 32:
        raise ParameterError(f"the hash generator indexes at most 2**32 elements per sample, got {tuple(shape)}; "
                             f"use {name}='threefry'")


def multi_step_gumbel(logits: jax.Array, key: jax.Array, n_samples: int, tau: float,
                      noise: str = "hash") -> jax.Array:
    """The paper code's multi-step Gumbel sampler, differentiable in ``logits`` with O(μ·items) memory.

    ``clip(Σ_{k=1..γ} softmax((logits + G_k) / τ), −1, 1)`` with the softmax over the last axis (items) and
    ``G_k`` standard Gumbel noise of the ``k``-th of ``jax.random.split(key, γ)`` (see :func:`gumbel_noise`
    for the two generators). The values are in ``[0, 1]`` (a sum of softmaxes is non-negative; hard-tanh clips
    at 1). The gradient is a custom VJP that re-draws each sample from its key inside a scan, so memory does
    not grow with γ.

    Args:
      logits: ``(μ, items)`` prior ``Xˢ``.
      key: a JAX PRNG key.
      n_samples: γ, the number of Gumbel samples per row (a static Python int).
      tau: temperature τ > 0 (static).
      noise: ``"hash"`` (default, fast) or ``"threefry"`` (``jax.random.gumbel``), see :func:`gumbel_noise`.

    Returns:
      ``(μ, items)`` array of the dtype of ``logits``.
    """
    _check_sampler_args(n_samples, tau)
    _check_noise(noise, logits.shape)
    seeds = sample_seeds(key, int(n_samples), noise)
    return jnp.clip(_gumbel_sum(logits, seeds, float(tau), noise), -1.0, 1.0)


def hard_gumbel_support(logits: jax.Array, key: jax.Array, n_samples: int, noise: str = "hash") -> jax.Array:
    """Binary support from the same draws as :func:`multi_step_gumbel` taken at τ → 0 (Gumbel-max).

    Row ``u`` holds the union over the γ keys of ``argmax_i (logits_u + G_k)_i`` (a categorical sample from
    ``softmax(logits_u)``), with the noise of ``multi_step_gumbel(logits, key, γ, τ, noise)``, whatever τ.

    Returns:
      ``(μ, items)`` array of 0/1 values in the dtype of ``logits``.
    """
    _check_sampler_args(n_samples, 1.0)
    _check_noise(noise, logits.shape)
    seeds = sample_seeds(key, int(n_samples), noise)
    rows = jnp.arange(logits.shape[0])

    def body(acc, seed):
        pick = jnp.argmax(logits + noise_from_seed(seed, logits.shape, logits.dtype, noise), axis=-1)
        return acc.at[rows, pick].set(1.0), None

    return jax.lax.scan(body, jnp.zeros_like(logits), seeds)[0]


