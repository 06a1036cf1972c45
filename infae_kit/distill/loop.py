"""DISTILL-CF: synthesise a small support set of fake users for ∞-AE (paper §4, Algorithm 3, Appendix B.4).

A learnable prior ``Xˢ`` (``μ × items``, initialised with the dense train rows of μ random real users) is
optimised with Adam through the closed-form ∞-AE. One outer step, as the paper's code does it
(``noveens/distill_cf``; see ``docs/evaluation.md`` and ``docs/design.md``, "DISTILL-CF")::

    X̂ˢ     = clip(Σ_{k=1..γ} softmax((Xˢ + G_k) / τ), −1, 1)        multi-step Gumbel sampling, G_k ~ Gumbel
    K_ss   = Θ(X̂ˢ, X̂ˢ),   α = (K_ss + λ · trace(K_ss)/μ · I)⁻¹ X̂ˢ    inner ∞-AE, closed form
    scores = Θ(X_b, X̂ˢ) α                                            real users' train rows X_b
    loss   = mean_u −Σ_i log_softmax(scores_u)_i · X_b[u, i]          "multinomial" (the code; default)
           + λ₂ · mean_u Σ_i X̂ˢ[u, i] / (train interactions / users)

The printed Eq. 3 uses a binary cross-entropy instead; ``loss="bce"`` implements it with the scores read as
probabilities clipped to ``[1e-6, 1 − 1e-6]`` (Eq. 3 takes ``log(K α)`` directly). The inner λ is not fixed: it
is re-picked over ``val_lambdas`` on validation HR@100 at every validation (B.4), starting from the λ picked on
the initial support (step 0), exactly like the code.

Sampling is wrapped in a :func:`jax.custom_vjp` whose forward and backward passes both scan over the γ samples.
The backward reads the draws the forward kept, within a memory budget (:func:`sampler_memory_mb`, default
1,024 MiB), and re-draws the others from their keys, so memory is ``O(μ · items)`` plus that budget whatever γ is.

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

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from infae_kit.caching import dataset_identity
from infae_kit.checks import is_int
from infae_kit.distill.artifact import DistillResult, load_checkpoint, save_checkpoint
from infae_kit.distill.config import SELECT_BY, DistillConfig
from infae_kit.distill.sampler import (
    gumbel_sum_backward,
    gumbel_sum_forward,
    gumbel_sum_forward_storing,
    hard_gumbel_support,
    multi_step_gumbel,
    sample_seeds,
    stored_draws,
)
from infae_kit.errors import DataError, NumericalError, ParameterError
from infae_kit.evaluation.protocol import (
    DEFAULT_KS,
    MetricAccumulator,
    propensity_weights_of,
    split_protocol,
    user_batches,
)
from infae_kit.io_utils import progress_bar
from infae_kit.models.infinite_ae import RidgeSolver
from infae_kit.models.ntk import ntk_matrix, ntk_matrix_jax

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset

_BCE_EPS = 1e-6

__all__ = [
    "DEFAULT_SAMPLER_MEMORY_MB",
    "SAMPLER_MEMORY_ENV",
    "batch_rows",
    "cardinality_penalty",
    "continues_run",
    "distill",
    "distill_objective",
    "initial_prior",
    "kept_draws",
    "make_step",
    "real_user_batch",
    "reconstruction_loss",
    "sample_support",
    "sampler_memory_mb",
    "topk_binarize",
]


def reconstruction_loss(xs: jax.Array, x_batch: jax.Array, lam: float | jax.Array, *, loss: str = "multinomial",
                        depth: int = 1) -> jax.Array:
    """Loss of ∞-AE fitted on the support ``xs`` at reconstructing the real users ``x_batch``.

    Args:
      xs: ``(μ, items)`` sampled support X̂ˢ.
      x_batch: ``(b, items)`` dense train rows of real users (both the ∞-AE input and the target).
      lam: inner ridge λ (scaled by ``trace(K)/μ``).
      loss, depth: as in :class:`DistillConfig`.

    Returns:
      scalar: the mean over the ``b`` users.
    """
    mu = xs.shape[0]
    k_ss = ntk_matrix_jax(xs, depth=depth)
    k_reg = k_ss + jnp.abs(lam) * jnp.trace(k_ss) / mu * jnp.eye(mu, dtype=xs.dtype)
    alpha = jax.scipy.linalg.solve(k_reg, xs, assume_a="pos")
    scores = ntk_matrix_jax(x_batch, xs, depth=depth) @ alpha
    if loss == "multinomial":
        return jnp.mean(-jnp.sum(jax.nn.log_softmax(scores, axis=-1) * x_batch, axis=-1))
    p = jnp.clip(scores, _BCE_EPS, 1.0 - _BCE_EPS)
    return jnp.mean(-jnp.sum(x_batch * jnp.log(p) + (1.0 - x_batch) * jnp.log1p(-p), axis=-1))


def cardinality_penalty(xs: jax.Array, lambda2: float, avg_interactions: float) -> jax.Array:
    """``λ₂ · mean_u Σ_i X̂ˢ[u, i] / (train interactions / users)`` for the ``(μ, items)`` support ``xs``."""
    return lambda2 * jnp.mean(jnp.sum(xs, axis=-1)) / avg_interactions


def distill_objective(prior: jax.Array, key: jax.Array, x_batch: jax.Array, lam: float | jax.Array, *, gamma: int,
                      tau: float, lambda2: float, avg_interactions: float, loss: str = "multinomial",
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
    return (reconstruction_loss(xs, x_batch, lam, loss=loss, depth=depth)
            + cardinality_penalty(xs, lambda2, avg_interactions))


SAMPLER_MEMORY_ENV = "INFAE_SAMPLER_MEMORY_MB"
DEFAULT_SAMPLER_MEMORY_MB = 1024
"""Memory (MiB) that a DISTILL-CF step may spend keeping the forward pass's Gumbel draws for the backward pass."""


