"""The paper's evaluation protocol (``docs/evaluation.md``), for any model that scores users.

* Validation pass: context = train rows, targets = validation positives, masked = train positives.
* Test pass: context = train + validation rows, targets = test positives, masked = train ∪ validation positives.
* AUC negatives and PSP propensities come from the paper protocol's train split, the same under either
  validation protocol (``RecDataset.paper_train``; see :mod:`infae_kit.data.holdout`).
* Masked items never enter a top-k list; AUC uses the unmasked scores of each user's target positives against
  that user's 50 sampled negatives, pooled over users into one ROC-AUC.
* Every metric is averaged over *all* users; a user without targets (Magazine validation) contributes 0,
  as in the paper's code rerun. HR/nDCG/PSP are reported in percent, AUC as a fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.checks import MatrixLike
from infae_kit.errors import NumericalError, ParameterError
from infae_kit.evaluation import metrics as M

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset

__all__ = [
    "SPLITS",
    "DEFAULT_KS",
    "DEFAULT_BATCH_USERS",
    "metric_names",
    "split_protocol",
    "propensity_weights_of",
    "EvaluationResult",
    "MetricAccumulator",
    "user_batches",
    "evaluate_scorer",
    "evaluate_model",
    "evaluate_rows",
    "equal_size_buckets",
    "hit_rate_by_user_bucket",
    "hit_rate_by_item_bucket",
]

SPLITS = ("val", "test")
DEFAULT_KS = (10, 100)
DEFAULT_BATCH_USERS = 20_000
"""Users scored at a time (the paper's code uses batches of 20,000)."""


def metric_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Metric names in the kit's canonical order: AUC, HR@k…, NDCG@k…, PSP@k…"""
    return ["AUC"] + [f"HR@{k}" for k in ks] + [f"NDCG@{k}" for k in ks] + [f"PSP@{k}" for k in ks]


def split_protocol(data: RecDataset, split: str) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """``(context, targets, excluded)`` rows for ``split`` (``"val"`` or ``"test"``) of a RecDataset."""
    if split == "val":
        return data.train, data.val, data.train
    if split == "test":
        ctx = data.train_val()
        return ctx, data.test, ctx
    raise ParameterError(f"split must be one of {SPLITS}, got {split!r}")


def propensity_weights_of(data: Any) -> np.ndarray:
    """(n_items,) PSP propensity weights of a dataset, counted on the paper protocol's train split.

    That split is ``data.paper_train()`` where the dataset has it (a :class:`~infae_kit.data.RecDataset`: its
    train plus any validation-holdout items, so both validation protocols score PSP with the same weights),
    else ``data.train``.
    """
    paper_train = getattr(data, "paper_train", None)
    return M.propensity_weights(paper_train() if callable(paper_train) else data.train)


@dataclass
class EvaluationResult:
    """Metrics of one model on one split.

    Attributes:
      metrics: ``{name: value}``: AUC as a fraction, HR/NDCG/PSP in percent (like the paper's tables).
      per_user: ``{name: (n_users,) array}`` of per-user fractions for HR/NDCG/PSP (0 for users without targets).
      n_users: users evaluated.
      top_k: ``(n_users, max k)`` recommended items, if requested.
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    n_users: int = 0
    top_k: np.ndarray | None = field(repr=False, default=None)


class MetricAccumulator:
    """Accumulates per-user metrics and AUC pools over batches of users.

    Args:
      targets: ``(n_users, n_items)`` csr of target positives.
      excluded: ``(n_users, n_items)`` csr of items to mask, or ``None``.
      weights: ``(n_items,)`` propensity weights for PSP (from the *train* split).
      negatives: ``(n_users, n_neg)`` sampled negatives for AUC, or ``None`` to skip AUC.
      ks: cut-offs.
      keep_top_k: keep the recommended lists (for cold-start analyses).
    """

    def __init__(self, targets: MatrixLike, excluded: MatrixLike | None, weights: np.ndarray,
                 negatives: np.ndarray | None = None, ks: Sequence[int] = DEFAULT_KS,
                 keep_top_k: bool = False):
        if not ks or any(int(k) <= 0 for k in ks):
            raise ParameterError(f"ks must be positive integers, got {ks!r}")
        self.targets = sp.csr_matrix(targets)
        self.excluded = None if excluded is None else sp.csr_matrix(excluded)
        self.weights = np.asarray(weights)
        self.negatives = negatives
        self.ks = tuple(int(k) for k in ks)
        self.keep_top_k = keep_top_k
        n = self.targets.shape[0]
        self.per_user = {f"{m}@{k}": np.zeros(n) for m in ("HR", "NDCG", "PSP") for k in self.ks}
        self._pos: list[np.ndarray] = []
        self._neg: list[np.ndarray] = []
        self._seen = np.zeros(n, dtype=bool)
        self.top_k = np.zeros((n, max(self.ks)), dtype=np.int32) if keep_top_k else None

    def add(self, rows: slice | np.ndarray, scores: np.ndarray, *, scores_writable: bool = False) -> None:
        """Score a batch: ``rows`` (a slice or index array of users) and their ``(n_rows, n_items)`` scores.

        With ``scores_writable=True`` the masked items are written into ``scores`` in place (no copy).
        """
        n_rows = len(range(*rows.indices(self.targets.shape[0]))) if isinstance(rows, slice) else len(rows)
        if scores.shape != (n_rows, self.targets.shape[1]):
            raise ParameterError(f"scores have shape {scores.shape}, expected {(n_rows, self.targets.shape[1])}")
        if not np.isfinite(scores).all():
            bad = int(np.sum(~np.isfinite(scores)))
            raise NumericalError(
                f"{bad} non-finite scores (NaN/inf) in a batch of {n_rows} users: the model's solve is "
                "numerically broken (try float64, or a larger ridge λ)."
            )
        tgt = self.targets[rows]
        if self.negatives is not None:
            pos, neg = M.auc_pools(scores, tgt, self.negatives[rows])  # before masking, as the paper's code
            self._pos.append(pos)
            self._neg.append(neg)
        exc = None if self.excluded is None else self.excluded[rows]
        top = M.top_k_items(scores, max(self.ks), exclude=exc, inplace=scores_writable)
        for name, values in M.ranking_metrics(top, tgt, self.ks, self.weights).items():
            self.per_user[name][rows] = values
        if self.top_k is not None:
            self.top_k[rows] = top
        self._seen[rows] = True

    def auc_pools(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(pos_scores, neg_scores)`` gathered so far, in the order the batches were added (``None`` without
        AUC negatives). Pools of several accumulators concatenated in user order give the pooled AUC of all."""
        if self.negatives is None:
            return None
        empty = np.empty(0, dtype=np.float64)
        return (np.concatenate(self._pos) if self._pos else empty, np.concatenate(self._neg) if self._neg else empty)

    def result(self) -> EvaluationResult:
        """Averages over all users (every user must have been scored)."""
        if not self._seen.all():
            raise ParameterError(f"{int((~self._seen).sum())} users were never scored")
        out = metrics_from_parts(self.per_user, self.auc_pools(), self.ks)
        return EvaluationResult(out, self.per_user, int(self.targets.shape[0]), self.top_k)


def metrics_from_parts(per_user: dict[str, np.ndarray], auc_pools: tuple[np.ndarray, np.ndarray] | None,
                       ks: Sequence[int]) -> dict[str, float]:
    """The protocol's metrics from per-user values and the AUC pools (the last step of
    :meth:`MetricAccumulator.result`, also used to merge accumulators that each scored a share of the users).

    Args:
      per_user: ``{"HR@k" | "NDCG@k" | "PSP@k": (n_users,) fractions}`` over every evaluated user.
      auc_pools: ``(pos_scores, neg_scores)`` pooled over every evaluated user, or ``None`` to skip AUC.
      ks: cut-offs.

    Returns:
      ``{name: value}`` in the canonical order: AUC as a fraction, HR/NDCG/PSP in percent.
    """
    out: dict[str, float] = {}
    if auc_pools is not None:
        out["AUC"] = float(M.pooled_auc(*auc_pools))
    for m in ("HR", "NDCG", "PSP"):
        for k in ks:
            out[f"{m}@{k}"] = float(100.0 * per_user[f"{m}@{k}"].mean())
    return {name: out[name] for name in metric_names(ks) if name in out}


def user_batches(n_users: int, batch_size: int = DEFAULT_BATCH_USERS) -> Iterable[slice]:
    """Consecutive user batches as slices (views, not copies, of dense arrays)."""
    if batch_size <= 0:
        raise ParameterError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, n_users, batch_size):
        yield slice(start, min(start + batch_size, n_users))


