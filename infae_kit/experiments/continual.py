"""Continual learning: a timestamped interaction log cut into periods, and what each strategy trains on.

The paper's §5 "simulate[s] a continual learning scenario by splitting the MovieLens-1M dataset into 17 equal
sized epochs"; the task at period t is "given data until the t-th period, maximize algorithm performance for
prediction on the (t+1)-th period". This module is the data plumbing of that protocol (the models come
elsewhere):

* :func:`split_into_periods`: sort the interactions by time and cut them into K periods. "Equal sized" is
  read as *equal numbers of interactions* (``by="interactions"``, the default): the sizes differ by at most
  one, the first ``N mod K`` periods taking the extra interaction. ``by="time"`` cuts the time range into K
  windows of equal length instead (their sizes then follow the activity of each window). Each period is a
  binary users × items CSR matrix over one user and item index shared by all periods.
* :func:`training_data`: what a model trains on at period t: ``"individual"``, period t only; ``"joint"``,
  periods 0..t together. (ADER and DISTILL-CF add a small memory of period t−1 to period t; they start from
  ``"individual"``.)
* :func:`next_period_targets` / :func:`continual_steps`: the evaluation of period t: the interactions of period
  t+1 of the users seen in periods 0..t, with each user's full history 0..t as the model's input (the same
  users, inputs and targets for every strategy, so strategies differ only in what the model was trained on).
  :func:`fold_in_targets` is the alternative for logs where users come and go in bursts: every user active in
  period t+1, with part of that period's items as input and the rest as targets.

A (user, item) pair that occurs more than once counts once, at its earliest time: an interaction is "new" in
the period where it first happens, so a target of period t+1 is never already in the user's history.
Interactions with the same timestamp keep the order of the input table (stable sort), so a cut may fall
between two interactions with the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp

from infae_kit.data.dataset import REMOVED, Interactions, RecDataset
from infae_kit.errors import DataError, ParameterError

__all__ = [
    "PAPER_N_PERIODS",
    "SPLIT_BY",
    "STRATEGIES",
    "EVALUATIONS",
    "PeriodSplit",
    "split_into_periods",
    "training_data",
    "next_period_targets",
    "split_rows",
    "fold_in_targets",
    "ContinualStep",
    "continual_steps",
]

PAPER_N_PERIODS = 17
"""Periods the paper cut ML-1M into (§5, Figure 5)."""

SPLIT_BY = ("interactions", "time")
STRATEGIES = ("individual", "joint")


@dataclass
class PeriodSplit:
    """A timestamped log cut into consecutive periods.

    Attributes:
        periods: K binary ``(n_users, n_items)`` float32 CSR matrices, one per period, over the same index.
        user_ids: ``(n_users,)`` original id of each row.
        item_ids: ``(n_items,)`` original id of each column.
        user, item, timestamp, period: the interactions in time order, one entry per interaction (int64 row
            index, column index, Unix time, period number).
        boundaries: ``(K + 1,)`` int64: period k holds the interactions of times in
            ``[boundaries[k], boundaries[k+1]]``; with ``by="time"`` the windows are ``[b_k, b_{k+1})`` except
            the last, which is closed.
        by: ``"interactions"`` or ``"time"``.
        n_repeats_dropped: rows dropped because their (user, item) pair had occurred earlier.
        name: the dataset's name.
    """

    periods: list[sp.csr_matrix]
    user_ids: np.ndarray
    item_ids: np.ndarray
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    period: np.ndarray
    boundaries: np.ndarray
    by: str
    n_repeats_dropped: int = 0
    name: str = ""

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """``(K,)`` number of interactions per period."""
        return np.bincount(self.period, minlength=self.n_periods)

    def history(self, t: int) -> sp.csr_matrix:
        """Binary union of periods ``0..t`` (each user's history up to and including period t)."""
        t = _check_period(self, t, last_allowed=self.n_periods - 1)
        return _union(self.periods[: t + 1], (self.n_users, self.n_items))

    def __repr__(self) -> str:
        return (
            f"PeriodSplit(name={self.name!r}, n_periods={self.n_periods}, by={self.by!r}, n_users={self.n_users}, "
            f"n_items={self.n_items}, sizes={self.sizes.tolist()})"
        )


def _union(mats: list[sp.csr_matrix], shape: tuple[int, int]) -> sp.csr_matrix:
    out = sp.csr_matrix(shape, dtype=np.float32)
    for m in mats:
        out = out + m
    out = sp.csr_matrix(out, dtype=np.float32)
    out.data[:] = 1.0
    out.sort_indices()
    return out


def _table_of(data: RecDataset | Interactions) -> tuple[Interactions, str]:
    if isinstance(data, RecDataset):
        if data.interactions is None:
            raise DataError(
                f"Dataset {data.name!r} carries no interaction table (only matrices), so it has no timestamps; "
                "build it from a rating file with times (e.g. read_movielens) to split it into periods."
            )
        return data.interactions, data.name
    if isinstance(data, Interactions):
        return data, data.source
    raise ParameterError(
        f"split_into_periods needs a RecDataset or an Interactions table, got {type(data).__name__}."
    )


def split_into_periods(
    data: RecDataset | Interactions,
    n_periods: int = PAPER_N_PERIODS,
    *,
    by: str = "interactions",
) -> PeriodSplit:
    """Cut a timestamped interaction log into ``n_periods`` consecutive periods.

    Rows labelled −1 (users removed by the paper's "< 3 interactions" rule) are left out, so for a
    :class:`RecDataset` the user and item index is exactly the dataset's (``ds.user_ids``, ``ds.item_ids``).
    For an unlabelled :class:`Interactions` table every row is used, indexed by sorted original ids.

    Args:
        data: a RecDataset (e.g. ``load_dataset("ml-100k")``) or an Interactions table with timestamps
            (e.g. ``read_movielens(".../ml-1m/ratings.dat")``).
        n_periods: K ≥ 2 (the paper: 17 on ML-1M).
        by: ``"interactions"`` (default: equal numbers of interactions, sizes within ±1, in time order) or
            ``"time"`` (K windows of equal length between the first and the last timestamp).

    Returns:
        :class:`PeriodSplit`.

    Raises:
        DataError: no timestamps (e.g. the paper's preprocessed ML-1M, Douban); fewer interactions than
            periods; with ``by="time"``, an empty window.
        ParameterError: ``n_periods`` < 2 or not an integer, unknown ``by``.
    """
    if isinstance(n_periods, bool) or not isinstance(n_periods, (int, np.integer)) or n_periods < 2:
        raise ParameterError(
            f"n_periods must be an integer >= 2 (at least one period to train on and one to predict), got {n_periods!r}."
        )
    if by not in SPLIT_BY:
        raise ParameterError(f"by must be one of {SPLIT_BY}, got {by!r}.")
    table, name = _table_of(data)
    if table.timestamp is None:
        raise DataError(
            f"Dataset {name!r} has no timestamps, so it cannot be split into periods by time. Datasets with "
            "timestamps in the kit: ml-100k, ml-latest-small, magazine, synthetic; for ML-1M read GroupLens' "
            "ratings.dat (UserID::MovieID::Rating::Timestamp) with infae_kit.data.read_movielens(path) and pass "
            "that table (the paper's preprocessed ml-1m and the Douban files carry no times)."
        )
    if table.label is not None:
        table = table.subset(table.label != REMOVED)
    n_rows = len(table)
    users, user_index = np.unique(table.user, return_inverse=True)
    items, item_index = np.unique(table.item, return_inverse=True)
    user_ids = users if table.user_ids is None else table.user_ids[users]
    item_ids = items if table.item_ids is None else table.item_ids[items]

    order = np.argsort(table.timestamp, kind="stable")
    u, i, ts = user_index[order].astype(np.int64), item_index[order].astype(np.int64), table.timestamp[order]
    _, first = np.unique(u * np.int64(items.shape[0]) + i, return_index=True)
    keep = np.sort(first)  # earliest occurrence of each pair, still in time order
    u, i, ts = u[keep], i[keep], ts[keep]
    n = u.shape[0]
    if n < n_periods:
        raise DataError(f"Dataset {name!r} has {n} distinct interactions, fewer than the {n_periods} periods asked for.")

    if by == "interactions":
        period = np.repeat(np.arange(n_periods), _equal_sizes(n, n_periods))
        starts = np.searchsorted(period, np.arange(n_periods))
        boundaries = np.append(ts[starts], ts[-1]).astype(np.int64)
    else:
        edges = np.linspace(float(ts[0]), float(ts[-1]), n_periods + 1)
        period = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, n_periods - 1)
        boundaries = np.floor(edges).astype(np.int64)
        empty = np.flatnonzero(np.bincount(period, minlength=n_periods) == 0)
        if empty.size:
            raise DataError(
                f"Dataset {name!r}: with by='time' and {n_periods} windows, window(s) {empty.tolist()} hold no "
                "interaction; use fewer periods or by='interactions'."
            )
    shape = (users.shape[0], items.shape[0])
    periods = []
    for k in range(n_periods):
        sel = period == k
        m = sp.csr_matrix((np.ones(int(sel.sum()), np.float32), (u[sel], i[sel])), shape=shape)
        m.sort_indices()
        periods.append(m)
    return PeriodSplit(
        periods=periods, user_ids=user_ids, item_ids=item_ids, user=u, item=i, timestamp=ts.astype(np.int64),
        period=period.astype(np.int64), boundaries=boundaries, by=by, n_repeats_dropped=int(n_rows - n), name=name,
    )