def sampler_memory_mb(value: float | None = None) -> float:
    """The draw-store budget in MiB: ``value``, else ``$INFAE_SAMPLER_MEMORY_MB``, else 1024.

    A step keeps as many of its γ draws as fit (``⌊budget / (μ · items · 4 B)⌋``, at most γ, see
    :func:`kept_draws`) so that the backward pass reads them instead of re-drawing them; 0 re-draws every sample
    (memory then does not grow with γ).
    The values computed do not depend on it: bit for bit the same at the datasets' shapes (the tests check
    Magazine and ML-1M), equal to float32 rounding at toy sizes, where XLA may fuse the two ways differently.
    """
    source = "sampler_memory_mb"
    if value is None:
        raw = os.environ.get(SAMPLER_MEMORY_ENV, "").strip()
        if not raw:
            return float(DEFAULT_SAMPLER_MEMORY_MB)
        source = f"${SAMPLER_MEMORY_ENV}"
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ParameterError(f"{source} must be a number of MiB >= 0 (0 re-draws every Gumbel sample in the "
                             f"backward pass), got {value!r}")
    return float(value)


def kept_draws(gamma: int, shape: tuple[int, int], sampler_memory: float | None = None, itemsize: int = 4) -> int:
    """How many of a step's γ draws of a ``shape`` (μ, items) sample the budget :func:`sampler_memory_mb` keeps."""
    return stored_draws(int(sampler_memory_mb(sampler_memory) * 2 ** 20), gamma, shape, itemsize)


