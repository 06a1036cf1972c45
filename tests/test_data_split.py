"""The paper's per-user split on raw tables."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from infae_kit.data import Interactions, build_rec_dataset, split_counts_per_user, split_per_user
from infae_kit.errors import DataError


def _table(counts, seed=0):
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(len(counts)) * 10 + 5, counts)
    rng.shuffle(user)
    item = np.arange(user.size) + 1000
    return Interactions(user=user, item=item, rating=np.ones(user.size), timestamp=np.arange(user.size) * 7)


@pytest.mark.parametrize(
    "n, expected", [(1, (0, 0, 0)), (2, (0, 0, 0)), (3, (1, 0, 2)), (4, (2, 0, 2)), (10, (7, 1, 2)), (20, (15, 2, 3))]
)
def test_counts_rule(n, expected):
    assert tuple(split_counts_per_user(np.array([n]))[0]) == expected
    labelled = split_per_user(_table([n, 5]), seed=1)
    mine = labelled.label[labelled.user == 5]
    if n < 3:
        assert np.all(mine == -1)
    else:
        assert (np.sum(mine == 0), np.sum(mine == 1), np.sum(mine == 2)) == expected


def test_counts_rule_matches_row_split_for_many_sizes():
    counts = np.arange(1, 400)
    labelled = split_per_user(_table(counts), seed=3)
    _, code = np.unique(labelled.user, return_inverse=True)
    got = np.zeros((counts.size, 4), dtype=int)
    np.add.at(got, (code, labelled.label.astype(int) + 1), 1)
    np.testing.assert_array_equal(got[:, 1:], split_counts_per_user(counts))


def test_seeded_and_deterministic_and_columns_stay_aligned():
    table = _table([30, 3, 2, 17, 50])
    a = split_per_user(table, seed=7)
    b = split_per_user(table, seed=7)
    c = split_per_user(table, seed=8)
    np.testing.assert_array_equal(a.label, b.label)
    assert not np.array_equal(a.label, c.label)
    # Row order and all other columns are untouched: timestamps still belong to their rows.
    np.testing.assert_array_equal(a.user, table.user)
    np.testing.assert_array_equal(a.item, table.item)
    np.testing.assert_array_equal(a.timestamp, table.timestamp)
    assert table.label is None  # input not modified


def test_removed_users_are_counted_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="infae_kit.data"):
        labelled = split_per_user(_table([5, 2, 1, 4]), seed=0)
    assert "2 of 4 users" in caplog.text
    ds = build_rec_dataset(labelled, name="toy", seed=0)
    assert ds.n_removed_users == 2 and ds.n_users == 2


def test_no_user_left_and_empty_table_are_errors():
    with pytest.raises(DataError, match="No user is left"):
        split_per_user(_table([1, 2, 2]), seed=0)
    with pytest.raises(DataError, match="no rows"):
        split_per_user(Interactions(user=np.array([], dtype=np.int64), item=np.array([], dtype=np.int64)), seed=0)


def test_repeated_rows_are_split_as_rows():
    # A user with the same item 6 times: rows are split (like the paper), the CSR collapses them.
    table = Interactions(user=np.zeros(6, dtype=np.int64), item=np.full(6, 3))
    ds = build_rec_dataset(split_per_user(table, seed=0), name="dup", seed=0)
    assert ds.train.nnz == 1 and ds.test.nnz == 1 and ds.n_duplicate_pairs == 5


def test_split_is_fast_on_a_million_rows():
    import time

    rng = np.random.default_rng(0)
    table = Interactions(user=rng.integers(0, 20_000, 1_000_000), item=rng.integers(0, 5000, 1_000_000))
    start = time.perf_counter()
    split_per_user(table, seed=0)
    assert time.perf_counter() - start < 5.0