def _equal_sizes(n: int, k: int) -> np.ndarray:
    """Sizes of k consecutive parts of n items, differing by at most one (the larger parts first)."""
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return sizes


def _check_period(split: PeriodSplit, t, *, last_allowed: int) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= last_allowed:
        raise ParameterError(
            f"period t must be an integer in [0, {last_allowed}] for this split of {split.n_periods} periods, got {t!r}."
        )
    return int(t)


def training_data(split: PeriodSplit, t: int, strategy: str) -> sp.csr_matrix:
    """What a model is trained on at period t.

    Args:
        split: the periods.
        t: current period, ``0 <= t < K``.
        strategy: ``"individual"`` (period t only) or ``"joint"`` (periods 0..t, binary union).

    Returns:
        Binary ``(n_users, n_items)`` CSR (rows of users without data in it are empty).
    """
    if strategy not in STRATEGIES:
        raise ParameterError(
            f"strategy must be one of {STRATEGIES}, got {strategy!r} (ADER and DISTILL-CF add their memory to "
            "'individual')."
        )
    t = _check_period(split, t, last_allowed=split.n_periods - 1)
    if strategy == "individual":
        return split.periods[t].copy()
    return split.history(t)


def next_period_targets(split: PeriodSplit, t: int) -> sp.csr_matrix:
    """The interactions of period t+1 of the users seen in periods 0..t (the rows of other users are empty).

    Args:
        split: the periods.
        t: current period, ``0 <= t < K - 1``.

    Returns:
        Binary ``(n_users, n_items)`` CSR. Its entries are never in ``split.history(t)`` (pairs count once,
        at their first time).
    """
    t = _check_period(split, t, last_allowed=split.n_periods - 2)
    seen = np.diff(split.history(t).indptr) > 0
    nxt = split.periods[t + 1]
    return sp.csr_matrix(sp.diags(seen.astype(np.float32)) @ nxt, dtype=np.float32)