def make_step(config: DistillConfig, avg_interactions: float, *, sampler_memory: float | None = None
              ) -> tuple[optax.GradientTransformation, Callable[..., tuple[jax.Array, Any, jax.Array, jax.Array]]]:
    """``(optimizer, step)``; ``step(prior, opt_state, key, batches, lam) -> (prior, opt_state, key, loss)``.

    ``batches`` is an iterable of ``(b, items)`` dense real-user rows (numpy or JAX; one for full batch,
    ``config.accumulate`` for gradient accumulation), consumed one at a time, so that only one batch is in
    memory. A step samples the support once (``S`` and the per-draw row normalisers of
    :func:`~infae_kit.distill.sampler.gumbel_sum_forward`), takes the gradient of each batch's
    :func:`reconstruction_loss` with respect to the sampled support, averages them, adds the cardinality
    penalty's and pulls the sum back through the sampler once (:func:`gumbel_sum_backward`): the same
    gradient as differentiating :func:`distill_objective` (averaged over the batches), with one sampler pass
    each way whatever the number of batches. The key advances once per step.

    ``sampler_memory`` (MiB, default :func:`sampler_memory_mb`) bounds the draws the forward pass keeps for the
    backward pass (:func:`~infae_kit.distill.sampler.gumbel_sum_forward_storing`): a kept draw is read back
    instead of re-drawn. The buffer is allocated at the first step and reused in place; results do not depend
    on it (see :func:`sampler_memory_mb`).
    """
    memory_mb = sampler_memory_mb(sampler_memory)
    optimizer = optax.adam(config.lr)
    gamma, tau, noise = config.gamma, float(config.tau), config.noise
    lambda2, avg = float(config.lambda2), float(avg_interactions)

    def sample(prior, key, store):
        key_next, sub = jax.random.split(key)
        seeds = sample_seeds(sub, gamma, noise)
        if store is None:
            total, norms = gumbel_sum_forward(prior, seeds, tau, noise)
        else:
            total, norms, store = gumbel_sum_forward_storing(prior, seeds, store, tau, noise)
        return total, norms, seeds, key_next, store

    def batch_loss_and_grad(total, x_batch, lam):
        xs = jnp.clip(total, -1.0, 1.0)
        return jax.value_and_grad(reconstruction_loss)(xs, x_batch, lam, loss=config.loss, depth=config.depth)

    def pull_back(prior, seeds, total, norms, g_xs, rec_loss, store):
        xs, clip_vjp = jax.vjp(lambda t: jnp.clip(t, -1.0, 1.0), total)
        card, g_card = jax.value_and_grad(cardinality_penalty)(xs, lambda2, avg)
        g_total = clip_vjp(g_xs + g_card)[0]
        return gumbel_sum_backward(prior, seeds, total, norms, g_total, tau, noise, store), rec_loss + card

    def apply_update(grad, opt_state, prior):
        updates, opt_state = optimizer.update(grad, opt_state, prior)
        return optax.apply_updates(prior, updates), opt_state

    # Separate jitted programs, not one: compiled together with the Adam update, XLA's CPU schedule of the
    # sampler's backward scan ran 2.2× slower (Magazine, μ=500, γ=200: 4.8 s → 2.15 s per step).
    # The draw store is donated to the sampler, which writes it in place (every backend); the Adam state only
    # off CPU, where donation saves device memory.
    donate = (1, 2) if jax.default_backend() != "cpu" else ()
    sample_fn = jax.jit(sample, donate_argnums=(2,))
    batch_fn = jax.jit(batch_loss_and_grad)
    pull_back_fn = jax.jit(pull_back)
    update_fn = jax.jit(apply_update, donate_argnums=donate)
    kept: dict[str, jax.Array | None] = {"store": None}

    def draw_store(prior):
        n_kept = kept_draws(gamma, prior.shape, memory_mb, np.dtype(prior.dtype).itemsize)
        store = kept["store"]
        if n_kept and (store is None or store.shape != (n_kept, *prior.shape) or store.dtype != prior.dtype):
            store = jnp.zeros((n_kept, *prior.shape), prior.dtype)
        kept["store"] = None  # donated below: its old buffer is not valid after the call
        return store if n_kept else None

    def step(prior, opt_state, key, batches, lam):
        with _single_threaded_blas():
            total, norms, seeds, key_next, store = sample_fn(prior, key, draw_store(prior))
            g_sum, loss_sum, n = None, None, 0
            for x_batch in batches:
                loss_b, g_b = batch_fn(total, jnp.asarray(x_batch, dtype=total.dtype), lam)
                g_sum = g_b if g_sum is None else g_sum + g_b
                loss_sum = loss_b if loss_sum is None else loss_sum + loss_b
                n += 1
            if n == 0:
                raise ParameterError("a DISTILL-CF step needs at least one batch of real users")
            if n > 1:
                g_sum, loss_sum = g_sum / n, loss_sum / n
            grad, loss = pull_back_fn(prior, seeds, total, norms, g_sum, loss_sum, store)
            kept["store"] = store
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