def evaluate_scorer(
    score_fn: Callable[..., np.ndarray],
    data: RecDataset,
    split: str = "test",
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = DEFAULT_BATCH_USERS,
    n_negatives: int = 50,
    negatives_seed: int = 42,
    keep_top_k: bool = False,
    pass_user_index: bool = False,
) -> EvaluationResult:
    """Evaluate ``score_fn(context_rows) -> scores`` on ``split`` of ``data`` with the paper's protocol.

    Args:
      score_fn: maps a ``(b, n_items)`` csr of context rows to ``(b, n_items)`` scores (e.g. ``model.predict``).
      data: a :class:`infae_kit.data.RecDataset`.
      split: ``"val"`` or ``"test"``.
      ks: cut-offs for HR/nDCG/PSP.
      batch_size: users scored at a time.
      n_negatives, negatives_seed: AUC negatives (``data.auc_negatives``).
      keep_top_k: keep the recommended lists in the result.
      pass_user_index: call ``score_fn(context_rows, users=row_indices)`` (models with per-user embeddings,
        such as MF or LightGCN, score the users they were fitted on by index).
    """
    context, targets, excluded = split_protocol(data, split)
    acc = MetricAccumulator(
        targets, excluded, propensity_weights_of(data),
        data.auc_negatives(n_negatives, negatives_seed) if n_negatives else None, ks, keep_top_k,
    )
    for rows in user_batches(context.shape[0], batch_size):
        if pass_user_index:
            scores = score_fn(context[rows], users=np.arange(rows.start, rows.stop))
        else:
            scores = score_fn(context[rows])
        acc.add(rows, np.asarray(scores))
    return acc.result()