def split_rows(X: sp.csr_matrix, holdout: float, rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per row, hold out ⌈holdout · n⌉ of its n entries at random when n ≥ 2 (a row of one entry stays whole)."""
    counts = np.diff(X.indptr)
    row_of = np.repeat(np.arange(X.shape[0]), counts)
    order = np.lexsort((rng.random(X.nnz), row_of))
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - np.repeat(X.indptr[:-1], counts)
    n_out = np.where(counts >= 2, np.minimum(counts - 1, np.ceil(holdout * counts - 1e-9)), 0).astype(np.int64)
    out = rank < n_out[row_of]
    def rows_where(sel: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((X.data[sel], (row_of[sel], X.indices[sel])), shape=X.shape, dtype=np.float32)

    kept, held = rows_where(~out), rows_where(out)
    kept.sort_indices()
    held.sort_indices()
    return kept, held


def fold_in_targets(split: PeriodSplit, t: int, holdout: float = 0.2, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """An alternative evaluation of period t: every user active in period t+1, new users included.

    Each user's period-(t+1) items are split at random (seeded): ⌈holdout · n⌉ are held out as targets, the rest
    join the user's history 0..t as the model's input (users with a single item in t+1 have no target). This
    is MVAE's "fold-in" protocol for users, applied to the next period; it evaluates many more users than
    :func:`next_period_targets` on logs where users are active in short bursts (MovieLens).

    Args:
        split: the periods.
        t: current period, ``0 <= t < K - 1``.
        holdout: fraction of each user's period-(t+1) items held out, in (0, 1).
        seed: seed of the random split.

    Returns:
        ``(context, targets)``: binary ``(n_users, n_items)`` CSR matrices with no entry in common.
    """
    t = _check_period(split, t, last_allowed=split.n_periods - 2)
    if not isinstance(holdout, (int, float, np.floating)) or not 0.0 < float(holdout) < 1.0:
        raise ParameterError(f"holdout must be a fraction in (0, 1), e.g. 0.2, got {holdout!r}.")
    kept, held = split_rows(split.periods[t + 1], float(holdout), np.random.default_rng(seed))
    return _union([split.history(t), kept], (split.n_users, split.n_items)), held


@dataclass
class ContinualStep:
    """Everything one step of the continual protocol needs (train at t, evaluate on t+1).

    Attributes:
        period: t.
        strategy: ``"individual"`` or ``"joint"``.
        train: what the model trains on (:func:`training_data`).
        context: ``(n_users, n_items)`` the model's input at evaluation (and the items to exclude from its
            recommendations): each user's history 0..t (plus, with ``evaluation="fold-in"``, the user's
            non-held-out items of period t+1).
        targets: :func:`next_period_targets` or the held-out part of :func:`fold_in_targets`.
        users: indices of the users evaluated: those with at least one target.
    """

    period: int
    strategy: str
    train: sp.csr_matrix
    context: sp.csr_matrix
    targets: sp.csr_matrix
    users: np.ndarray


EVALUATIONS = ("next-period", "fold-in")


def continual_steps(
    split: PeriodSplit, strategy: str, *, evaluation: str = "next-period", holdout: float = 0.2, seed: int = 0
) -> Iterator[ContinualStep]:
    """The steps t = 0..K−2 of the protocol for one strategy: train on ``train``, score ``context[users]``,
    compare with ``targets[users]``.

    Args:
        split: the periods.
        strategy: ``"individual"`` or ``"joint"``.
        evaluation: ``"next-period"`` (:func:`next_period_targets`, users seen before, history as input) or
            ``"fold-in"`` (:func:`fold_in_targets`, every user active in t+1).
        holdout, seed: of ``"fold-in"`` (seed + t at step t, so steps differ but the run is reproducible).
    """
    if strategy not in STRATEGIES:
        training_data(split, 0, strategy)  # raises the error
    if evaluation not in EVALUATIONS:
        raise ParameterError(f"evaluation must be one of {EVALUATIONS}, got {evaluation!r}.")
    for t in range(split.n_periods - 1):
        if evaluation == "next-period":
            context, targets = split.history(t), next_period_targets(split, t)
        else:
            context, targets = fold_in_targets(split, t, holdout, seed + t)
        yield ContinualStep(
            period=t,
            strategy=strategy,
            train=training_data(split, t, strategy),
            context=context,
            targets=targets,
            users=np.flatnonzero(np.diff(targets.indptr) > 0),
        )