def sample_support(prior: jax.Array | np.ndarray, key: jax.Array, config: DistillConfig) -> np.ndarray:
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
    """Fits ∞-AE on a support for each λ and scores validation (context = train, targets = val, mask = train).

    Users are scored in blocks of ``block_users`` read from the sparse context matrix, so memory is
    O(block · items + users · μ-free metric state) — no ``users × items`` dense matrix. ``users > 0`` validates
    a seeded sample of that many users instead of all of them.
    """

    def __init__(self, data, lambdas: Sequence[float], depth: int, ks=DEFAULT_KS, n_negatives: int = 50,
                 users: int = -1, seed: int = 0, block_users: int = 4096):
        self.lambdas = tuple(lambdas)
        self.depth = depth
        self.ks = ks
        self.block_users = block_users
        context, targets, excluded = split_protocol(data, "val")
        negatives = data.auc_negatives(n_negatives, 42) if n_negatives else None
        if 0 < users < data.n_users:
            rows = np.sort(np.random.default_rng([seed, users]).choice(data.n_users, size=users, replace=False))
            context, targets, excluded = context[rows], targets[rows], excluded[rows]
            negatives = negatives[rows] if negatives is not None else None
        self.context, self.targets, self.excluded, self.negatives = context, targets, excluded, negatives
        self.weights = propensity_weights_of(data)

    def evaluate(self, support: np.ndarray) -> tuple[float, dict[float, dict[str, float]]]:
        """Returns ``(best λ, {λ: validation metrics})``; ties keep the first λ of the grid."""
        support = np.asarray(support, dtype=np.float32)
        if not np.any(support.sum(axis=1) > 0):
            raise DataError("the sampled support has no interaction at all; nothing to fit ∞-AE on")
        solver = RidgeSolver(ntk_matrix(support, depth=self.depth), support)
        alphas = {lam: solver.solve(lam)[0] for lam in self.lambdas}
        accs = {lam: MetricAccumulator(self.targets, self.excluded, self.weights, self.negatives, self.ks)
                for lam in self.lambdas}
        for rows in user_batches(self.context.shape[0], self.block_users):
            ctx = self.context[rows]
            k_ctx = ntk_matrix(ctx, support, depth=self.depth)
            for lam in self.lambdas:
                accs[lam].add(rows, k_ctx @ alphas[lam], scores_writable=True)
        out: dict[float, dict[str, float]] = {}
        best = None
        for lam in self.lambdas:
            out[lam] = accs[lam].result().metrics
            if best is None or out[lam][SELECT_BY] > out[best][SELECT_BY]:
                best = lam
        return best, out


def continues_run(state: dict, config: DistillConfig) -> bool:
    """Whether a checkpoint's run (``state``: its manifest) is the start of ``config``'s longer run.

    True when the two configs differ only in ``steps``, the checkpoint's run has fewer, did not stop early, and
    did not validate at its last step only because it was the last (the longer run would not have): the longer
    run resumed from it then ends exactly where it would have ended from scratch.
    """
    old, new = dict(state["config"]), config.to_dict()
    old_steps, new_steps = old.pop("steps", None), new.pop("steps")
    if old != new or not is_int(old_steps) or old_steps >= new_steps or state["history"].get("stopped_early"):
        return False
    last_validated = any(e["step"] == old_steps for e in state["history"]["evaluations"])
    return state["step"] < old_steps or not last_validated or config.is_eval_step(old_steps)


