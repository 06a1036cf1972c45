"""DISTILL-CF: synthesise a small support set of fake users for ∞-AE (paper §4, Algorithm 3, Appendix B.4).

A learnable prior ``Xˢ`` (``μ × items``, initialised with the dense train rows of μ random real users) is
optimised with Adam through the closed-form ∞-AE. One outer step, as the paper's code does it
(``noveens/distill_cf``; see ``shared/reference/EVALUATION.md``, "DISTILL-CF")::

    X̂ˢ     = clip(Σ_{k=1..γ} softmax((Xˢ + G_k) / τ), −1, 1)        multi-step Gumbel sampling, G_k ~ Gumbel
    K_ss   = Θ(X̂ˢ, X̂ˢ),   α = (K_ss + λ · trace(K_ss)/μ · I)⁻¹ X̂ˢ    inner ∞-AE, closed form
    scores = Θ(X_b, X̂ˢ) α                                            real users' train rows X_b
    loss   = mean_u −Σ_i log_softmax(scores_u)_i · X_b[u, i]          "multinomial" (the code; default)
           + λ₂ · mean_u Σ_i X̂ˢ[u, i] / (train interactions / users)

The printed Eq. 3 uses a binary cross-entropy instead; ``loss="bce"`` implements it with the scores read as
probabilities clipped to ``[1e-6, 1 − 1e-6]`` (Eq. 3 takes ``log(K α)`` directly). The inner λ is not fixed: it
is re-picked over ``val_lambdas`` on validation HR@100 at every validation (B.4), starting from the λ picked on
the initial support (step 0), exactly like the code.

Sampling is wrapped in a :func:`jax.custom_vjp` whose forward and backward passes both scan over the γ samples,
re-drawing each sample's Gumbel noise from its key, so memory is ``O(μ · items)`` whatever γ is.

**Discretisation.** The sampler's output is binary only in the limit of a small temperature: at the code's
default τ = 10 each of the γ softmax samples is nearly uniform and X̂ˢ is a dense matrix of small values in
[0, 1]. The support that DISTILL-CF *releases* — and validates at each validation, so that the validation
numbers and the λ picked are those of the released artifact — is chosen by ``DistillConfig.support``:

* ``"soft"`` (default): the sampled X̂ˢ itself, values in ``[0, 1]``: what the paper's code evaluates, keeps
  and saves. Not binary at τ = 10 (stored as float32 CSR with its exact zeros dropped; usually dense). On the
  kit's synthetic data (μ = 40, γ = 20, 100 steps) it validated at HR@100 85.6 against 80.6 for both
  binary versions below, at the code's τ = 10.
* ``"topk"``: binary; each row keeps its ``round(row sum)`` largest entries of the sampled X̂ˢ (the row sum is
  the sample's mass: γ minus what the hard-tanh clipped), see :func:`topk_binarize`.
* ``"hard"``: binary; the same γ Gumbel draws (same keys as the soft sample, i.e. the τ → 0 limit of that very
  draw) taken as Gumbel-max samples ``argmax_i (Xˢ_u + G_k)_i``, one item per draw, a fake user's items being
  the union of its γ draws (1 to γ items: the entropy of a prior row controls its cardinality, as §4 says).

Example:
    >>> from infae_kit.data import load_dataset
    >>> data = load_dataset("synthetic", n_users=200, n_items=150)          # doctest: +SKIP
    >>> result = distill(data, DistillConfig(budget=40, gamma=50, steps=50))  # doctest: +SKIP
    >>> InfiniteAE(result.best_lambda).fit(result.best_support)              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from . import __version__
from . import metrics as M
from .errors import DataError, ParameterError
from .evaluation import DEFAULT_KS, MetricAccumulator, split_protocol, user_batches
from .infinite_ae import _RidgeSolver
from .io_utils import atomic_write_bytes, atomic_write_json
from .ntk import gram_matrix, ntk_matrix, ntk_matrix_jax

LOSSES = ("multinomial", "bce")
SUPPORT_MODES = ("topk", "hard", "soft")
PAPER_DISTILL_LAMBDA_GRID: tuple[float, ...] = (1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)
"""Inner-loop λ grid of DISTILL-CF (Table 3), re-searched at every validation."""
EARLY_EVAL_STEPS: tuple[int, ...] = (25, 50, 75, 100, 125, 150, 175, 200)
"""Validation steps of the paper's code, in addition to every ``log_freq`` steps."""
SELECT_BY = "HR@100"
_BCE_EPS = 1e-6
_CHECKPOINT_MANIFEST = "checkpoint.json"
_CARD_NAME = "datacard.json"
_SUPPORT_NAME = "support.npz"


# ---------------------------------------------------------------------------------------------------------
# Multi-step Gumbel sampling
# ---------------------------------------------------------------------------------------------------------
NOISE_GENERATORS = ("hash", "threefry")
"""Sources of the sampler's per-element Gumbel noise (see :func:`gumbel_noise`)."""


