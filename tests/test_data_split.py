"""The paper's per-user split on raw tables."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from infae_kit.data import Interactions, build_rec_dataset, split_counts_per_user, split_per_user
from infae_kit.data.dataset import rec_dataset_from_csr
from infae_kit.data.split import split_labels_csr
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


def _csr_from_counts(counts, n_items=500, seed=0, repeats=0):
    """A users × items CSR (sorted rows) with ``counts[u]`` stored entries for user u (``repeats`` repeated pairs)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(n_items, size=c, replace=False)) for c in counts]
    if repeats:
        rows[-1] = np.sort(np.concatenate([rows[-1], rows[-1][:repeats]]))
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    return sp.csr_matrix((np.ones(indptr[-1], dtype=np.int8), np.concatenate(rows).astype(np.int32), indptr),
                         shape=(len(counts), n_items))


def test_csr_split_gives_every_user_the_rule_counts():
    counts = np.concatenate([np.arange(0, 400), [1, 2, 0, 5]])
    X = _csr_from_counts(counts)
    labels = split_labels_csr(X, seed=3)
    assert labels.dtype == np.int8 and labels.shape == (X.nnz,)
    row = np.repeat(np.arange(counts.size), counts)
    got = np.zeros((counts.size, 4), dtype=int)
    np.add.at(got, (row, labels.astype(int) + 1), 1)
    np.testing.assert_array_equal(got[:, 1:], split_counts_per_user(counts))
    np.testing.assert_array_equal(got[:, 0], np.where(counts < 3, counts, 0))


def test_csr_split_is_seeded_and_independent_of_the_block_size(monkeypatch):
    from infae_kit.data import split as split_module

    X = _csr_from_counts(np.arange(3, 200), seed=1)
    a = split_labels_csr(X, seed=7)
    np.testing.assert_array_equal(a, split_labels_csr(X, seed=7))
    assert (a != split_labels_csr(X, seed=8)).any()
    monkeypatch.setattr(split_module, "_SPLIT_BLOCK_ENTRIES", 100)  # many blocks, users never cut in two
    np.testing.assert_array_equal(a, split_labels_csr(X, seed=7))


def test_csr_split_orders_each_user_uniformly():
    # one user with 10 rows: rule 7 train / 1 val / 2 test; over many seeds each row is in train 70 % of the time
    X = _csr_from_counts([10])
    train_share = np.mean([split_labels_csr(X, seed=s) == 0 for s in range(3000)], axis=0)
    np.testing.assert_allclose(train_share, 0.7, atol=0.04)


def test_csr_split_errors():
    with pytest.raises(DataError, match="without any stored entry"):
        split_labels_csr(_csr_from_counts([0, 0]), seed=0)
    with pytest.raises(DataError, match="No user is left"):
        split_labels_csr(_csr_from_counts([1, 2]), seed=0)


def test_dataset_from_csr_equals_the_long_table_build():
    # repeated pairs, removed users, an item only removed users have: the two builders give the same dataset
    counts = [5, 2, 30, 0, 12, 3]
    import scipy.sparse as sp

    X = _csr_from_counts(counts, n_items=56, seed=2, repeats=3)  # the last user: 3 pairs, each twice
    X.indices[X.indptr[1]:X.indptr[2]] = [56, 57]  # items only user 1 (removed) has
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(6, 60))  # and items 58, 59 nobody has
    labels = split_labels_csr(X, seed=4)
    user_ids, item_ids = np.arange(len(counts)) * 3 + 100, np.arange(60) + 7
    ds = rec_dataset_from_csr(X, labels, name="csr", user_ids=user_ids, item_ids=item_ids, seed=4)
    row = np.repeat(np.arange(len(counts)), np.diff(X.indptr))
    table = Interactions(user=user_ids[row], item=item_ids[X.indices], label=labels)
    ref = build_rec_dataset(table, name="table", seed=4)
    for split in ("train", "val", "test"):
        mine, theirs = getattr(ds, split), getattr(ref, split)
        assert mine.shape == theirs.shape and (mine != theirs).nnz == 0
        assert mine.dtype == np.float32 and mine.has_canonical_format and mine.indices.dtype == np.int32
    np.testing.assert_array_equal(ds.user_ids, ref.user_ids)
    np.testing.assert_array_equal(ds.item_ids, ref.item_ids)
    assert ds.n_removed_users == ref.n_removed_users == 1
    assert ds.n_duplicate_pairs == ref.n_duplicate_pairs == 3
    assert ds.item_ids.max() < 56 + 7
    # labels that drop single rows (not whole users): a pair stored three times with its middle row dropped
    X5 = sp.csr_matrix((np.ones(7, dtype=np.int8), np.array([1, 4, 4, 4, 2, 3, 5], dtype=np.int32),
                        np.array([0, 4, 7])), shape=(2, 6))
    labels5 = np.array([0, 0, -1, 2, 0, -1, 2], dtype=np.int8)
    mine = rec_dataset_from_csr(X5, labels5, name="rows", user_ids=np.arange(2), item_ids=np.arange(6))
    row5 = np.repeat(np.arange(2), np.diff(X5.indptr))
    theirs = build_rec_dataset(Interactions(user=row5, item=X5.indices.astype(np.int64), label=labels5), name="t")
    assert mine.n_duplicate_pairs == theirs.n_duplicate_pairs == 1
    np.testing.assert_array_equal(mine.item_ids, theirs.item_ids)
    for split in ("train", "val", "test"):
        assert (getattr(mine, split) != getattr(theirs, split)).nnz == 0


def test_dataset_from_csr_rejects_misaligned_input():
    X = _csr_from_counts([5, 4])
    with pytest.raises(DataError, match="labels"):
        rec_dataset_from_csr(X, np.zeros(3, dtype=np.int8), name="x", user_ids=np.arange(2), item_ids=np.arange(500))
    with pytest.raises(DataError, match="ids"):
        rec_dataset_from_csr(X, np.zeros(9, dtype=np.int8), name="x", user_ids=np.arange(3), item_ids=np.arange(500))