def initial_prior(train: sp.csr_matrix, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense train rows of ``budget`` distinct random users (seeded) and their indices."""
    n_users = train.shape[0]
    if budget > n_users:
        raise ParameterError(f"budget μ={budget} exceeds the {n_users} users of the dataset")
    idx = np.sort(np.random.default_rng(seed).choice(n_users, size=budget, replace=False))
    return train[idx].toarray().astype(np.float32), idx


def batch_rows(config: DistillConfig, step: int, n_users: int, part: int = 0) -> np.ndarray:
    """Sorted users of ``step``'s batch number ``part``: a function of (seed, step, part) only, so that a resumed
    run draws the same batches."""
    rng = np.random.default_rng([config.seed, step] if part == 0 else [config.seed, step, part])
    return np.sort(rng.choice(n_users, size=config.batch_size, replace=False))


def real_user_batch(train: sp.csr_matrix, config: DistillConfig, step: int, part: int = 0) -> np.ndarray:
    """The dense ``(batch_size, items)`` float32 train rows of :func:`batch_rows` (only those rows densified)."""
    return train[batch_rows(config, step, train.shape[0], part)].toarray().astype(np.float32, copy=False)


def distill(data: RecDataset, config: DistillConfig | None = None, *, progress: bool = True,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = True,
            stop_at: int | None = None, sampler_memory: float | None = None) -> DistillResult:
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
        exactly where an uninterrupted run with the same config ends. A checkpoint of a shorter run of the same
        config (only ``steps`` differs) is continued as well when :func:`continues_run` says that gives the
        same run.
      stop_at: stop after this step without the end-of-run validation (to split a run across sessions: a
        later call with ``resume=True`` continues). A checkpoint is written at that step if checkpoints are on.
      sampler_memory: MiB a step may spend keeping its Gumbel draws for the backward pass (default
        :func:`sampler_memory_mb`: ``$INFAE_SAMPLER_MEMORY_MB`` or 1024); a speed setting, not part of the
        config: the results do not depend on it (see :func:`sampler_memory_mb`).

    Returns:
      :class:`DistillResult`.
    """
    config = DistillConfig() if config is None else config
    if not isinstance(config, DistillConfig):
        raise ParameterError(f"config must be a DistillConfig, got {type(config).__name__}")
    if config.checkpoint_every and checkpoint_dir is None:
        raise ParameterError("config.checkpoint_every > 0 needs a checkpoint_dir")
    if stop_at is not None and (not is_int(stop_at) or stop_at < 1):
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
    optimizer, step_fn = make_step(config, avg_interactions, sampler_memory=sampler_memory)
    prior = jnp.asarray(prior_np)
    opt_state = optimizer.init(prior)
    key = jax.random.PRNGKey(config.seed)
    validator = _Validator(data, config.val_lambdas, config.depth, users=config.val_users, seed=config.seed)
    dataset_card = dict(dataset_identity(data, train), avg_interactions=float(avg_interactions))

    history: dict[str, Any] = {"loss": [], "evaluations": [], "best_step": None, "best_metric": None,
                               "stopped_early": False, "steps_run": 0, "initial_users": init_users.tolist()}
    best_support: np.ndarray | None = None
    lam = None
    timings = {"steps": 0.0, "validation": 0.0, "first_step": None}
    start_step = 1
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

    loaded = load_checkpoint(ckpt_dir, prior, opt_state) if (ckpt_dir is not None and resume) else None
    if loaded is not None:
        manifest, prior, opt_state, key_data, best_support = loaded
        if manifest["config"] != config.to_dict() and not continues_run(manifest, config):
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
    bar = progress_bar(range(start_step, config.steps + 1), desc="DISTILL-CF", enabled=progress and not done,
                       initial=start_step - 1, total=config.steps)

    def state_dict():
        return {"config": config.to_dict(), "history": history, "lambda": lam, "timings": timings}

    step = start_step - 1
    for step in bar:
        if done:
            break
        t = time.perf_counter()
        if dense_all is not None:
            batches = (dense_all,)
        else:
            batches = (real_user_batch(train, config, step, part) for part in range(config.accumulate))
        prior, opt_state, key, loss = step_fn(prior, opt_state, key, batches, jnp.float32(lam))
        loss = float(loss)
        dt = time.perf_counter() - t
        if timings["first_step"] is None:
            timings["first_step"] = dt
        else:
            timings["steps"] += dt
        if not math.isfinite(loss):
            bar.fail()
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
            save_checkpoint(ckpt_dir, step, prior, opt_state, key, best_support, state_dict())
        if stopping:
            break
    bar.finish()  # an early stop is a normal end

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