def _lowbias32(x: jax.Array) -> jax.Array:
    """A 32-bit integer bijection with good avalanche (Wellons' ``lowbias32``, hash-prospector, public domain)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _sample_seeds(key: jax.Array, n_samples: int, generator: str) -> jax.Array:
    """``(γ, 2)`` uint32 per-sample seeds: the raw threefry keys, or two random words per key for ``"hash"``."""
    keys = jax.random.split(key, n_samples)
    if generator == "threefry":
        return keys
    return jax.vmap(lambda k: jax.random.bits(k, (2,), jnp.uint32))(keys)


def _noise_from_seed(seed: jax.Array, shape: tuple[int, ...], dtype, generator: str) -> jax.Array:
    if generator == "threefry":
        return jax.random.gumbel(seed, shape, dtype)
    n_rows, n_cols = shape
    counter = (jax.lax.broadcasted_iota(jnp.uint32, shape, 0) * jnp.uint32(n_cols)
               + jax.lax.broadcasted_iota(jnp.uint32, shape, 1))
    bits = _lowbias32(_lowbias32(counter ^ seed[0]) ^ seed[1])
    # the top 23 bits, centred: u = (j + ½) / 2²³ in [2⁻²⁴, 1 − 2⁻²⁴], exact in float32 (never 0 or 1)
    u = ((bits >> 9).astype(jnp.float32) + 0.5) * jnp.float32(2.0 ** -23)
    return (-jnp.log(-jnp.log(u))).astype(dtype)


def gumbel_noise(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32, generator: str = "hash") -> jax.Array:
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
    seed = _sample_seeds(key, 1, generator)[0]
    return _noise_from_seed(seed, tuple(shape), dtype, generator)


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


def _gumbel_softmax_once(logits: jax.Array, seed: jax.Array, tau: float, generator: str,
                         shift: jax.Array | None) -> jax.Array:
    """One relaxed sample ``softmax((logits + G) / τ)`` along the last axis (items); the noise carries no gradient."""
    z = (logits + _noise_from_seed(seed, logits.shape, logits.dtype, generator)) / tau
    if shift is None:
        return jax.nn.softmax(z, axis=-1)
    e = jnp.exp(z - shift)
    return e / jnp.sum(e, axis=-1, keepdims=True)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _gumbel_sum(logits: jax.Array, seeds: jax.Array, tau: float, generator: str) -> jax.Array:
    """``Σ_k softmax((logits + G_k)/τ)`` over the per-sample seeds, as a scan (O(μ·items) memory)."""
    shift = _softmax_shift(jax.lax.stop_gradient(logits), tau)

    def body(acc, seed):
        return acc + _gumbel_softmax_once(logits, seed, tau, generator, shift), None

    return jax.lax.scan(body, jnp.zeros_like(logits), seeds)[0]


def _gumbel_sum_fwd(logits, seeds, tau, generator):
    return _gumbel_sum(logits, seeds, tau, generator), (logits, seeds)


def _gumbel_sum_bwd(tau, generator, res, g):
    logits, seeds = res
    shift = _softmax_shift(logits, tau)

    def body(acc, seed):
        # Re-draw the sample from its seed; VJP of softmax(z/τ): s ⊙ (g − ⟨s, g⟩) / τ.
        s = _gumbel_softmax_once(logits, seed, tau, generator, shift)
        return acc + s * (g - jnp.sum(s * g, axis=-1, keepdims=True)), None

    grad = jax.lax.scan(body, jnp.zeros_like(logits), seeds)[0] / tau
    return grad, None  # seeds are not differentiable


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
    seeds = _sample_seeds(key, int(n_samples), noise)
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
    seeds = _sample_seeds(key, int(n_samples), noise)
    rows = jnp.arange(logits.shape[0])

    def body(acc, seed):
        pick = jnp.argmax(logits + _noise_from_seed(seed, logits.shape, logits.dtype, noise), axis=-1)
        return acc.at[rows, pick].set(1.0), None

    return jax.lax.scan(body, jnp.zeros_like(logits), seeds)[0]


# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class DistillConfig:
    """Hyper-parameters of DISTILL-CF; defaults are the paper code's (``distill_cf/hyper_params.py``).

    Attributes:
      budget: μ, number of fake users (``user_support``).
      gamma: γ, Gumbel samples per fake user and step (``num_per_user``).
      tau: Gumbel temperature τ (``gumbel_tau``; the released grid uses 0.3/0.5/0.7/5.0).
      lambda2: λ₂, weight of the cardinality penalty (``cardinality_reg``), which the loss divides by the
        average number of train interactions per user.
      lr: Adam learning rate.
      steps: outer steps ξ.
      batch_size: real users per step (−1 = all users, the default; otherwise a seeded random batch per step).
      loss: ``"multinomial"`` (the code's −Σ log_softmax · x) or ``"bce"`` (the printed Eq. 3).
      val_lambdas: inner-λ grid re-searched at each validation.
      eval_steps: validation steps besides the multiples of ``log_freq`` (the code: 25, 50, …, 200).
      log_freq: validate every ``log_freq`` steps.
      patience: stop when a validation finds no improvement and the best is ``patience`` or more steps old.
      seed: seeds the choice of the initial users, the PRNG key and the user batches.
      checkpoint_every: write a checkpoint every this many steps (0 = never).
      support: how the released and validated support is discretised: ``"soft"`` (the sampled X̂ˢ as is, the
        paper's code), ``"topk"`` or ``"hard"`` (binary); see the module docstring.
      depth: hidden layers of the ∞-AE whose NTK is used (the paper: 1).
      noise: the Gumbel noise generator, ``"hash"`` (fast, default) or ``"threefry"`` (``jax.random.gumbel``,
        as the paper's code); see :func:`gumbel_noise`.
    """

    budget: int = 500
    gamma: int = 200
    tau: float = 10.0
    lambda2: float = 1e-3
    lr: float = 0.04
    steps: int = 500
    batch_size: int = -1
    loss: str = "multinomial"
    val_lambdas: tuple[float, ...] = PAPER_DISTILL_LAMBDA_GRID
    eval_steps: tuple[int, ...] = EARLY_EVAL_STEPS
    log_freq: int = 40
    patience: int = 150
    seed: int = 42
    checkpoint_every: int = 0
    support: str = "soft"
    depth: int = 1
    noise: str = "hash"

    def __post_init__(self) -> None:
        def bad(name, want):
            raise ParameterError(f"DistillConfig.{name} must be {want}, got {getattr(self, name)!r}")

        for name in ("budget", "gamma", "steps", "log_freq", "depth"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        for name in ("patience", "checkpoint_every"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                bad(name, "an integer >= 0")
        if not _is_int(self.seed):
            bad("seed", "an integer")
        if not _is_int(self.batch_size) or (self.batch_size < 1 and self.batch_size != -1):
            bad("batch_size", "a positive integer or -1 (all users)")
        if not _is_real(self.tau) or self.tau <= 0:
            bad("tau", "a finite number > 0")
        if not _is_real(self.lr) or self.lr <= 0:
            bad("lr", "a finite number > 0")
        if not _is_real(self.lambda2) or self.lambda2 < 0:
            bad("lambda2", "a finite number >= 0")
        if self.loss not in LOSSES:
            bad("loss", f"one of {LOSSES}")
        if self.support not in SUPPORT_MODES:
            bad("support", f"one of {SUPPORT_MODES}")
        if self.noise not in NOISE_GENERATORS:
            bad("noise", f"one of {NOISE_GENERATORS}")
        try:
            lams = tuple(float(v) for v in self.val_lambdas)
        except (TypeError, ValueError):
            bad("val_lambdas", "a non-empty sequence of finite numbers > 0")
        if not lams or any(isinstance(v, bool) or not math.isfinite(v) or v <= 0 for v in lams):
            bad("val_lambdas", "a non-empty sequence of finite numbers > 0 (λ = 0 breaks down in float32)")
        try:
            evs = tuple(self.eval_steps)
        except TypeError:
            bad("eval_steps", "a sequence of integers >= 1")
        if any(not _is_int(v) or v < 1 for v in evs):
            bad("eval_steps", "a sequence of integers >= 1")
        object.__setattr__(self, "val_lambdas", lams)
        object.__setattr__(self, "eval_steps", tuple(sorted({int(v) for v in evs})))

    def is_eval_step(self, step: int) -> bool:
        """Whether the paper's schedule validates after ``step``."""
        return step in self.eval_steps or step % self.log_freq == 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["val_lambdas"] = list(self.val_lambdas)
        d["eval_steps"] = list(self.eval_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DistillConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParameterError(f"unknown DistillConfig fields {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        for name in ("val_lambdas", "eval_steps"):
            if name in d:
                d[name] = tuple(d[name])
        return cls(**d)


# ---------------------------------------------------------------------------------------------------------
# Objective and step
# ---------------------------------------------------------------------------------------------------------
def distill_objective(prior: jax.Array, key: jax.Array, x_batch: jax.Array, lam, *, gamma: int, tau: float,
                      lambda2: float, avg_interactions: float, loss: str = "multinomial",
                      depth: int = 1, noise: str = "hash") -> jax.Array:
    """DISTILL-CF loss of one outer step (see the module docstring); differentiable in ``prior``.

    Args:
      prior: ``(μ, items)`` learnable prior ``Xˢ``.
      key: PRNG key of this step's Gumbel samples.
      x_batch: ``(b, items)`` dense train rows of real users (both the ∞-AE input and the target).
      lam: inner ridge λ (scaled by ``trace(K)/μ``).
      gamma, tau, lambda2, loss, depth, noise: as in :class:`DistillConfig`.
      avg_interactions: train interactions per user of the dataset (divides the cardinality penalty).

    Returns:
      scalar loss.
    """
    xs = multi_step_gumbel(prior, key, gamma, tau, noise)
    mu = xs.shape[0]
    k_ss = ntk_matrix_jax(xs, depth=depth)
    k_reg = k_ss + jnp.abs(lam) * jnp.trace(k_ss) / mu * jnp.eye(mu, dtype=xs.dtype)
    alpha = jax.scipy.linalg.solve(k_reg, xs, assume_a="pos")
    scores = ntk_matrix_jax(x_batch, xs, depth=depth) @ alpha
    if loss == "multinomial":
        rec = jnp.mean(-jnp.sum(jax.nn.log_softmax(scores, axis=-1) * x_batch, axis=-1))
    else:
        p = jnp.clip(scores, _BCE_EPS, 1.0 - _BCE_EPS)
        rec = jnp.mean(-jnp.sum(x_batch * jnp.log(p) + (1.0 - x_batch) * jnp.log1p(-p), axis=-1))
    cardinality = jnp.mean(jnp.sum(xs, axis=-1)) / avg_interactions
    return rec + lambda2 * cardinality


def _make_step(config: DistillConfig, avg_interactions: float):
    """Jitted ``(prior, opt_state, key, x_batch, lam) -> (prior, opt_state, key, loss)``; the key advances once."""
    optimizer = optax.adam(config.lr)
    objective = partial(distill_objective, gamma=config.gamma, tau=float(config.tau), lambda2=float(config.lambda2),
                        avg_interactions=float(avg_interactions), loss=config.loss, depth=config.depth,
                        noise=config.noise)

    def loss_and_grad(prior, key, x_batch, lam):
        key_next, sub = jax.random.split(key)
        loss, grad = jax.value_and_grad(objective)(prior, sub, x_batch, lam)
        return loss, grad, key_next

    def apply_update(grad, opt_state, prior):
        updates, opt_state = optimizer.update(grad, opt_state, prior)
        return optax.apply_updates(prior, updates), opt_state

    # Two jitted programs, not one: compiled together with the Adam update, XLA's CPU schedule of the
    # sampler's backward scan ran 2.2× slower (Magazine, μ=500, γ=200: 4.8 s → 2.15 s per step).
    # Buffer donation is a no-op (with a warning) on CPU; use it where it saves memory.
    donate = (1, 2) if jax.default_backend() != "cpu" else ()
    grad_fn = jax.jit(loss_and_grad)
    update_fn = jax.jit(apply_update, donate_argnums=donate)

    def step(prior, opt_state, key, x_batch, lam):
        with _single_threaded_blas():
            loss, grad, key_next = grad_fn(prior, key, x_batch, lam)
            prior, opt_state = update_fn(grad, opt_state, prior)
            jax.block_until_ready(loss)  # the limit must hold while the step runs, not only while it is queued
        return prior, opt_state, key_next, loss

    return optimizer, step


_THREADPOOLS: ThreadpoolController | None = None


def _single_threaded_blas():
    """Context limiting OpenBLAS (the LAPACK behind jax's CPU Cholesky/solve) to one thread.

    The step's LAPACK work is a μ × μ Cholesky factorisation and its solves; XLA's own thread pool runs the rest
    of the step. Left at 2 threads on a 2-core machine, OpenBLAS's spinning threads competed with XLA's: a
    500 × 500 Cholesky took 240 ms instead of 3 ms whenever the other core was busy (Magazine: 0.93 → 0.45 s
    per step of the kernel part alone, measured with ``benchmarks/bench_distill.py``).
    """
    global _THREADPOOLS
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


def _support_key(key: jax.Array) -> jax.Array:
    """Key of the support sampled for validation after a step: the one the next step will use (as the code)."""
    return jax.random.split(key)[1]


def sample_support(prior, key, config: DistillConfig) -> np.ndarray:
    """The discrete support of ``prior`` for ``key`` as a dense ``(μ, items)`` float32 numpy array.

    ``"soft"``: the sampler's output; ``"topk"``: its :func:`topk_binarize`; ``"hard"``: the binary union of
    the γ Gumbel-max draws (:func:`hard_gumbel_support`).
    """
    prior = jnp.asarray(prior)
    if config.support == "hard":
        return np.asarray(_hard_jit(prior, key, config.gamma, config.noise), dtype=np.float32)
    soft = np.asarray(_soft_jit(prior, key, config.gamma, float(config.tau), config.noise), dtype=np.float32)
    if config.support == "soft":
        return soft
    return topk_binarize(soft)


def topk_binarize(soft: np.ndarray) -> np.ndarray:
    """Binary rows keeping, in each row, its ``k = round(row sum)`` largest entries (at least 1).

    The row sum of the sampled X̂ˢ is its expected cardinality (γ softmax samples of mass 1 each, less what the
    hard-tanh clipped), so each fake user keeps as many items as the sample's mass, the most sampled ones.
    Ties are broken towards the lower item index.
    """
    soft = np.asarray(soft, dtype=np.float32)
    n_items = soft.shape[1]
    k = np.clip(np.rint(soft.sum(axis=1)), 1, n_items).astype(np.int64)
    order = np.argsort(-soft, axis=1, kind="stable")
    keep = np.arange(n_items)[None, :] < k[:, None]
    out = np.zeros_like(soft)
    np.put_along_axis(out, order, keep.astype(np.float32), axis=1)
    return out


_hard_jit = jax.jit(hard_gumbel_support, static_argnums=(2, 3))
_soft_jit = jax.jit(multi_step_gumbel, static_argnums=(2, 3, 4))


# ---------------------------------------------------------------------------------------------------------
# Validation of a support
# ---------------------------------------------------------------------------------------------------------
class _Validator:
    """Fits ∞-AE on a support for each λ and scores validation (context = train, targets = val, mask = train)."""

    def __init__(self, data, lambdas: Sequence[float], depth: int, ks=DEFAULT_KS, n_negatives: int = 50):
        self.data = data
        self.lambdas = tuple(lambdas)
        self.depth = depth
        self.ks = ks
        self.context, self.targets, self.excluded = split_protocol(data, "val")
        self.context_dense = self.context.toarray().astype(np.float32)
        self.weights = M.propensity_weights(data.train)
        self.negatives = data.auc_negatives(n_negatives, 42) if n_negatives else None

    def evaluate(self, support: np.ndarray) -> tuple[float, dict[float, dict[str, float]]]:
        """Returns ``(best λ, {λ: validation metrics})``; ties keep the first λ of the grid."""
        support = np.asarray(support, dtype=np.float32)
        if not np.any(support.sum(axis=1) > 0):
            raise DataError("the sampled support has no interaction at all; nothing to fit ∞-AE on")
        K = ntk_matrix(support, depth=self.depth)
        k_ctx = ntk_matrix(self.context, support, depth=self.depth,
                           gram=gram_matrix(self.context_dense, support))
        solver = _RidgeSolver(K, support)
        out: dict[float, dict[str, float]] = {}
        best = None
        for lam in self.lambdas:
            alpha, _, _ = solver.solve(lam)
            acc = MetricAccumulator(self.targets, self.excluded, self.weights, self.negatives, self.ks)
            for rows in user_batches(self.data.n_users):
                acc.add(rows, k_ctx[rows] @ alpha, scores_writable=True)
            out[lam] = acc.result().metrics
            if best is None or out[lam][SELECT_BY] > out[best][SELECT_BY]:
                best = lam
        return best, out


# ---------------------------------------------------------------------------------------------------------
# Result and artifact
# ---------------------------------------------------------------------------------------------------------
def _dataset_identity(data, train: sp.spmatrix) -> dict[str, Any]:
    """``name``, ``n_users``, ``n_items`` and ``item_ids_sha256`` (None without item ids) of a dataset."""
    item_ids = getattr(data, "item_ids", None)
    return {"name": getattr(data, "name", ""), "n_users": int(train.shape[0]), "n_items": int(train.shape[1]),
            "item_ids_sha256": item_ids_hash(item_ids) if item_ids is not None else None}


def item_ids_hash(item_ids) -> str:
    """SHA-256 of the dataset's item ids in column order (ties a support's columns to the dataset's items)."""
    h = hashlib.sha256()
    h.update("\n".join(str(v) for v in np.asarray(item_ids).tolist()).encode("utf-8"))
    return h.hexdigest()


@dataclass
class DistillResult:
    """Outcome of :func:`distill`.

    Attributes:
      best_support: ``(μ, items)`` float32 CSR, the support with the best validation HR@100 (values in [0, 1]
        for ``support="soft"``, binary for ``"topk"`` and ``"hard"``).
      best_lambda: the inner λ picked on validation for that support (use it to fit ∞-AE on it).
      history: ``loss`` (one per step run), ``evaluations`` (a list of ``{step, lambda, metrics,
        metrics_by_lambda}``, the first at step 0 on the initial support), ``best_step``, ``best_metric``,
        ``stopped_early``, ``steps_run``.
      config: the :class:`DistillConfig`.
      timings: seconds (``total``, ``steps``, ``validation``, ``first_step`` (includes compilation),
        ``s_per_step`` (mean over steps after the first)).
      dataset: dataset card (``name``, ``n_users``, ``n_items``, ``item_ids_sha256``, ``avg_interactions``).
      prior: the final learnable prior ``Xˢ`` (dense ``(μ, items)`` float32), when the run produced it.
      test_metrics: test metrics of ∞-AE fitted on the support with ``best_lambda``, once the caller has
        measured them (:func:`distill` never looks at test data); saved in the data card.
    """

    best_support: sp.csr_matrix
    best_lambda: float
    history: dict[str, Any]
    config: DistillConfig
    timings: dict[str, float] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    prior: np.ndarray | None = field(default=None, repr=False)
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def best_val_metrics(self) -> dict[str, float]:
        for ev in self.history.get("evaluations", []):
            if ev["step"] == self.history.get("best_step"):
                return dict(ev["metrics"])
        return {}

    def data_card(self) -> dict[str, Any]:
        """JSON-ready description of the support (what :meth:`save` writes next to the matrix)."""
        s = self.best_support
        n_cells = s.shape[0] * s.shape[1]
        row_nnz = np.diff(s.indptr)
        c = self.config
        return {
            "kind": "DISTILL-CF support",
            "kit_version": __version__,
            "dataset": dict(self.dataset),
            "shape": list(s.shape),
            "budget": c.budget, "gamma": c.gamma, "tau": c.tau, "lambda2": c.lambda2, "seed": c.seed,
            "steps_run": self.history.get("steps_run"), "best_step": self.history.get("best_step"),
            "stopped_early": self.history.get("stopped_early"),
            "discretisation": c.support,
            "binary": bool(s.nnz == 0 or np.all(s.data == 1.0)),
            "best_lambda": self.best_lambda,
            "validation_metrics": self.best_val_metrics,
            "test_metrics": dict(self.test_metrics),
            "sparsity": {
                "nnz": int(s.nnz), "density": float(s.nnz / n_cells) if n_cells else 0.0,
                "sparsity": float(1.0 - s.nnz / n_cells) if n_cells else 1.0,
                "mean_items_per_user": float(row_nnz.mean()) if len(row_nnz) else 0.0,
                "mean_row_sum": float(np.asarray(s.sum(axis=1)).mean()) if s.shape[0] else 0.0,
            },
            "config": c.to_dict(),
            "timings": dict(self.timings),
            "history": self.history,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path/support.npz`` (scipy.sparse) and ``path/datacard.json``, each atomically. Returns ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        sp.save_npz(buf, sp.csr_matrix(self.best_support, dtype=np.float32), compressed=True)
        atomic_write_bytes(path / _SUPPORT_NAME, buf.getvalue())
        atomic_write_json(path / _CARD_NAME, self.data_card())
        return path


def load_distilled(path: str | os.PathLike) -> DistillResult:
    """Read a support written by :meth:`DistillResult.save` (the prior is not part of the artifact)."""
    path = Path(path)
    npz, card_path = path / _SUPPORT_NAME, path / _CARD_NAME
    for p in (npz, card_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: {path} is not a saved DISTILL-CF support")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    support = sp.csr_matrix(sp.load_npz(npz), dtype=np.float32)
    if list(support.shape) != list(card["shape"]):
        raise DataError(f"{npz} has shape {support.shape} but its data card says {card['shape']}")
    return DistillResult(support, float(card["best_lambda"]), card["history"], DistillConfig.from_dict(card["config"]),
                         card.get("timings", {}), card.get("dataset", {}),
                         test_metrics=card.get("test_metrics", {}))


# ---------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------
def _save_checkpoint(directory: Path, step: int, prior, opt_state, key, best_support, state: dict) -> None:
    """``ckpt_<step>.npz`` (arrays) then ``checkpoint.json`` (manifest naming it), both atomic; old npz removed."""
    directory.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(opt_state)
    arrays = {"prior": np.asarray(prior), "key": np.asarray(key)}
    for i, leaf in enumerate(leaves):
        arrays[f"opt_{i}"] = np.asarray(leaf)
    if best_support is not None:
        arrays["best_support"] = np.asarray(best_support)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    name = f"ckpt_{step:07d}.npz"
    atomic_write_bytes(directory / name, buf.getvalue())
    manifest = dict(state, step=step, arrays=name, n_opt_leaves=len(leaves))
    atomic_write_json(directory / _CHECKPOINT_MANIFEST, manifest)
    for old in directory.glob("ckpt_*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _load_checkpoint(directory: Path, opt_state_template):
    manifest_path = directory / _CHECKPOINT_MANIFEST
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    with np.load(directory / manifest["arrays"]) as z:
        arrays = {k: z[k] for k in z.files}
    treedef = jax.tree_util.tree_structure(opt_state_template)
    leaves = [jnp.asarray(arrays[f"opt_{i}"]) for i in range(manifest["n_opt_leaves"])]
    opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
    return manifest, jnp.asarray(arrays["prior"]), opt_state, jnp.asarray(arrays["key"]), arrays.get("best_support")


# ---------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------
def initial_prior(train: sp.csr_matrix, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense train rows of ``budget`` distinct random users (seeded) and their indices."""
    n_users = train.shape[0]
    if budget > n_users:
        raise ParameterError(f"budget μ={budget} exceeds the {n_users} users of the dataset")
    idx = np.sort(np.random.default_rng(seed).choice(n_users, size=budget, replace=False))
    return train[idx].toarray().astype(np.float32), idx


def _batch_rows(config: DistillConfig, step: int, n_users: int) -> np.ndarray:
    """Users of ``step``'s batch: a function of (seed, step) only, so a resumed run draws the same batches."""
    rng = np.random.default_rng([config.seed, step])
    return np.sort(rng.choice(n_users, size=config.batch_size, replace=False))


def distill(data, config: DistillConfig | None = None, *, progress: bool = True,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = True,
            stop_at: int | None = None) -> DistillResult:
    """Run DISTILL-CF on ``data`` (a :class:`~infae_kit.data.RecDataset`) and return the best support found.

    Each step samples X̂ˢ, fits ∞-AE on it in closed form, scores real users and takes one Adam step on the
    prior (the key advances once per step). At step 0 and on the paper's schedule (``config.eval_steps`` and
    every ``log_freq`` steps; also at the last step if no validation happened yet) the support is discretised
    (``config.support``), ∞-AE is fitted on it for every λ of ``val_lambdas`` and validated on HR@100; the λ
    picked becomes the inner λ of the following steps, and the best support (validations after step 0) is kept.
    The run stops after ``config.steps`` steps, or at a validation that finds no improvement when the best is
    ``patience`` or more steps old.

    Args:
      data: the dataset (train rows are the real users; val drives λ and early stopping).
      config: hyper-parameters (default :class:`DistillConfig()`).
      progress: show a tqdm bar with the loss and the last validation HR@100.
      checkpoint_dir: where checkpoints go (needed when ``config.checkpoint_every > 0``).
      resume: continue from the checkpoint in ``checkpoint_dir`` if there is one. The resumed run ends
        exactly where an uninterrupted run with the same config ends.
      stop_at: stop after this step without the end-of-run validation (to split a run across sessions: a
        later call with ``resume=True`` continues). A checkpoint is written at that step if checkpoints are on.

    Returns:
      :class:`DistillResult`.
    """
    from tqdm.auto import tqdm

    config = DistillConfig() if config is None else config
    if not isinstance(config, DistillConfig):
        raise ParameterError(f"config must be a DistillConfig, got {type(config).__name__}")
    if config.checkpoint_every and checkpoint_dir is None:
        raise ParameterError("config.checkpoint_every > 0 needs a checkpoint_dir")
    if stop_at is not None and (not _is_int(stop_at) or stop_at < 1):
        raise ParameterError(f"stop_at must be a positive integer or None, got {stop_at!r}")
    train = sp.csr_matrix(data.train, dtype=np.float32)
    n_users, n_items = train.shape
    if train.nnz == 0:
        raise DataError("the train matrix has no interactions")
    if config.batch_size > n_users:
        raise ParameterError(f"batch_size={config.batch_size} exceeds the {n_users} users of the dataset")
    avg_interactions = train.nnz / n_users
    t_start = time.perf_counter()

    prior_np, init_users = initial_prior(train, config.budget, config.seed)
    optimizer, step_fn = _make_step(config, avg_interactions)
    prior = jnp.asarray(prior_np)
    opt_state = optimizer.init(prior)
    key = jax.random.PRNGKey(config.seed)
    validator = _Validator(data, config.val_lambdas, config.depth)
    dataset_card = dict(_dataset_identity(data, train), avg_interactions=float(avg_interactions))

    history: dict[str, Any] = {"loss": [], "evaluations": [], "best_step": None, "best_metric": None,
                               "stopped_early": False, "steps_run": 0, "initial_users": init_users.tolist()}
    best_support: np.ndarray | None = None
    lam = None
    timings = {"steps": 0.0, "validation": 0.0, "first_step": None}
    start_step = 1
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

    loaded = _load_checkpoint(ckpt_dir, opt_state) if (ckpt_dir is not None and resume) else None
    if loaded is not None:
        manifest, prior, opt_state, key_data, best_support = loaded
        if manifest["config"] != config.to_dict():
            raise ParameterError(
                f"the checkpoint in {ckpt_dir} was written with a different config "
                f"({manifest['config']}); pass resume=False or another checkpoint_dir")
        key = jnp.asarray(key_data, dtype=jnp.uint32)
        history, lam = manifest["history"], manifest["lambda"]
        start_step = manifest["step"] + 1
        timings.update(manifest.get("timings", {}))
    else:
        t = time.perf_counter()
        # Step 0: the initial support is the real users' rows themselves (the code validates them as is).
        lam, by_lam = validator.evaluate(prior_np)
        timings["validation"] += time.perf_counter() - t
        history["evaluations"].append({"step": 0, "lambda": lam, "metrics": by_lam[lam],
                                       "metrics_by_lambda": {str(k): v for k, v in by_lam.items()}})

    dense_all = jnp.asarray(train.toarray()) if config.batch_size == -1 else None
    last_hr = history["evaluations"][-1]["metrics"][SELECT_BY] if history["evaluations"] else float("nan")
    done = history.get("stopped_early", False) or start_step > config.steps
    bar = tqdm(range(start_step, config.steps + 1), desc="DISTILL-CF", disable=not progress or done,
               initial=start_step - 1, total=config.steps, leave=False)

    def state_dict():
        return {"config": config.to_dict(), "history": history, "lambda": lam, "timings": timings}

    step = start_step - 1
    for step in bar:
        if done:
            break
        t = time.perf_counter()
        if dense_all is not None:
            x_batch = dense_all
        else:
            x_batch = jnp.asarray(train[_batch_rows(config, step, n_users)].toarray())
        prior, opt_state, key, loss = step_fn(prior, opt_state, key, x_batch, jnp.float32(lam))
        loss = float(loss)
        dt = time.perf_counter() - t
        if timings["first_step"] is None:
            timings["first_step"] = dt
        else:
            timings["steps"] += dt
        if not math.isfinite(loss):
            from .errors import NumericalError
            raise NumericalError(f"DISTILL-CF loss became {loss} at step {step}; lower lr or raise val_lambdas")
        history["loss"].append(loss)
        history["steps_run"] = step
        last = step == config.steps
        evaluate_now = config.is_eval_step(step) or (last and history["best_step"] is None)
        if stop_at is not None and step == stop_at and not config.is_eval_step(step):
            evaluate_now = False
        if evaluate_now:
            t = time.perf_counter()
            support = sample_support(prior, _support_key(key), config)
            lam, by_lam = validator.evaluate(support)
            timings["validation"] += time.perf_counter() - t
            metric = by_lam[lam][SELECT_BY]
            last_hr = metric
            history["evaluations"].append({"step": step, "lambda": lam, "metrics": by_lam[lam],
                                           "metrics_by_lambda": {str(k): v for k, v in by_lam.items()}})
            if history["best_metric"] is None or metric > history["best_metric"]:
                history["best_metric"], history["best_step"] = metric, step
                history["best_lambda"] = lam
                best_support = support
            elif step - history["best_step"] >= config.patience:
                history["stopped_early"] = True
        bar.set_postfix(loss=f"{loss:.4f}", hr100=f"{last_hr:.2f}", lam=f"{lam:g}")
        stopping = history["stopped_early"] or (stop_at is not None and step >= stop_at)
        if ckpt_dir is not None and config.checkpoint_every and (
                step % config.checkpoint_every == 0 or stopping or last):
            _save_checkpoint(ckpt_dir, step, prior, opt_state, key, best_support, state_dict())
        if stopping:
            break
    bar.close()

    n_timed = max(len(history["loss"]) - 1, 0)
    timings["total"] = time.perf_counter() - t_start  # this call only
    timings["s_per_step"] = timings["steps"] / n_timed if n_timed else float("nan")
    if best_support is None:
        # Only when stopped (stop_at) before any scheduled validation: report the current support, unvalidated.
        best_support = sample_support(prior, _support_key(key), config)
    best_lambda = history.get("best_lambda", lam)
    support_csr = sp.csr_matrix(np.asarray(best_support, dtype=np.float32))
    support_csr.eliminate_zeros()
    return DistillResult(support_csr, float(best_lambda), history, config, timings, dataset_card,
                         np.asarray(prior))


# ---------------------------------------------------------------------------------------------------------
# Recorded configurations and the on-disk cache of distilled supports
# ---------------------------------------------------------------------------------------------------------
PRESETS = ("recorded", "ci", "paper-code")
CI_CONFIG: dict[str, Any] = {"budget": 50, "gamma": 50, "steps": 30}
"""CI-sized run (about a minute on 2 CPUs): too short to reach Table 1, enough to exercise every step."""
RECORDED_CONFIGS: dict[str, dict[str, Any]] = {
    # The best configuration measured per dataset by `python -m infae_kit.distill_search` (selected on validation
    # NDCG@10; see README "DISTILL-CF"); what notebook 03 runs by default. Datasets not listed run the paper
    # code's defaults (DistillConfig()).
    # magazine: tau in {5, 10} x gamma in {100, 200}, 200 steps; val NDCG@10 1.95 (tau 5, gamma 200) > 1.91 > 1.84.
    "magazine": {"budget": 500, "gamma": 200, "tau": 5.0, "lambda2": 1e-3, "steps": 200},
    "ml-1m": {"budget": 500, "gamma": 200, "tau": 10.0, "lambda2": 1e-3, "steps": 300},
}


def distill_config_for(dataset: str, preset: str = "recorded", **overrides) -> DistillConfig:
    """The :class:`DistillConfig` of ``preset`` for ``dataset``, with ``overrides`` (None values ignored) on top.

    ``"recorded"``: the best configuration measured for the dataset (:data:`RECORDED_CONFIGS`; the paper code's
    defaults for a dataset without one). ``"paper-code"``: the paper code's defaults. ``"ci"``: a CI-sized run
    (:data:`CI_CONFIG`). Runs of at most 120 steps validate every ``steps // 3`` steps (besides the paper's
    early steps) so that they get a few validations; longer ones keep the paper's every-40 schedule.
    """
    if preset not in PRESETS:
        raise ParameterError(f"preset must be one of {PRESETS}, got {preset!r}")
    base: dict[str, Any] = {}
    if preset == "recorded":
        base = dict(RECORDED_CONFIGS.get(dataset, {}))
    elif preset == "ci":
        base = dict(CI_CONFIG)
    base.update({k: v for k, v in overrides.items() if v is not None})
    steps = int(base.get("steps", DistillConfig.steps))
    base.setdefault("log_freq", min(40, max(steps // 3, 1)))
    return DistillConfig(**base)


def dataset_fingerprint(data) -> dict[str, Any]:
    """Name, shape, item-id hash and a SHA-256 of the train matrix's pattern: what a cached support depends on."""
    train = sp.csr_matrix(data.train)
    h = hashlib.sha256()
    for arr in (train.indptr.astype(np.int64), train.indices.astype(np.int64), train.data.astype(np.float32)):
        h.update(arr.tobytes())
    return dict(_dataset_identity(data, train), train_sha256=h.hexdigest())


def distill_cache_path(data, config: DistillConfig, cache_dir: str | os.PathLike) -> Path:
    """``cache_dir/<dataset>-mu<μ>-<12 hex>``, the hex a hash of the config and the dataset fingerprint."""
    blob = json.dumps({"config": config.to_dict(), "data": dataset_fingerprint(data)}, sort_keys=True)
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(getattr(data, "name", "") or "data"))
    return Path(cache_dir) / f"{name}-mu{config.budget}-{digest}"


def distill_cached(data, config: DistillConfig, cache_dir: str | os.PathLike, *, progress: bool = True,
                   checkpoint_every: int = 20, reuse: bool = True) -> tuple[DistillResult, bool]:
    """:func:`distill`, or the support an earlier identical run saved: ``(result, loaded_from_cache)``.

    The run's directory is :func:`distill_cache_path`; it holds the artifact (``support.npz`` +
    ``datacard.json``, written last and atomically) and, while the run is going, checkpoints every
    ``checkpoint_every`` steps in ``checkpoint/``, so an interrupted run resumes where it stopped (and ends
    where an uninterrupted run ends). A cached result has no ``prior``. ``reuse=False`` deletes that directory
    first (artifact and checkpoints) and distils again from scratch.
    """
    path = distill_cache_path(data, config, cache_dir)
    if not reuse and path.exists():
        shutil.rmtree(path)
    if (path / _CARD_NAME).exists() and (path / _SUPPORT_NAME).exists():
        return load_distilled(path), True
    run_config = config if config.checkpoint_every else dataclasses.replace(config, checkpoint_every=checkpoint_every)
    result = distill(data, run_config, progress=progress, checkpoint_dir=path / "checkpoint", resume=True)
    result.config = config
    result.save(path)
    return result, False
