"""AR-CF's user-generation sub-network: a conditional GAN that synthesises N virtual users (paper App. B.6, Fig. 10).

The paper (Appendix B.6, "How does DISTILL-CF compare to data augmentation approaches?") compares DISTILL-CF with
AR-CF (Chae, Kim, Chau & Kim, SIGIR 2020, "AR-CF: Augmenting Virtual Users and Items in Collaborative Filtering
for Addressing Cold-Start Problems"), "which leverages two conditional GANs to generate fake users and fake
items", keeping "only AR-CF's user generation sub-network" and training EASE *only* on the synthesised users,
tested on the real test set (Fig. 10, ML-1M, HR@10 against the number of users). This module is that
sub-network, in plain JAX + optax (parameters are lists of ``{"w", "b"}`` dicts of jnp arrays).

**What AR-CF is, and what we could establish.** AR-CF's public abstract says it generates "virtual, but
plausible neighbors for cold-start users or items" and augments the rating matrix with them; each virtual user
is generated *from a real user* (the conditional GAN's condition) and comes with a whole purchase vector. Its
generator/discriminator follow the authors' earlier CFGAN (Chae et al., CIKM 2018, "CFGAN: A Generic
Collaborative Filtering Framework based on Generative Adversarial Networks"): *vector-wise* adversarial training,
where the generator outputs a user's entire item vector through a sigmoid and the discriminator judges a
(purchase vector, condition) pair, plus CFGAN's *zero-reconstruction* (ZR) regulariser. The AR-CF paper's full
text (exact layer sizes, its condition vector, its learning rates) was not available to us and no official code
is public, so the choices below are ours, made to stay within that design; each is stated so it can be changed:

* **Condition c_u: a real user's low-rank embedding.** AR-CF conditions each virtual user on a real user
  (its "neighbour"); we take the real user's rank-``condition_dim`` embedding ``U_k √Σ_k`` from a seeded
  randomised truncated SVD of the binary train matrix (Halko et al., 2011), scaled to unit variance. Why not the
  raw purchase vector (CFGAN's condition)? Then the generator can copy the condition and the "virtual" users are
  copies of real ones, i.e. user-RNS; a compressed embedding makes G produce a *neighbour* of the user (its
  taste, not its exact items), which is what AR-CF's virtual neighbours are. The embedding's norm carries the
  user's activity, so G also learns how many items a user of that kind has.
* **Generator** ``G(z, c) = σ(MLP([z ; c]))``: noise ``z ~ N(0, I_noise_dim)`` concatenated with ``c``, ReLU
  hidden layers ``generator_hidden``, a sigmoid output over all items (an interaction-probability vector).
  The noise lets one real user seed many different virtual neighbours (CFGAN, whose G scores one given user,
  feeds it no noise; a generator of several virtual users per real one needs it).
* **Discriminator** ``D(x, c) = MLP([x ; c])``: LeakyReLU(0.2) hidden layers ``discriminator_hidden``, one
  real/fake logit. Real pairs are (a real user's binary train row, its condition); fake pairs are (G's
  probability vector for that condition, the condition).
* **Losses.** D: the standard cGAN cross-entropy, ``softplus(−D(x_u, c_u)) + softplus(D(G(z, c_u), c_u))``.
  G: the non-saturating GAN loss ``softplus(−D(G(z, c_u), c_u))`` plus CFGAN's ZR term
  ``zr_weight · Σ_{j ∈ ZR_u} G(z, c_u)_j²``, where ``ZR_u`` is a fresh random ``zr_ratio`` share of the items
  u did not interact with (CFGAN's grids: ratio 10–90 %, weight 0.01–0.5). CFGAN's *partial masking* is left
  out: it hides most of G's output from D (only u's items and a sample), which suits CFGAN's use of G as a
  scorer of u's own vector but not a virtual user, whose items outside the seed user's history are the point.
* **Training.** Adam (β₁ = 0.5, the usual GAN setting) for D and for G; every mini-batch of real users does one
  D step then one G step, the epoch's batches run in one jit-compiled ``lax.scan`` (as
  :mod:`infae_kit.models.competitors` does), ``epochs`` passes over the users with at least one train interaction.
  There is no validation-based early stopping: GAN losses do not measure sample quality, and the paper gives no
  criterion; the losses per epoch are kept in ``history``.
* **Binary users** (:meth:`ARCFModel.generate`). Virtual user v is seeded by a real user s(v) drawn uniformly
  (one seeded permutation of the real users, repeated when N exceeds them) and gets ``p = G(z_v, c_{s(v)})``;
  ``binarize="topk"`` (default) keeps the ``k_v`` items of largest ``p`` with ``k_v`` = the seed user's train
  count, so the synthetic users' activity follows the real users' distribution exactly; ``"bernoulli"`` samples
  each item with probability ``p`` (at least one item, the argmax, so no row is empty). Rows are binary float32.
  Top-k is the default because it validated better on ML-1M (EASE on 500 users, validation HR@10 16.3 vs 14.1
  for Bernoulli); Bernoulli follows the real item popularity more closely (it keeps the tail items top-k never
  picks: on the planted test data Pearson 0.94 vs 0.87).

**Defaults** (:class:`ARCFConfig`) were chosen on ML-1M *validation* (EASE trained only on N AR-CF users):
60 epochs (N = 500, λ = 100: validation HR@10 10.1 / 14.7 / 17.4 / 16.8 / 16.5 after 20 / 40 / 60 / 80 / 100
epochs of batch 256: no gain after 60; another batch order moves these by about a point), ZR weight 0.1 (λ
picked on validation, 0.1 vs 0.5: HR@10 16.3 vs 16.7 at N = 500 but 14.4 vs 12.7 at N = 100).

**Caching** (:func:`arcf_users_cached`): one training serves every N and both binarisations. The directory
``cache_dir/arcf-<dataset>-<12 hex>`` (hex: SHA-256 of the data fingerprint of
:func:`infae_kit.caching.dataset_fingerprint`, the config's training fields and the seed) holds ``generator.npz``
(G's parameters, the real users' conditions and counts), ``users-<binarize>-n<N>.npz`` per users generated, and
``card.json`` (written last, the completion marker: config, seed, dataset, timings, losses per epoch, the N
stored per binarisation). Every file is written atomically; a directory or users file that cannot be read is
set aside (:func:`infae_kit.caching.set_aside`) and trained or generated again.

Example:
    >>> from infae_kit.data import load_dataset
    >>> from infae_kit.models.baselines import EASE
    >>> data = load_dataset("ml-1m")                                                       # doctest: +SKIP
    >>> users, cached = arcf_users_cached(data, 500, ARCFConfig(), "runs/arcf_cache", seed=0)  # doctest: +SKIP
    >>> EASE(lam=100.0).fit(users)                                                           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from infae_kit import __version__
from infae_kit.caching import (UNREADABLE_ERRORS, check_cache_format, data_name, dataset_fingerprint, entry_path,
                               set_aside)
from infae_kit.checks import DictConfig, MatrixLike, binary_interactions, check_seed, is_int
from infae_kit.errors import DataError, MemoryBudgetError, NumericalError, ParameterError
from infae_kit.io_utils import atomic_write_bytes, atomic_write_json, available_memory_bytes, progress_bar

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset

__all__ = [
    "BINARIZE_MODES",
    "ARCFConfig",
    "ARCFModel",
    "fit_arcf",
    "user_conditions",
    "arcf_cache_path",
    "arcf_users_cached",
    "load_arcf_model",
]

BINARIZE_MODES = ("topk", "bernoulli")
"""How :meth:`ARCFModel.generate` turns G's probability vectors into binary rows (see the module docstring)."""

