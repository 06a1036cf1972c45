"""Heuristic data samplers of the paper's §5 and Appendix B.2: interaction-RNS, user-RNS, head-user, SVP-CF-user.

Every sampler takes a binary users × items train matrix ``X`` (scipy.sparse; any stored non-zero counts as an
interaction) and a budget, and returns a :class:`SampledData`:

* ``matrix``: a binary float32 CSR **of the same shape as X**, a subset of X's entries. A dropped user is an
  all-zero row and a dropped interaction a missing entry, so item and user indices keep their meaning.
* ``users``: the kept users (ascending row indices); ``rows()`` is ``matrix[users]``, the compact matrix to train
  ∞-AE or EASE on (∞-AE must not see zero rows: its kernel is not zero on them).

The budget is exactly one of

* ``n_users=N``: keep N users (an integer, 1 ≤ N ≤ the users with at least one interaction in X);
* ``percent=p``: p % of X's interactions (0 < p ≤ 100), the paper's B.2 budget ``p·n/100``.

Only users with at least one interaction in X are candidates: an empty row carries no data, so picking it would
spend the budget on nothing. The samplers (B.2, ``n`` = interactions of X):

* **interaction-RNS** (:func:`interaction_rns`): interactions uniformly at random. ``percent``: exactly
  ``round(p·n/100)`` of them (at least 1). ``n_users``: see the function for the two readings of a user budget.
* **user-RNS** (:func:`user_rns`): users uniformly at random, each with all of its interactions.
* **head-user** (:func:`head_user`): the users with the most interactions first (ties in a seeded random order).
* **SVP-CF-user** (:func:`svp_cf_user`, Sachdeva et al., WSDM 2022): users in decreasing order of their
  *forgetting count*, the bias-only proxy's inverse AUC on the user's interactions averaged over the proxy's
  training epochs (:func:`svp_cf_forgetting`); the hardest users are kept first.

The user samplers walk users in their order and, with ``percent``, stop at the first user that brings the
sampled set to at least ``p·n/100`` interactions (the last user is kept whole, so the sample may exceed the
budget by less than one user's interactions, as in B.2 "until we exceed our sampling budget").

**DISTILL-CF** is the paper's fifth "sampler" but it *synthesises* users instead of picking rows of X, so it is
not in :data:`SAMPLERS`; it lives in :mod:`infae_kit.distill`. To put it on the same axis (N users), use::

    from infae_kit.distill import distill_cached, distill_config_for
    result, _ = distill_cached(data, distill_config_for(data.name, budget=N, seed=seed), cache_dir)
    support = result.best_support        # (N, n_items) CSR: use it where a sampler's ``rows()`` would go

(``data`` is a :class:`~infae_kit.data.RecDataset`; for noisy data, a copy whose ``train`` is the noisy matrix.)

Example:
    >>> from infae_kit.data import load_dataset
    >>> data = load_dataset("magazine")                                            # doctest: +SKIP
    >>> s = sample("user-rns", data.train, n_users=500, seed=0)                    # doctest: +SKIP
    >>> s.matrix.shape == data.train.shape, len(s.users), s.rows().shape           # doctest: +SKIP
    (True, 500, (500, 1305))
    >>> s = sample("svp-cf", data.train, percent=10, cache_dir="runs/sampling_cache")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from infae_kit.caching import UNREADABLE_ERRORS, check_cache_format, dataset_fingerprint, entry_path, set_aside
from infae_kit.checks import DictConfig, MatrixLike, binary_interactions, check_seed, is_int
from infae_kit.errors import DataError, ParameterError
from infae_kit.io_utils import atomic_write_bytes

__all__ = [
    "SampledData",
    "BiasProxyConfig",
    "ForgettingCounts",
    "interaction_rns",
    "user_rns",
    "head_user",
    "svp_cf_user",
    "svp_cf_forgetting",
    "forgetting_cache_path",
    "sample",
    "SAMPLERS",
    "USER_BUDGET_MODES",
]

USER_BUDGET_MODES = ("distinct-users", "matched-interactions")
"""How :func:`interaction_rns` reads ``n_users`` (see there)."""

PROXY_LOSSES = ("bpr", "logistic")
_CACHE_FORMAT = 2  # bump when the cached forgetting counts change meaning (2: the kit's cache paths)
_NEGATIVE_ROUNDS = 20  # rejection rounds when drawing a negative that is not one of the user's positives


# ---------------------------------------------------------------------------------------------------------
# Result and input checks
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SampledData:
    """A sampled train matrix.

    Attributes:
        matrix: (n_users, n_items) float32 binary CSR with sorted indices, same shape as the sampler's input and a
            subset of its entries; dropped users are all-zero rows.
        users: (k,) int64 kept users in ascending order: the users with at least one kept interaction
            (interaction-RNS), or the users picked (user samplers).
        method: the sampler's name in :data:`SAMPLERS`.
        budget: ``{"n_users": N}`` or ``{"percent": p}``, as requested.
        info: what else the sampler knows (e.g. SVP-CF: ``from_cache``, ``proxy_seconds``, ``cache_path``).
    """

    matrix: sp.csr_matrix
    users: np.ndarray
    method: str
    budget: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Number of kept users."""
        return int(self.users.shape[0])

    @property
    def n_interactions(self) -> int:
        """Number of kept interactions."""
        return int(self.matrix.nnz)

    def rows(self) -> sp.csr_matrix:
        """(n_users kept, n_items) CSR of the kept users' rows only (``matrix[users]``), to train a model on."""
        return self.matrix[self.users]


