"""Tests of infae_kit.experiments.continual: the period split and the per-strategy data of each step (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.experiments import continual as C
from infae_kit.data import Interactions, load_dataset
from infae_kit.errors import DataError, ParameterError


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", n_users=200, n_items=150, mean_interactions=15, seed=0)


def table(user, item, timestamp) -> Interactions:
    return Interactions(user=np.asarray(user), item=np.asarray(item), timestamp=np.asarray(timestamp), source="test")


def test_every_interaction_lands_in_exactly_one_period_in_time_order(synthetic):
    split = C.split_into_periods(synthetic, 17)
    union = sum(split.periods, sp.csr_matrix(split.periods[0].shape, dtype=np.float32))
    assert union.max() == 1.0  # no pair in two periods
    assert (union != synthetic.all_positives()).nnz == 0  # every pair of the dataset is in one
    assert union.nnz == split.user.shape[0] == synthetic.all_positives().nnz
    np.testing.assert_array_equal(split.user_ids, synthetic.user_ids)
    np.testing.assert_array_equal(split.item_ids, synthetic.item_ids)
    assert np.all(np.diff(split.timestamp) >= 0) and np.all(np.diff(split.period) >= 0)
    for k in range(split.n_periods - 1):  # periods follow one another in time
        assert split.timestamp[split.period == k].max() <= split.timestamp[split.period == k + 1].min()
    for k, m in enumerate(split.periods):  # the long table and the matrices agree
        sel = split.period == k
        np.testing.assert_array_equal(m.toarray()[split.user[sel], split.item[sel]], 1.0)
        assert m.nnz == sel.sum()


@pytest.mark.parametrize("n_periods", [2, 3, 17])
def test_periods_have_equal_sizes(synthetic, n_periods):
    sizes = C.split_into_periods(synthetic, n_periods).sizes
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == synthetic.all_positives().nnz
    assert np.all(np.diff(sizes) <= 0)  # the larger parts come first


def test_known_small_log():
    # user 0 rates item 0 twice (the later repeat is dropped); ties keep the table's order
    log = table(user=[0, 1, 0, 2, 1, 0, 2], item=[0, 0, 1, 1, 2, 0, 2], timestamp=[5, 1, 3, 3, 9, 7, 2])
    split = C.split_into_periods(log, 3)
    assert split.n_repeats_dropped == 1
    # time order: (1,0,t1) (2,2,t2) (0,1,t3) (2,1,t3) (0,0,t5) (1,2,t9) → sizes 2, 2, 2
    np.testing.assert_array_equal(split.sizes, [2, 2, 2])
    np.testing.assert_array_equal(split.user, [1, 2, 0, 2, 0, 1])
    np.testing.assert_array_equal(split.item, [0, 2, 1, 1, 0, 2])
    np.testing.assert_array_equal(split.boundaries, [1, 3, 5, 9])
    assert (split.periods[2].toarray() == np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])).all()


def test_split_by_equal_time_windows():
    log = table(user=[0, 0, 1, 1, 2, 2], item=[0, 1, 0, 1, 0, 1], timestamp=[0, 1, 2, 10, 19, 20])
    split = C.split_into_periods(log, 2, by="time")
    np.testing.assert_array_equal(split.sizes, [3, 3])
    np.testing.assert_array_equal(split.boundaries, [0, 10, 20])
    with pytest.raises(DataError, match="hold no interaction"):
        C.split_into_periods(log, 4, by="time")  # [5, 10) is empty


def test_strategies_and_next_period_targets(synthetic):
    split = C.split_into_periods(synthetic, 5)
    t = 2
    np.testing.assert_array_equal(C.training_data(split, t, "individual").toarray(), split.periods[t].toarray())
    joint = C.training_data(split, t, "joint")
    assert (joint != (split.periods[0] + split.periods[1] + split.periods[2])).nnz == 0
    targets = C.next_period_targets(split, t)
    seen = np.diff(joint.indptr) > 0
    nxt = split.periods[t + 1].toarray()
    np.testing.assert_array_equal(targets.toarray(), nxt * seen[:, None])
    assert targets.multiply(joint).nnz == 0  # a target is never in the history
    steps = list(C.continual_steps(split, "joint"))
    assert [s.period for s in steps] == [0, 1, 2, 3]
    assert (steps[t].targets != targets).nnz == 0 and (steps[t].context != joint).nnz == 0
    np.testing.assert_array_equal(steps[t].users, np.flatnonzero(np.diff(targets.indptr) > 0))
    individual = list(C.continual_steps(split, "individual"))
    assert all((a.targets != b.targets).nnz == 0 for a, b in zip(steps, individual))  # same evaluation


def test_fold_in_targets_cover_every_user_active_next(synthetic):
    split = C.split_into_periods(synthetic, 4)
    context, targets = C.fold_in_targets(split, 1, holdout=0.5, seed=1)
    nxt = split.periods[2]
    assert context.multiply(targets).nnz == 0
    assert ((context + targets) != (split.history(1) + nxt)).nnz == 0
    n_next = np.diff(nxt.indptr)
    expected = np.where(n_next >= 2, np.minimum(n_next - 1, np.ceil(0.5 * n_next)), 0)
    np.testing.assert_array_equal(np.diff(targets.indptr), expected)
    steps = list(C.continual_steps(split, "individual", evaluation="fold-in", holdout=0.5, seed=0))
    assert (steps[1].targets != targets).nnz == 0  # step t uses seed + t


def test_no_timestamps_is_a_clear_error():
    log = Interactions(user=np.array([0, 1, 2]), item=np.array([0, 1, 2]), source="no-times")
    with pytest.raises(DataError, match="no timestamps.*read_movielens"):
        C.split_into_periods(log, 2)


def test_bad_parameters_are_refused(synthetic):
    for k in (1, 0, -3, 2.5, True):
        with pytest.raises(ParameterError, match="n_periods"):
            C.split_into_periods(synthetic, k)
    with pytest.raises(ParameterError, match="by must be"):
        C.split_into_periods(synthetic, 3, by="days")
    split = C.split_into_periods(synthetic, 3)
    with pytest.raises(ParameterError, match="strategy"):
        C.training_data(split, 0, "ader")
    with pytest.raises(ParameterError, match="period t"):
        C.training_data(split, 3, "joint")
    with pytest.raises(ParameterError, match="period t"):
        C.next_period_targets(split, 2)  # no period after the last
    with pytest.raises(ParameterError, match="holdout"):
        C.fold_in_targets(split, 0, holdout=1.0)
    with pytest.raises(ParameterError, match="evaluation"):
        next(C.continual_steps(split, "joint", evaluation="later"))
    with pytest.raises(DataError, match="fewer than"):
        C.split_into_periods(table([0, 1], [0, 1], [1, 2]), 3)