_FORMAT = 2  # bump when the cached artifact changes meaning (2: the kit's one data fingerprint and cache paths)
_CARD_NAME = "card.json"
_MODEL_NAME = "generator.npz"
_GENERATE_BATCH = 512


# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ARCFConfig(DictConfig):
    """Hyper-parameters of the AR-CF user generator (our choices within AR-CF/CFGAN's design; module docstring).

    Cost with the defaults (measured with ``timings["cpu_total"]``, the process's CPU seconds over all threads,
    on the kit's 2-core machine while it was shared, load average ~13): :func:`fit_arcf` on ML-1M (6,040 users ×
    3,706 items, 791,718 train interactions) takes 157 CPU-s (567 s wall at that load); with the 2 cores to
    itself that is 80–160 s wall (CPU time / 2 … / 1), within the 3–4 min budget. Magazine (3,092 × 1,305):
    35 CPU-s (85 s wall at that load). One epoch is one jit-compiled ``lax.scan`` over 24 batches (ML-1M).

    Attributes:
        condition_dim: size of the condition c_u, the real user's truncated-SVD embedding (1 … min(users, items)).
        noise_dim: size of the generator's noise z (≥ 1).
        generator_hidden: widths of G's ReLU hidden layers (each ≥ 1; may be empty: a linear-sigmoid G).
        discriminator_hidden: widths of D's LeakyReLU hidden layers (each ≥ 1; may be empty).
        epochs: passes over the real users (≥ 1).
        batch_size: real users per step (≥ 1).
        g_learning_rate, d_learning_rate: Adam step sizes of G and D (> 0).
        beta1: Adam's β₁ for both (in [0, 1); 0.5 is the usual GAN setting).
        zr_ratio: share of a user's non-interacted items drawn into ``ZR_u`` at each step (in [0, 1]).
        zr_weight: α, weight of CFGAN's zero-reconstruction term (≥ 0; 0 = pure cGAN).
        binarize: ``"topk"`` (the seed user's count of items with the largest probabilities) or
            ``"bernoulli"`` (independent draws), see :meth:`ARCFModel.generate`.
    """

    condition_dim: int = 64
    noise_dim: int = 32
    generator_hidden: tuple[int, ...] = (256,)
    discriminator_hidden: tuple[int, ...] = (256,)
    epochs: int = 60
    batch_size: int = 256
    g_learning_rate: float = 1e-3
    d_learning_rate: float = 1e-3
    beta1: float = 0.5
    zr_ratio: float = 0.5
    zr_weight: float = 0.1
    binarize: str = "topk"

    def __post_init__(self) -> None:
        self.check_int_fields(("condition_dim", "noise_dim", "epochs", "batch_size"), 1)
        for name in ("generator_hidden", "discriminator_hidden"):
            value = getattr(self, name)
            sequence = not isinstance(value, (str, bytes)) and hasattr(value, "__iter__")
            widths = tuple(value) if sequence else ()
            if not sequence or any(not is_int(w) or w < 1 for w in widths):
                raise self.field_error(name, "a sequence of integers >= 1 (layer widths, e.g. (256,))")
            object.__setattr__(self, name, tuple(int(w) for w in widths))
        for name in ("g_learning_rate", "d_learning_rate"):
            self.check_real_field(name, 0, low_open=True)
        self.check_real_field("beta1", 0, 1, high_open=True)
        self.check_real_field("zr_ratio", 0, 1, note="a share of the non-interacted items")
        self.check_real_field("zr_weight", 0)
        self.check_choice_field("binarize", BINARIZE_MODES)
        for name in ("g_learning_rate", "d_learning_rate", "beta1", "zr_ratio", "zr_weight"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("condition_dim", "noise_dim", "epochs", "batch_size"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def training_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without ``binarize``: the fields the trained generator depends on (the cache key)."""
        d = self.to_dict()
        del d["binarize"]
        return d


# ---------------------------------------------------------------------------------------------------------
# Conditions: the real users' truncated-SVD embeddings
# ---------------------------------------------------------------------------------------------------------
def user_conditions(X: sp.csr_matrix, dim: int, seed: int, *, n_oversample: int = 10,
                    n_power_iter: int = 4) -> np.ndarray:
    """Rank-``dim`` user embeddings ``U_k √Σ_k`` of the binary matrix ``X``, scaled to unit variance overall.

    Randomised truncated SVD (Halko, Martinsson & Tropp, 2011: Gaussian sketch of ``dim + n_oversample``
    columns, ``n_power_iter`` QR-stabilised power iterations), in float64 from ``numpy.random.default_rng(seed)``,
    so it is deterministic. Singular vectors get a fixed sign (largest-magnitude user entry positive).

    Args:
        X: ``(n_users, n_items)`` binary csr.
        dim: embedding size, at most ``min(n_users, n_items)``.
        seed: seed of the sketch.

    Returns:
        ``(n_users, dim)`` float32; all-zero users get the zero vector.
    """
    n_users, n_items = X.shape
    if dim > min(n_users, n_items):
        raise ParameterError(
            f"ARCFConfig.condition_dim={dim} exceeds min(users, items) = {min(n_users, n_items)} of this matrix; "
            f"use condition_dim <= {min(n_users, n_items)}."
        )
    rng = np.random.default_rng([seed, 0xA2CF])
    Xd = sp.csr_matrix(X, dtype=np.float64)
    width = min(dim + n_oversample, min(n_users, n_items))
    Q, _ = np.linalg.qr(Xd @ rng.standard_normal((n_items, width)))
    for _ in range(n_power_iter):
        Q, _ = np.linalg.qr(Xd.T @ Q)
        Q, _ = np.linalg.qr(Xd @ Q)
    B = np.asarray((Xd.T @ Q).T)  # (width, n_items) = Qᵀ X
    Ub, s, _ = np.linalg.svd(B, full_matrices=False)
    U = Q @ Ub[:, :dim]
    signs = np.sign(U[np.abs(U).argmax(axis=0), np.arange(dim)])
    U *= np.where(signs == 0, 1.0, signs)
    emb = U * np.sqrt(s[:dim])[None, :]
    scale = emb.std()
    return (emb / scale if scale > 0 else emb).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------------------
def _glorot(key, fan_in: int, fan_out: int):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)


def _init_mlp(key, sizes: list[int]) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [{"w": _glorot(k, a, b), "b": jnp.zeros(b, jnp.float32)} for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _mlp(layers: list[dict], h, activation):
    for i, layer in enumerate(layers):
        h = h @ layer["w"] + layer["b"]
        if i < len(layers) - 1:
            h = activation(h)
    return h


def _generator_logits(g_params, z, c):
    """``(b, n_items)`` logits of ``G(z, c)`` (the probabilities are their sigmoid)."""
    return _mlp(g_params, jnp.concatenate([z, c], axis=-1), jax.nn.relu)


def _discriminator_logit(d_params, x, c):
    """``(b,)`` real/fake logit of ``D(x, c)``."""
    return _mlp(d_params, jnp.concatenate([x, c], axis=-1), lambda h: jax.nn.leaky_relu(h, 0.2))[:, 0]


def _zr_mask(key, batch, n_items: int, ratio: float):
    """``(b, n_items)`` boolean: each (user, item) cell drawn with probability ``ratio``, from a cheap integer hash.

    The hash (two rounds of ``lowbias32`` on ``user · n_items + item`` mixed with two random words of ``key``,
    as DISTILL-CF's noise) costs a few integer operations per cell, ~20× less than threefry on CPU; the draws
    are fresh at every step (new key) and differ between users.
    """
    from infae_kit.distill.sampler import lowbias32

    words = jax.random.bits(key, (2,), jnp.uint32)
    counter = (batch.astype(jnp.uint32)[:, None] * jnp.uint32(n_items)
               + jax.lax.broadcasted_iota(jnp.uint32, (batch.shape[0], n_items), 1))
    bits = lowbias32(lowbias32(counter ^ words[0]) ^ words[1])
    return bits < jnp.uint32(min(int(ratio * 2.0**32), 2**32 - 1))


@functools.lru_cache(maxsize=8)
def _train_program(noise_dim: int, zr_ratio: float, zr_weight: float, g_learning_rate: float,
                   d_learning_rate: float, beta1: float):
    """``(g_optimizer, d_optimizer, epoch)``: the optimizers and the jit-compiled epoch, cached on the
    hyper-parameters they depend on (layer sizes are shapes, which jit handles), so a refit does not recompile.

    The epoch: ``lax.scan`` over mini-batches, one D step then one G step per batch.

    Each step draws z once: ``fake = G(z, c)`` is computed once (with its VJP), D is updated on
    ``(x, c)`` vs ``(fake, c)``, then G's loss is differentiated with respect to ``fake`` under the *updated* D
    and pulled back through the VJP (the usual alternating update, without a second forward pass of G).
    """
    g_opt = optax.adam(g_learning_rate, b1=beta1)
    d_opt = optax.adam(d_learning_rate, b1=beta1)
    use_zr = zr_weight > 0 and zr_ratio > 0

    def d_loss_fn(d_params, x, fake, c, mask):
        logits = _discriminator_logit(d_params, jnp.concatenate([x, fake]), jnp.concatenate([c, c]))
        real_logit, fake_logit = jnp.split(logits, 2)
        per_user = jax.nn.softplus(-real_logit) + jax.nn.softplus(fake_logit)
        return jnp.sum(mask * per_user) / jnp.maximum(jnp.sum(mask), 1.0)

    def g_loss_fn(fake, d_params, c, zr, mask):
        per_user = jax.nn.softplus(-_discriminator_logit(d_params, fake, c))
        if use_zr:
            per_user = per_user + zr_weight * jnp.sum(jnp.where(zr, fake * fake, 0.0), axis=-1)
        return jnp.sum(mask * per_user) / jnp.maximum(jnp.sum(mask), 1.0)

    d_grad = jax.value_and_grad(d_loss_fn)
    g_grad = jax.value_and_grad(g_loss_fn)

    @jax.jit
    def epoch(g_params, d_params, g_state, d_state, key, dense, conditions, users, masks):
        n_items = dense.shape[1]

        def step(carry, inputs):
            g_params, d_params, g_state, d_state, key = carry
            batch, mask = inputs
            key, k_z, k_zr = jax.random.split(key, 3)
            x, c = dense[batch], conditions[batch]
            z = jax.random.normal(k_z, (batch.shape[0], noise_dim), jnp.float32)
            fake, pullback = jax.vjp(lambda gp: jax.nn.sigmoid(_generator_logits(gp, z, c)), g_params)
            d_loss, grads = d_grad(d_params, x, fake, c, mask)
            updates, d_state = d_opt.update(grads, d_state, d_params)
            d_params = optax.apply_updates(d_params, updates)
            zr = (x == 0) & _zr_mask(k_zr, batch, n_items, zr_ratio) if use_zr else None
            g_loss, fake_grad = g_grad(fake, d_params, c, zr, mask)
            (grads,) = pullback(fake_grad)
            updates, g_state = g_opt.update(grads, g_state, g_params)
            g_params = optax.apply_updates(g_params, updates)
            return (g_params, d_params, g_state, d_state, key), (d_loss, g_loss)

        (g_params, d_params, g_state, d_state, _), (d_losses, g_losses) = jax.lax.scan(
            step, (g_params, d_params, g_state, d_state, key), (users, masks))
        return g_params, d_params, g_state, d_state, jnp.mean(d_losses), jnp.mean(g_losses)

    return g_opt, d_opt, epoch


@jax.jit
def _generator_probabilities(g_params, z, c):
    return jax.nn.sigmoid(_generator_logits(g_params, z, c))


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ARCFModel:
    """A trained AR-CF user generator, with what it needs to generate: the real users' conditions and counts.

    Attributes:
        config: the :class:`ARCFConfig` it was trained with.
        seed: the training seed.
        generator: G's parameters, a list of ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` float32 arrays
            (NumPy), input ``noise_dim + condition_dim``, output ``n_items``.
        conditions: ``(n_real_users, condition_dim)`` float32 conditions of the real users.
        counts: ``(n_real_users,)`` int64 train interactions of each real user.
        history: ``{"d_loss": [...], "g_loss": [...]}``, the mean losses of each epoch.
        timings: wall-clock seconds (``conditions``: the SVD, ``first_epoch``: includes compilation, ``total``)
            and ``cpu_total``, the process's CPU seconds over all threads (what the run costs whatever the load).
        dataset: dataset card (name, shape, fingerprint) when known.
    """

    config: ARCFConfig
    seed: int
    generator: list[dict[str, np.ndarray]]
    conditions: np.ndarray
    counts: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        """Number of items (G's output size)."""
        return int(self.generator[-1]["w"].shape[1])

    @property
    def seed_users(self) -> np.ndarray:
        """The real users that can seed a virtual user (those with at least one train interaction)."""
        return np.flatnonzero(self.counts > 0)

    def _seeds_and_noise(self, n_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        candidates = self.seed_users
        rng = np.random.default_rng([seed, 0x5EED])
        order = rng.permutation(candidates)
        seeds = np.resize(order, n_users) if n_users > order.shape[0] else order[:n_users]
        z = rng.standard_normal((n_users, self.config.noise_dim)).astype(np.float32)
        return seeds, z

    def probabilities(self, n_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """G's interaction probabilities for ``n_users`` virtual users and the real user seeding each.

        Virtual user ``v`` is seeded by real user ``seeds[v]`` (a seeded permutation of the real users with an
        interaction, repeated when ``n_users`` exceeds them) with noise ``z_v ~ N(0, I)``, both from
        ``numpy.random.default_rng([seed, …])``.

        Returns:
            ``(probabilities (n_users, n_items) float32, seeds (n_users,) int64)``.
        """
        n_users = _check_n_users(n_users)
        seed = check_seed(seed)
        seeds, z = self._seeds_and_noise(n_users, seed)
        params = [{"w": jnp.asarray(layer["w"]), "b": jnp.asarray(layer["b"])} for layer in self.generator]
        out = np.empty((n_users, self.n_items), dtype=np.float32)
        B = _GENERATE_BATCH
        for start in range(0, n_users, B):  # fixed batch shape (padded): one compilation whatever n_users
            stop = min(start + B, n_users)
            zb = np.zeros((B, z.shape[1]), np.float32)
            cb = np.zeros((B, self.conditions.shape[1]), np.float32)
            zb[: stop - start] = z[start:stop]
            cb[: stop - start] = self.conditions[seeds[start:stop]]
            out[start:stop] = np.asarray(_generator_probabilities(params, jnp.asarray(zb), jnp.asarray(cb)))[
                : stop - start]
        return out, seeds.astype(np.int64)

    def generate(self, n_users: int, seed: int = 0) -> sp.csr_matrix:
        """``n_users`` binary synthetic users: ``(n_users, n_items)`` float32 CSR, sorted indices, no empty row.

        ``config.binarize`` decides the items: ``"topk"`` keeps the ``k`` most probable items of each virtual
        user with ``k`` = its seed user's train count (so the counts follow the real distribution);
        ``"bernoulli"`` keeps item ``i`` with probability ``p_i`` (draws from the same seeded generator), and
        the most probable item when none is drawn. Same ``seed``, same matrix.

        Raises:
            ParameterError: ``n_users`` not an integer ≥ 1, ``seed`` not an integer ≥ 0.
        """
        probs, seeds = self.probabilities(n_users, seed)
        n_items = self.n_items
        if self.config.binarize == "topk":
            k = np.minimum(self.counts[seeds], n_items)
            order = np.argsort(-probs, axis=1, kind="stable")
            keep = np.arange(n_items)[None, :] < k[:, None]
            rows, pos = np.nonzero(keep)
            cols = order[rows, pos]
        else:
            rng = np.random.default_rng([seed, 0xB3E7])
            hit = rng.random(probs.shape, dtype=np.float32) < probs
            empty = ~hit.any(axis=1)
            hit[np.flatnonzero(empty), probs[empty].argmax(axis=1)] = True
            rows, cols = np.nonzero(hit)
        out = sp.csr_matrix((np.ones(rows.shape[0], np.float32), (rows, cols)), shape=(n_users, n_items))
        out.sort_indices()
        return out

    # --- persistence ---------------------------------------------------------------------------------------
    def card(self) -> dict[str, Any]:
        """JSON-ready description of the model (what :meth:`save` writes next to the parameters)."""
        return {
            "kind": "AR-CF user generator", "format": _FORMAT, "kit_version": __version__,
            "config": self.config.to_dict(), "seed": self.seed, "dataset": dict(self.dataset),
            "n_items": self.n_items, "n_real_users": int(self.conditions.shape[0]),
            "timings": dict(self.timings), "history": dict(self.history),
        }

    def save(self, path: str | os.PathLike, extra_card: dict[str, Any] | None = None) -> Path:
        """Write ``path/generator.npz`` then ``path/card.json`` (the completion marker), each atomically."""
        path = Path(path)
        arrays = {"conditions": self.conditions, "counts": self.counts}
        for i, layer in enumerate(self.generator):
            arrays[f"g{i}_w"], arrays[f"g{i}_b"] = layer["w"], layer["b"]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path / _MODEL_NAME, buf.getvalue())
        atomic_write_json(path / _CARD_NAME, dict(self.card(), **(extra_card or {})))
        return path


def load_arcf_model(path: str | os.PathLike) -> ARCFModel:
    """Read a model written by :meth:`ARCFModel.save`."""
    path = Path(path)
    for p in (path / _MODEL_NAME, path / _CARD_NAME):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: {path} is not a saved AR-CF generator")
    card = json.loads((path / _CARD_NAME).read_text(encoding="utf-8"))
    if card.get("format") != _FORMAT:
        raise DataError(f"{path}: AR-CF artifact format {card.get('format')!r}, this kit reads {_FORMAT}")
    with np.load(path / _MODEL_NAME, allow_pickle=False) as npz:
        n_layers = sum(1 for k in npz.files if k.endswith("_w"))
        generator = [{"w": np.array(npz[f"g{i}_w"]), "b": np.array(npz[f"g{i}_b"])} for i in range(n_layers)]
        conditions, counts = np.array(npz["conditions"]), np.array(npz["counts"])
    return ARCFModel(ARCFConfig.from_dict(card["config"]), int(card["seed"]), generator, conditions, counts,
                     card.get("history", {}), card.get("timings", {}), card.get("dataset", {}))


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------
def _check_n_users(n_users) -> int:
    if not is_int(n_users) or n_users < 1:
        raise ParameterError(f"n_users must be an integer >= 1 (the number of synthetic users), got {n_users!r}.")
    return int(n_users)


def fit_arcf(train: MatrixLike, config: ARCFConfig | None = None, *, seed: int = 0, progress: bool = True) -> ARCFModel:
    """Train AR-CF's user generator on the real users of ``train``.

    Args:
        train: ``(n_users, n_items)`` interactions (binarised; any stored non-zero counts).
        config: the :class:`ARCFConfig` (defaults when ``None``).
        seed: seeds the SVD sketch, the parameter initialisation, the batch orders and every noise draw
            (same seed and data, same model).
        progress: show a tqdm bar over the epochs (with the mean D and G losses).

    Returns:
        The trained :class:`ARCFModel`.

    Raises:
        ParameterError: bad config or seed; ``condition_dim`` above ``min(users, items)``.
        DataError: no interactions.
        MemoryBudgetError: the dense train matrix would take more than half the memory available.
        NumericalError: a loss became NaN/inf (lower the learning rates).
    """
    config = ARCFConfig() if config is None else config
    if not isinstance(config, ARCFConfig):
        raise ParameterError(f"config must be an ARCFConfig, got {type(config).__name__}.")
    seed = check_seed(seed)
    X = binary_interactions(train, "train", require_interactions=True)
    n_users, n_items = X.shape
    needed = n_users * n_items * 4
    if needed > available_memory_bytes() // 2:
        raise MemoryBudgetError(
            f"AR-CF keeps the dense {n_users} × {n_items} train matrix ({needed / 2**30:.2f} GiB) in memory, more "
            "than half of what is available; use fewer users or items."
        )
    t0, cpu0 = time.perf_counter(), time.process_time()
    conditions = user_conditions(X, config.condition_dim, seed)
    counts = np.diff(X.indptr).astype(np.int64)
    t_cond = time.perf_counter() - t0

    key = jax.random.PRNGKey(seed)
    key, k_g, k_d = jax.random.split(key, 3)
    cond_dim = config.condition_dim
    g_params = _init_mlp(k_g, [config.noise_dim + cond_dim, *config.generator_hidden, n_items])
    d_params = _init_mlp(k_d, [n_items + cond_dim, *config.discriminator_hidden, 1])
    g_opt, d_opt, epoch_program = _train_program(config.noise_dim, config.zr_ratio, config.zr_weight,
                                                 config.g_learning_rate, config.d_learning_rate, config.beta1)
    g_state, d_state = g_opt.init(g_params), d_opt.init(d_params)
    dense = jnp.asarray(X.toarray())
    cond_j = jnp.asarray(conditions)

    real_users = np.flatnonzero(counts > 0).astype(np.int32)
    B = config.batch_size
    n_batches = max(1, -(-real_users.shape[0] // B))
    rng = np.random.default_rng([seed, 0xE90C])
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    t_first = None
    bar = progress_bar(range(1, config.epochs + 1), desc="AR-CF epochs", enabled=progress)
    for epoch in bar:
        order = rng.permutation(real_users)
        users = np.zeros(n_batches * B, np.int32)
        mask = np.zeros(n_batches * B, np.float32)
        users[: order.shape[0]], mask[: order.shape[0]] = order, 1.0
        g_params, d_params, g_state, d_state, d_loss, g_loss = epoch_program(
            g_params, d_params, g_state, d_state, jax.random.fold_in(key, epoch), dense, cond_j,
            jnp.asarray(users.reshape(n_batches, B)), jnp.asarray(mask.reshape(n_batches, B)))
        d_loss, g_loss = float(d_loss), float(g_loss)
        if t_first is None:
            t_first = time.perf_counter() - t0 - t_cond
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            bar.fail()
            raise NumericalError(
                f"AR-CF: the losses became D={d_loss}, G={g_loss} at epoch {epoch}; lower g_learning_rate / "
                f"d_learning_rate (now {config.g_learning_rate} / {config.d_learning_rate})."
            )
        history["d_loss"].append(d_loss)
        history["g_loss"].append(g_loss)
        bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}")
    bar.finish()
    generator = [{"w": np.asarray(layer["w"]), "b": np.asarray(layer["b"])} for layer in g_params]
    timings = {"conditions": t_cond, "first_epoch": float(t_first or 0.0), "total": time.perf_counter() - t0,
               "cpu_total": time.process_time() - cpu0}
    return ARCFModel(config, seed, generator, conditions, counts, history, timings)


# ---------------------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------------------
def _cache_key(data, config: ARCFConfig, seed: int) -> dict[str, Any]:
    return {"format": _FORMAT, "method": "arcf-user-generator", "data": dataset_fingerprint(data),
            "config": config.training_dict(), "seed": seed}


def arcf_cache_path(data: RecDataset, config: ARCFConfig, cache_dir: str | os.PathLike, *, seed: int = 0) -> Path:
    """``cache_dir/arcf-<dataset>-<12 hex>``, the hex a SHA-256 of the data fingerprint
    (:func:`infae_kit.caching.dataset_fingerprint`), the training fields of ``config`` (all but ``binarize``,
    which only changes the generation), ``seed`` and the cache's format (:func:`infae_kit.caching.entry_path`)."""
    seed = check_seed(seed)
    return entry_path(cache_dir, f"arcf-{data_name(data)}", _cache_key(data, config, seed))


def _users_name(binarize: str, n_users: int) -> str:
    return f"users-{binarize}-n{n_users}.npz"


def _read_users(path: Path, shape: tuple[int, int]) -> sp.csr_matrix | None:
    """Generated users stored at ``path``; ``None`` when missing, damaged (set aside) or of another shape."""
    if not path.exists():
        return None
    try:
        users = sp.csr_matrix(sp.load_npz(path), dtype=np.float32)
    except UNREADABLE_ERRORS as exc:
        set_aside(path, f"{type(exc).__name__}: {exc}")
        return None
    return users if users.shape == shape else None


def arcf_users_cached(data: RecDataset, n_users: int, config: ARCFConfig | None, cache_dir: str | os.PathLike, *,
                      seed: int = 0, progress: bool = True) -> tuple[sp.csr_matrix, bool]:
    """``n_users`` AR-CF synthetic users of ``data``, trained and generated once, then read from the cache.

    The directory :func:`arcf_cache_path` (keyed by the dataset fingerprint of ``data.train``, the training
    fields of ``config`` and ``seed``) holds the trained generator (``generator.npz``), one
    ``users-<binarize>-n<N>.npz`` per binarisation and N generated, and ``card.json``. A call trains only when
    that directory has no complete model (card + parameters) and generates only when its users file is missing
    (:meth:`ARCFModel.generate` with the same ``seed``), so one training serves every N and both
    binarisations. Every file is written atomically, the card last.

    Args:
        data: a :class:`~infae_kit.data.RecDataset` (``train``, ``name`` and ``item_ids`` are used).
        n_users: N, the number of synthetic users (an integer ≥ 1).
        config: :class:`ARCFConfig` (defaults when ``None``).
        cache_dir: folder of the cache (created when needed).
        seed: seed of the training and of the generation.
        progress: tqdm bar while training.

    Returns:
        ``(users, loaded_from_cache)``: ``users`` a binary float32 ``(N, n_items)`` CSR; ``loaded_from_cache``
        is True when no training ran in this call (the generator, and the users if stored, came from the cache).

    Raises:
        ParameterError: ``n_users`` not an integer ≥ 1, a bad ``seed`` or ``config``.
    """
    n_users = _check_n_users(n_users)
    seed = check_seed(seed)
    config = ARCFConfig() if config is None else config
    if not isinstance(config, ARCFConfig):
        raise ParameterError(f"config must be an ARCFConfig, got {type(config).__name__}.")
    check_cache_format(cache_dir, "arcf", _FORMAT, "arcf-*")
    path = arcf_cache_path(data, config, cache_dir, seed=seed)
    users_path = path / _users_name(config.binarize, n_users)
    loaded = (path / _CARD_NAME).exists() and (path / _MODEL_NAME).exists()
    if loaded:
        users = _read_users(users_path, (n_users, data.train.shape[1]))
        if users is not None:
            return users, True
        try:
            model = load_arcf_model(path)
            card = json.loads((path / _CARD_NAME).read_text(encoding="utf-8"))
        except UNREADABLE_ERRORS as exc:  # truncated card or archive (DataError: another format): train again
            set_aside(path, f"{type(exc).__name__}: {exc}")
            loaded = False
        else:
            model.config = dataclasses.replace(model.config, binarize=config.binarize)
    if not loaded:
        model = fit_arcf(data.train, config, seed=seed, progress=progress)
        model.dataset = dataset_fingerprint(data)
        card = model.card()
    users = model.generate(n_users, seed)
    buf = io.BytesIO()
    sp.save_npz(buf, users, compressed=True)
    atomic_write_bytes(users_path, buf.getvalue())
    generated = {k: list(v) for k, v in card.get("generated", {}).items()}
    generated[config.binarize] = sorted(set(generated.get(config.binarize, [])) | {n_users})
    if loaded:
        atomic_write_json(path / _CARD_NAME, dict(card, generated=generated))
    else:
        model.save(path, extra_card={"generated": generated})
    return users, loaded