def _check_budget(n_users, percent, n_candidates: int, method: str) -> dict[str, Any]:
    """Exactly one of ``n_users`` (1…n_candidates) and ``percent`` (0 < p ≤ 100); returns the budget dict."""
    if (n_users is None) == (percent is None):
        given = "both" if n_users is not None else "neither"
        raise ParameterError(
            f"{method}: give exactly one budget, n_users=<number of users> or percent=<% of interactions>; got "
            f"{given} (n_users={n_users!r}, percent={percent!r})."
        )
    if n_users is not None:
        if not is_int(n_users):
            raise ParameterError(f"{method}: n_users must be an integer number of users, got {n_users!r}.")
        if n_users <= 0:
            raise ParameterError(f"{method}: n_users must be ≥ 1, got {n_users}.")
        if n_users > n_candidates:
            raise ParameterError(
                f"{method}: n_users={n_users} is larger than the data: the matrix has {n_candidates} users with at "
                f"least one interaction. Use n_users ≤ {n_candidates} (or percent=100 for all the data)."
            )
        return {"n_users": int(n_users)}
    if isinstance(percent, (bool, np.bool_)) or not isinstance(percent, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{method}: percent must be a number in (0, 100], got {percent!r}.")
    if not math.isfinite(float(percent)) or not 0 < float(percent) <= 100:
        raise ParameterError(
            f"{method}: percent must be in (0, 100] (a share of the interactions), got {percent!r}; "
            "a budget ≤ 0 keeps nothing and one above 100 is larger than the data."
        )
    return {"percent": float(percent)}


def _entry_rows(X: sp.csr_matrix) -> np.ndarray:
    """(nnz,) row index of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))


def _keep_entries(X: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """The CSR made of X's entries where the (nnz,) boolean ``keep`` is true, same shape, values 1."""
    per_row = np.bincount(_entry_rows(X)[keep], minlength=X.shape[0])
    indptr = np.concatenate([[0], np.cumsum(per_row)]).astype(X.indptr.dtype)
    out = sp.csr_matrix((np.ones(int(indptr[-1]), np.float32), X.indices[keep], indptr), shape=X.shape)
    out.has_sorted_indices = True
    return out


def _keep_users(X: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """The CSR holding X's rows ``users`` and zeros elsewhere, same shape."""
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[users] = True
    return _keep_entries(X, np.repeat(mask, np.diff(X.indptr)))


def _take_users_in_order(X: sp.csr_matrix, order: np.ndarray, budget: dict[str, Any]) -> np.ndarray:
    """The prefix of ``order`` (non-empty users) meeting the budget: N users, or the shortest prefix whose
    interactions reach ``p·n/100``. Returns the chosen users, ascending."""
    if "n_users" in budget:
        chosen = order[: budget["n_users"]]
    else:
        target = budget["percent"] * X.nnz / 100.0
        cumulative = np.cumsum(np.diff(X.indptr)[order])
        n_take = min(int(np.searchsorted(cumulative, target, side="left")) + 1, order.shape[0])
        chosen = order[:n_take]
    return np.sort(chosen).astype(np.int64)


def _random_tiebreak(n: int, seed: int) -> np.ndarray:
    """A seeded random key per user, to break ties of an ordering (its own stream, independent of the others)."""
    return np.random.default_rng([seed, 7919]).permutation(n)


def _prepare(train, n_users, percent, seed, method: str):
    X = binary_interactions(train)
    if X.nnz == 0:
        raise DataError(f"{method}: the train matrix has no interactions; there is nothing to sample.")
    candidates = np.flatnonzero(np.diff(X.indptr) > 0)
    budget = _check_budget(n_users, percent, candidates.shape[0], method)
    return X, candidates, budget, check_seed(seed, f"{method}: seed")


# ---------------------------------------------------------------------------------------------------------
# Heuristic samplers
# ---------------------------------------------------------------------------------------------------------
def interaction_rns(train: MatrixLike, *, n_users: int | None = None, percent: float | None = None, seed: int = 0,
                    user_budget: str = "distinct-users") -> SampledData:
    """Interaction random sampling (B.2 "Interaction-RNS"): keep interactions drawn uniformly at random.

    All draws are a prefix of one seeded random order of X's interactions.

    Args:
        train: (n_users, n_items) binary interactions (scipy.sparse or dense).
        n_users: user budget N. The paper's budgets are shares of interactions; a user budget is read as
            ``user_budget`` says:

            * ``"distinct-users"`` (default): the longest prefix of the random order that touches exactly N
              users, i.e. random interactions are taken until the next one would bring in an (N+1)-th user.
              The sample has exactly N users, few interactions each when N is small; N = all users is all of X.
            * ``"matched-interactions"``: as many random interactions as N average users hold,
              ``round(N · n / users)`` (n interactions, users = users with an interaction); those may touch
              many more than N users.
        percent: keep exactly ``round(p · n / 100)`` interactions (at least 1).
        seed: seed of ``numpy.random.default_rng``.
        user_budget: see ``n_users``.

    Returns:
        :class:`SampledData`; ``users`` are the users with at least one kept interaction.
    """
    method = "interaction-rns"
    X, candidates, budget, seed = _prepare(train, n_users, percent, seed, method)
    if user_budget not in USER_BUDGET_MODES:
        raise ParameterError(f"{method}: user_budget must be one of {USER_BUDGET_MODES}, got {user_budget!r}.")
    rng = np.random.default_rng(seed)
    order = rng.permutation(X.nnz)
    entry_user = _entry_rows(X)
    if "percent" in budget:
        n_keep = max(1, int(np.floor(budget["percent"] * X.nnz / 100.0 + 0.5)))
    elif user_budget == "matched-interactions":
        n_keep = max(1, int(np.floor(budget["n_users"] * X.nnz / candidates.shape[0] + 0.5)))
    else:
        # Position in `order` where each user first appears; the (N+1)-th first appearance ends the prefix.
        users_in_order = entry_user[order]
        first_seen = np.full(X.shape[0], X.nnz, dtype=np.int64)
        np.minimum.at(first_seen, users_in_order, np.arange(X.nnz, dtype=np.int64))
        firsts = np.sort(first_seen[candidates])
        n_keep = int(firsts[budget["n_users"]]) if budget["n_users"] < firsts.shape[0] else X.nnz
    keep = np.zeros(X.nnz, dtype=bool)
    keep[order[:n_keep]] = True
    matrix = _keep_entries(X, keep)
    users = np.flatnonzero(np.diff(matrix.indptr) > 0).astype(np.int64)
    info = {"user_budget": user_budget} if "n_users" in budget else {}
    return SampledData(matrix, users, method, budget, info)


def user_rns(train: MatrixLike, *, n_users: int | None = None, percent: float | None = None, seed: int = 0) -> SampledData:
    """User random sampling (B.2 "User-RNS"): users drawn uniformly at random (without replacement), each with
    all of its interactions, until the budget is met.

    Args:
        train: (n_users, n_items) binary interactions.
        n_users: keep exactly this many users.
        percent: keep users until their interactions reach ``p·n/100`` (the last user whole).
        seed: seed of ``numpy.random.default_rng``.
    """
    method = "user-rns"
    X, candidates, budget, seed = _prepare(train, n_users, percent, seed, method)
    order = np.random.default_rng(seed).permutation(candidates)
    users = _take_users_in_order(X, order, budget)
    return SampledData(_keep_users(X, users), users, method, budget)


def head_user(train: MatrixLike, *, n_users: int | None = None, percent: float | None = None, seed: int = 0) -> SampledData:
    """Head-user sampling (B.2 "Head user"): the users with the most interactions first, each with all of its
    interactions, until the budget is met. Users with equal counts come in a seeded random order (the seed only
    matters for those ties).

    Args:
        train: (n_users, n_items) binary interactions.
        n_users: keep exactly this many users (the N heaviest).
        percent: keep the heaviest users until their interactions reach ``p·n/100`` (the last user whole).
        seed: seed of the tie-break.
    """
    method = "head-user"
    X, candidates, budget, seed = _prepare(train, n_users, percent, seed, method)
    counts = np.diff(X.indptr)[candidates]
    order = candidates[np.lexsort((_random_tiebreak(candidates.shape[0], seed), -counts))]
    users = _take_users_in_order(X, order, budget)
    return SampledData(_keep_users(X, users), users, method, budget)


# ---------------------------------------------------------------------------------------------------------
# SVP-CF: bias-only proxy, forgetting counts, cache
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BiasProxyConfig(DictConfig):
    """Training of SVP-CF's bias-only proxy; defaults are SVP-CF's code (``noveens/sampling_cf``,
    ``svp_handler.py``): 50 epochs, Adam (lr 0.006, betas (0.9, 0.98), weight decay 1e-6), batches of 1,024
    interactions, one sampled negative per interaction, BPR loss.

    Attributes:
        epochs: e, passes over the interactions (each in a fresh random order with fresh negatives).
        lr: Adam learning rate.
        batch_size: interactions per Adam step.
        weight_decay: L2 coefficient added to the gradient (PyTorch Adam's ``weight_decay``).
        beta1, beta2: Adam's moment decays.
        loss: ``"bpr"`` (−log σ(s_ui − s_uj), SVP-CF's implicit-feedback loss) or ``"logistic"`` (binary
            cross-entropy with the positive labelled 1 and the negative 0).
    """

    epochs: int = 50
    lr: float = 0.006
    batch_size: int = 1024
    weight_decay: float = 1e-6
    beta1: float = 0.9
    beta2: float = 0.98
    loss: str = "bpr"

    def __post_init__(self) -> None:
        self.check_int_fields(("epochs", "batch_size"), 1)
        self.check_real_field("lr", 0, low_open=True)
        self.check_real_field("weight_decay", 0)
        self.check_real_field("beta1", 0, 1, high_open=True)
        self.check_real_field("beta2", 0, 1, high_open=True)
        self.check_choice_field("loss", PROXY_LOSSES)


@dataclass
class ForgettingCounts:
    """SVP-CF's per-user forgetting counts.

    Attributes:
        per_user: (n_users,) float64, the proxy's inverse AUC on the user's interactions averaged over the
            epochs, in [0, 1] (1 = every positive ranked below its negative in every epoch); NaN for users
            without interactions.
        config: the proxy's training configuration.
        seed: the seed of the training.
        seconds: how long the proxy trained (when it was trained, even if this object comes from the cache).
        from_cache: whether these counts were read from the on-disk cache instead of trained now.
        cache_path: the cache file, when a cache directory was given.
    """

    per_user: np.ndarray
    config: BiasProxyConfig
    seed: int
    seconds: float
    from_cache: bool = False
    cache_path: Path | None = None


class _Adam:
    """Adam on one parameter vector, with PyTorch's L2 ``weight_decay`` (added to the gradient)."""

    def __init__(self, size: int, config: BiasProxyConfig):
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0
        self.c = config

    def step(self, param: np.ndarray, grad: np.ndarray) -> None:
        c = self.c
        self.t += 1
        if c.weight_decay:
            grad = grad + c.weight_decay * param
        self.m *= c.beta1
        self.m += (1 - c.beta1) * grad
        self.v *= c.beta2
        self.v += (1 - c.beta2) * grad * grad
        m_hat = self.m / (1 - c.beta1**self.t)
        v_hat = self.v / (1 - c.beta2**self.t)
        param -= c.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def _sample_negatives(users: np.ndarray, positive_keys: np.ndarray, n_items: int,
                      rng: np.random.Generator) -> np.ndarray:
    """One item per entry of ``users``, uniform over the items that are not that user's positives.

    Vectorised rejection: draw uniformly, redraw the draws that hit a positive (``positive_keys`` = sorted
    ``user · n_items + item``), up to ``_NEGATIVE_ROUNDS`` rounds; a user holding nearly every item may keep a
    positive as its negative (a tie, which is neither a forgetting event nor a gradient under BPR).
    """
    negatives = rng.integers(0, n_items, size=users.shape[0])
    pending = np.arange(users.shape[0])
    for _ in range(_NEGATIVE_ROUNDS):
        keys = users[pending] * np.int64(n_items) + negatives[pending]
        by_key = np.argsort(keys, kind="stable")  # sorted needles: searchsorted walks the keys in order
        at = np.searchsorted(positive_keys, keys[by_key])
        hit = np.zeros(pending.shape[0], dtype=bool)
        hit[by_key] = positive_keys[np.minimum(at, positive_keys.shape[0] - 1)] == keys[by_key]
        pending = pending[hit]
        if pending.shape[0] == 0:
            break
        negatives[pending] = rng.integers(0, n_items, size=pending.shape[0])
    return negatives


def _train_bias_proxy(X: sp.csr_matrix, config: BiasProxyConfig, seed: int) -> np.ndarray:
    """Train the bias-only proxy ``s_ui = g + b_u + b_i`` and count forgetting events.

    A forgetting event is a (positive, negative) pair of a batch that the proxy misranks (``s_uj > s_ui``) when
    the batch is scored, just before its update: with one negative per interaction, that is a one-pair
    estimate of the interaction's inverse AUC in that epoch (SVP-CF's ``num_incorrect``). Under BPR the user
    and global biases cancel in the loss, so their gradient is exactly zero (they stay at their initial values,
    0 and 0.5) and only item biases are trained; in any case they cancel in ``s_uj − s_ui``.

    Returns:
        (n_users,) float64: per user, the events summed over its interactions and epochs divided by
        (epochs · its interactions); NaN for users without interactions.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = X.shape
    users = _entry_rows(X)
    items = X.indices.astype(np.int64)
    positive_keys = users * np.int64(n_items) + items  # sorted: CSR rows in order, indices sorted
    user_bias, item_bias, global_bias = np.zeros(n_users), np.zeros(n_items), np.array([0.5])
    adam_item = _Adam(n_items, config)
    adam_user = _Adam(n_users, config) if config.loss == "logistic" else None
    adam_global = _Adam(1, config) if config.loss == "logistic" else None
    events = np.zeros(X.nnz, dtype=np.int64)
    B = config.batch_size
    for _epoch in range(config.epochs):
        perm = rng.permutation(X.nnz)
        negatives = _sample_negatives(users[perm], positive_keys, n_items, rng)
        for start in range(0, X.nnz, B):  # batches of interactions (Adam steps), vectorised within
            idx = perm[start:start + B]
            u, i, j = users[idx], items[idx], negatives[start:start + B]
            b = idx.shape[0]
            pos = global_bias[0] + user_bias[u] + item_bias[i]
            neg = global_bias[0] + user_bias[u] + item_bias[j]
            events[idx] += neg > pos
            if config.loss == "bpr":
                weight = -0.5 * (1.0 - np.tanh(0.5 * (pos - neg))) / b  # −(1 − σ(pos − neg)) / b, stable
                grad_item = np.bincount(i, weights=weight, minlength=n_items)
                grad_item -= np.bincount(j, weights=weight, minlength=n_items)
                adam_item.step(item_bias, grad_item)
            else:
                g_pos = -0.5 * (1.0 - np.tanh(0.5 * pos)) / b   # d softplus(−pos) / d pos = −σ(−pos)
                g_neg = 0.5 * (1.0 + np.tanh(0.5 * neg)) / b    # d softplus(neg) / d neg = σ(neg)
                grad_item = np.bincount(i, weights=g_pos, minlength=n_items)
                grad_item += np.bincount(j, weights=g_neg, minlength=n_items)
                grad_user = np.bincount(u, weights=g_pos + g_neg, minlength=n_users)
                adam_item.step(item_bias, grad_item)
                adam_user.step(user_bias, grad_user)
                adam_global.step(global_bias, np.array([g_pos.sum() + g_neg.sum()]))
    per_user_events = np.bincount(users, weights=events, minlength=n_users)
    per_user_n = np.diff(X.indptr).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(per_user_n > 0, per_user_events / (config.epochs * per_user_n), np.nan)


def _forgetting_cache_key(X: sp.csr_matrix, config: BiasProxyConfig, seed: int, dataset_name: str) -> dict[str, Any]:
    return {
        "format": _CACHE_FORMAT,
        "method": "svp-cf-bias-proxy-forgetting",
        "data": dataset_fingerprint(X, name=dataset_name),
        "config": config.to_dict(),
        "seed": seed,
    }


def forgetting_cache_path(key: dict[str, Any], cache_dir: str | os.PathLike) -> Path:
    """``cache_dir/svp-cf-<name>-<12 hex>.npz``, the hex a SHA-256 of the key (data fingerprint, config, seed,
    format; :func:`infae_kit.caching.entry_path`)."""
    return entry_path(cache_dir, f"svp-cf-{key['data'].get('name') or 'data'}", key, ".npz")


def _read_cached(path: Path, key: dict[str, Any]) -> tuple[np.ndarray, float] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored_key = json.loads(str(npz["key"]))
            per_user, seconds = np.array(npz["per_user"], dtype=np.float64), float(npz["seconds"])
    except UNREADABLE_ERRORS as exc:
        set_aside(path, f"{type(exc).__name__}: {exc}")
        return None
    if stored_key != json.loads(json.dumps(key)) or per_user.shape != (key["data"]["n_users"],):
        set_aside(path, "it holds another key (a digest collision or an edited file)")
        return None
    return per_user, seconds


def svp_cf_forgetting(train: MatrixLike, config: BiasProxyConfig | None = None, *, seed: int = 0,
                      cache_dir: str | os.PathLike | None = None, dataset_name: str = "") -> ForgettingCounts:
    """SVP-CF's per-user forgetting counts (B.2; Sachdeva et al. 2022, "On sampling collaborative filtering
    datasets"), from a bias-only proxy trained on ``train``.

    The proxy ``s_ui = g + b_u + b_i`` is trained for ``config.epochs`` epochs by minibatch Adam on every
    interaction paired with one uniformly drawn non-positive item. In each epoch every interaction contributes
    one forgetting event when the proxy, scoring its batch before the update, ranks the negative above the
    positive; a user's count is the mean over its interactions and the epochs, i.e. the proxy's inverse AUC on
    the user averaged over the epochs. (With a bias-only proxy that depends only on the item biases: users who
    consume items the proxy ranks low, i.e. unpopular ones, are the most "forgotten".)

    With ``cache_dir``, the counts are stored in ``cache_dir`` (atomic write), keyed by the data fingerprint
    (:func:`infae_kit.caching.dataset_fingerprint` of the binarised matrix and ``dataset_name``), ``config`` and
    ``seed``; a later call with the same key reads them instead of training (``from_cache=True``); a file that
    cannot be read is set aside and the counts trained again. The budget is not part of the key: one training
    serves every budget of a sweep.

    Args:
        train: (n_users, n_items) binary interactions.
        config: the proxy's training (:class:`BiasProxyConfig`; SVP-CF's defaults when ``None``).
        seed: seeds the epochs' orders and negatives.
        cache_dir: folder of the on-disk cache (created when needed); ``None`` = no cache.
        dataset_name: put in the cache file's name (the key also holds it).

    Returns:
        :class:`ForgettingCounts`.
    """
    config = BiasProxyConfig() if config is None else config
    if not isinstance(config, BiasProxyConfig):
        raise ParameterError(f"config must be a BiasProxyConfig, got {type(config).__name__}.")
    seed = check_seed(seed, "svp_cf_forgetting: seed")
    X = binary_interactions(train)
    if X.nnz == 0:
        raise DataError("svp_cf_forgetting: the train matrix has no interactions; there is nothing to train on.")
    path = None
    if cache_dir is not None:
        check_cache_format(cache_dir, "svp-cf", _CACHE_FORMAT, "svp-cf-*.npz")
        key = _forgetting_cache_key(X, config, seed, dataset_name)
        path = forgetting_cache_path(key, cache_dir)
        if path.exists():
            cached = _read_cached(path, key)
            if cached is not None:
                return ForgettingCounts(cached[0], config, seed, cached[1], from_cache=True, cache_path=path)
    start = time.perf_counter()
    per_user = _train_bias_proxy(X, config, seed)
    seconds = time.perf_counter() - start
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, per_user=per_user, seconds=np.float64(seconds), key=np.array(json.dumps(key, sort_keys=True)))
        atomic_write_bytes(path, buf.getvalue())
    return ForgettingCounts(per_user, config, seed, seconds, from_cache=False, cache_path=path)


def svp_cf_user(train: MatrixLike, *, n_users: int | None = None, percent: float | None = None, seed: int = 0,
                proxy: BiasProxyConfig | None = None, cache_dir: str | os.PathLike | None = None,
                dataset_name: str = "") -> SampledData:
    """SVP-CF-user sampling (B.2): users in decreasing order of forgetting count, each with all of its
    interactions, until the budget is met (SVP-CF keeps the users its proxy finds hardest). Equal counts come
    in a seeded random order.

    Args:
        train: (n_users, n_items) binary interactions.
        n_users: keep exactly this many users.
        percent: keep users until their interactions reach ``p·n/100`` (the last user whole).
        seed: seed of the proxy's training and of the tie-break.
        proxy: the proxy's training (:class:`BiasProxyConfig`); SVP-CF's defaults when ``None``.
        cache_dir: on-disk cache of the forgetting counts (see :func:`svp_cf_forgetting`); ``None`` = none.
        dataset_name: dataset name for the cache file.

    Returns:
        :class:`SampledData` whose ``info`` holds ``from_cache``, ``proxy_seconds`` and ``cache_path``.
    """
    method = "svp-cf"
    X, candidates, budget, seed = _prepare(train, n_users, percent, seed, method)
    counts = svp_cf_forgetting(X, proxy, seed=seed, cache_dir=cache_dir, dataset_name=dataset_name)
    order = candidates[np.lexsort((_random_tiebreak(candidates.shape[0], seed), -counts.per_user[candidates]))]
    users = _take_users_in_order(X, order, budget)
    info = {"from_cache": counts.from_cache, "proxy_seconds": counts.seconds,
            "cache_path": None if counts.cache_path is None else str(counts.cache_path)}
    return SampledData(_keep_users(X, users), users, method, budget, info)


# ---------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------
SAMPLERS: dict[str, Callable[..., SampledData]] = {
    "interaction-rns": interaction_rns,
    "user-rns": user_rns,
    "head-user": head_user,
    "svp-cf": svp_cf_user,
}
"""The heuristic samplers by name (DISTILL-CF is in :mod:`infae_kit.distill`; see the module docstring)."""


def sample(name: str, train: MatrixLike, /, *, n_users: int | None = None, percent: float | None = None, seed: int = 0,
           **options: Any) -> SampledData:
    """Run the sampler ``name`` of :data:`SAMPLERS` on ``train`` with one budget.

    ``options`` go to that sampler (``user_budget`` for interaction-RNS; ``proxy``, ``cache_dir`` and
    ``dataset_name`` for SVP-CF); an option the sampler does not take is an error.

    Raises:
        ParameterError: unknown sampler (the message lists the names), an option it does not take, a bad budget.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in SAMPLERS:
        hint = ""
        if key.startswith("distill"):
            hint = (" DISTILL-CF synthesises users rather than sampling them: use "
                    "infae_kit.distill.distill_cached(data, distill_config_for(name, budget=N), cache_dir).")
        raise ParameterError(f"Unknown sampler {name!r}; the samplers are {sorted(SAMPLERS)}.{hint}")
    sampler = SAMPLERS[key]
    accepted = set(inspect.signature(sampler).parameters) - {"train", "n_users", "percent", "seed"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ParameterError(
            f"Sampler {key!r} does not take the option(s) {unknown}; it takes {sorted(accepted) or 'none'}."
        )
    return sampler(train, n_users=n_users, percent=percent, seed=seed, **options)