def evaluate_model(model: Any, data: RecDataset, split: str = "test", **kwargs: Any) -> EvaluationResult:
    """Evaluate a fitted model (anything with ``predict(csr) -> scores``); see :func:`evaluate_scorer`.

    A model with ``needs_user_index = True`` (MF, NeuMF, LightGCN) gets each batch's user indices too.
    """
    kwargs.setdefault("pass_user_index", bool(getattr(model, "needs_user_index", False)))
    return evaluate_scorer(model.predict, data, split, **kwargs)


def evaluate_rows(model: Any, context: MatrixLike, targets: MatrixLike, weights: np.ndarray,
                  ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Metrics (no AUC) of ``model.predict(context)`` against ``targets``, each context row's own items excluded,
    every row one user scored in a single batch (e.g. the users of a continual-learning step).

    Args:
      model: anything with ``predict(csr) -> (b, n_items) scores``.
      context: ``(b, n_items)`` the users' known items (the model's input, and the items masked).
      targets: ``(b, n_items)`` their held-out positives.
      weights: ``(n_items,)`` PSP propensity weights.
      ks: cut-offs.
    """
    acc = MetricAccumulator(targets, context, weights, None, ks)
    acc.add(slice(0, context.shape[0]), model.predict(context), scores_writable=True)
    return acc.result().metrics


def equal_size_buckets(values: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket index (0 = smallest values) splitting ``values`` into ``n_buckets`` equal-count groups."""
    if n_buckets <= 0:
        raise ParameterError(f"n_buckets must be positive, got {n_buckets}")
    order = np.argsort(values, kind="stable")
    bucket = np.empty(len(values), dtype=np.int64)
    bucket[order] = np.arange(len(values)) * n_buckets // max(len(values), 1)
    return bucket


def hit_rate_by_user_bucket(per_user_hr: np.ndarray, train: sp.csr_matrix,
                            n_buckets: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Mean per-user HR within equal-size buckets of user activity (train interactions), coldest first.

    Returns ``(bucket_mean_activity, bucket_hr_percent)`` arrays of length ``n_buckets`` (paper Fig. 7, users).
    """
    activity = np.diff(sp.csr_matrix(train).indptr)
    b = equal_size_buckets(activity, n_buckets)
    means = np.array([activity[b == i].mean() for i in range(n_buckets)])
    hr = np.array([100.0 * per_user_hr[b == i].mean() for i in range(n_buckets)])
    return means, hr


def hit_rate_by_item_bucket(top_k: np.ndarray, targets: sp.csr_matrix, train: sp.csr_matrix, k: int = 100,
                            n_buckets: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """HR@k restricted to the target items of each popularity bucket (paper Fig. 7, items).

    Items are split into ``n_buckets`` equal-size buckets by train popularity (coldest first). For bucket ``b``
    the targets are restricted to its items and HR@k = |top-k ∩ T_b| / min(|T_b|, k) is averaged over users with
    at least one target in ``b``.

    Returns ``(bucket_mean_popularity, bucket_hr_percent)``.
    """
    targets = sp.csr_matrix(targets)
    popularity = np.asarray(sp.csr_matrix(train).sum(axis=0)).ravel()
    b = equal_size_buckets(popularity, n_buckets)
    means, hrs = [], []
    for i in range(n_buckets):
        keep = sp.diags((b == i).astype(np.float32))
        t_b = sp.csr_matrix(targets @ keep)
        t_b.eliminate_zeros()
        has = np.diff(t_b.indptr) > 0
        hr = M.hit_rate_at_k(top_k, t_b, k)
        means.append(popularity[b == i].mean())
        hrs.append(100.0 * hr[has].mean() if has.any() else np.nan)
    return np.array(means), np.array(hrs)
