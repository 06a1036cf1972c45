"""Synthetic implicit-feedback data with planted structure, for fast tests and sanity checks."""

from __future__ import annotations

import numpy as np

from infae_kit.data.dataset import Interactions
from infae_kit.errors import ParameterError

__all__ = [
    "make_synthetic",
]

_BLOCK_CELLS = 1 << 22  # users × items cells scored per block


def make_synthetic(
    n_users: int = 1000,
    n_items: int = 500,
    n_factors: int = 8,
    zipf_a: float = 1.1,
    mean_interactions: float = 30,
    seed: int = 0,
    *,
    affinity_scale: float = 2.0,
    activity_sigma: float = 1.0,
    split: bool = True,
) -> Interactions:
    """Draw a synthetic interaction table from a latent-factor model with Zipf popularity.

    Generative model (all draws from ``numpy.random.default_rng(seed)``):

    1. Latent factors: user factors ``P ~ N(0, I/n_factors)`` of shape (n_users, n_factors) and item
       factors ``Q ~ N(0, I)`` of shape (n_items, n_factors), so the affinity ``a_ui = P_u · Q_i`` has unit-order
       spread.
    2. Item popularity: item ``i`` gets Zipf weight ``π_i ∝ r_i^(−zipf_a)`` where ``r`` is a random permutation
       of ranks ``1..n_items``.
    3. User activity (heavy-tailed): ``n_u = clip(round(LogNormal(μ, activity_sigma)), 3, n_items // 2)`` with
       ``μ = ln(mean_interactions) − activity_sigma² / 2`` so that ``E[n_u] ≈ mean_interactions``; every
       user has at least 3 interactions, so the paper's split removes nobody.
    4. Choice: user ``u`` picks ``n_u`` distinct items without replacement with probability
       ``∝ π_i · exp(affinity_scale · a_ui)`` (Gumbel-top-k sampling: the ``n_u`` largest
       ``log π_i + affinity_scale · a_ui + Gumbel noise``).
    5. Ratings ``clip(round(3 + 1.2 · z_ui + N(0, 0.5)), 1, 5)`` with ``z`` the affinity standardised over
       the chosen pairs; timestamps uniform over 2010-01-01 … 2020-01-01 (Unix seconds).
    6. When ``split``: the paper's split (:func:`~infae_kit.data.split.split_per_user`) with the same seed.

    Args:
        n_users: number of users (ids ``0..n_users-1``).
        n_items: number of items (ids ``0..n_items-1``; items never chosen do not appear).
        n_factors: latent dimension.
        zipf_a: Zipf exponent of item popularity (0 = uniform).
        mean_interactions: target mean interactions per user.
        seed: random seed; the result is a deterministic function of the arguments.
        affinity_scale: strength of the latent-factor preference relative to popularity.
        activity_sigma: log-normal σ of user activity (larger = heavier tail).
        split: attach the paper's split labels.

    Returns:
        Interactions (int64 user/item ids, float32 ratings, int64 timestamps, labels when ``split``).
    """
    if n_users < 1 or n_items < 6 or n_factors < 1:
        raise ParameterError(
            f"make_synthetic needs n_users >= 1, n_items >= 6 and n_factors >= 1; got {n_users}, {n_items}, {n_factors}."
        )
    if mean_interactions < 3 or zipf_a < 0 or activity_sigma < 0:
        raise ParameterError(
            f"make_synthetic needs mean_interactions >= 3, zipf_a >= 0 and activity_sigma >= 0; got "
            f"{mean_interactions}, {zipf_a}, {activity_sigma}."
        )
    rng = np.random.default_rng(seed)
    user_factors = rng.normal(0.0, 1.0 / np.sqrt(n_factors), size=(n_users, n_factors))
    item_factors = rng.normal(0.0, 1.0, size=(n_items, n_factors))
    ranks = rng.permutation(n_items) + 1
    log_pop = -zipf_a * np.log(ranks)
    log_pop -= np.log(np.exp(log_pop).sum())
    mu = np.log(mean_interactions) - activity_sigma**2 / 2
    activity = np.rint(rng.lognormal(mu, activity_sigma, size=n_users)).astype(np.int64)
    activity = np.clip(activity, 3, max(3, n_items // 2))

    users, items, affinities = [], [], []
    block = max(1, _BLOCK_CELLS // n_items)
    for start in range(0, n_users, block):  # blocks of users, not one user at a time
        stop = min(n_users, start + block)
        affinity = user_factors[start:stop] @ item_factors.T
        keys = log_pop[None, :] + affinity_scale * affinity + rng.gumbel(size=affinity.shape)
        order = np.argsort(-keys, axis=1)
        rank_mask = np.arange(n_items)[None, :] < activity[start:stop, None]
        rows, pos = np.nonzero(rank_mask)
        chosen = order[rows, pos]
        users.append(rows + start)
        items.append(chosen)
        affinities.append(affinity[rows, chosen])
    user = np.concatenate(users).astype(np.int64)
    item = np.concatenate(items).astype(np.int64)
    affinity = np.concatenate(affinities)
    z = (affinity - affinity.mean()) / (affinity.std() + 1e-12)
    rating = np.clip(np.rint(3 + 1.2 * z + rng.normal(0, 0.5, size=z.shape)), 1, 5).astype(np.float32)
    timestamp = rng.integers(1262304000, 1577836800, size=z.shape, dtype=np.int64)
    table = Interactions(
        user=user, item=item, rating=rating, timestamp=timestamp,
        source=f"make_synthetic(n_users={n_users}, n_items={n_items}, n_factors={n_factors}, zipf_a={zipf_a}, "
        f"mean_interactions={mean_interactions}, seed={seed})",
    )
    if split:
        from infae_kit.data.split import split_per_user

        table = split_per_user(table, seed)
    return table
