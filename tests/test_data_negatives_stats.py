"""AUC negatives and dataset statistics (the paper's Table 2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shared_data import needs_data_file
from infae_kit.data import dataset_statistics, load_dataset, sample_auc_negatives, statistics_table
from infae_kit.data.stats import abbreviate_count
from infae_kit.errors import DataError

needs_data = needs_data_file("magazine/index.npz")


def _random_csr(n_users, n_items, density, seed):
    m = sp.random(n_users, n_items, density=density, format="csr", random_state=seed, dtype=np.float32)
    m.data[:] = 1
    return m


def _check_negatives(neg, train, test, n):
    assert neg.dtype == np.int32 and neg.shape == (train.shape[0], n)
    pos = (train + test).tocsr()
    assert np.all(np.sort(neg, axis=1)[:, 1:] != np.sort(neg, axis=1)[:, :-1])  # distinct per row
    rows = np.repeat(np.arange(neg.shape[0]), n)
    assert np.asarray(pos[rows, neg.ravel()]).ravel().sum() == 0  # never a positive
    assert neg.min() >= 0 and neg.max() < train.shape[1]


def test_negatives_distinct_excluded_deterministic():
    train = _random_csr(500, 300, 0.3, 0)
    test = _random_csr(500, 300, 0.1, 1)
    # A nearly full user exercises the exact (dense) path.
    train = train.tolil()
    train[0, :200] = 1
    train = train.tocsr()
    neg = sample_auc_negatives(train, test, 50, seed=42)
    _check_negatives(neg, train, test, 50)
    np.testing.assert_array_equal(neg, sample_auc_negatives(train, test, 50, seed=42))
    assert not np.array_equal(neg, sample_auc_negatives(train, test, 50, seed=43))


def test_negatives_too_few_items_is_an_error():
    train = sp.csr_matrix(np.ones((2, 60), dtype=np.float32))
    train[1, :] = 0
    train.eliminate_zeros()
    with pytest.raises(DataError, match="row 0"):
        sample_auc_negatives(train, sp.csr_matrix((2, 60), dtype=np.float32), 50)


@needs_data
def test_negatives_on_ml1m_and_cache():
    ds = load_dataset("ml-1m")
    neg = ds.auc_negatives()
    _check_negatives(neg, ds.train, ds.test, 50)
    assert ds.auc_negatives() is neg and ds.auc_negatives(50, 7) is not neg


@needs_data
def test_statistics_and_table_2():
    magazine = load_dataset("magazine")
    mag = dataset_statistics(magazine)
    assert (mag["users"], mag["items"], mag["interactions"]) == (3092, 1305, 12_217)
    assert (mag["train"], mag["val"], mag["test"], mag["rows"]) == (5934, 436, 6145, 12_689)
    assert mag["users_removed"] == 69_006 and mag["duplicates_collapsed"] == 472
    assert mag["sparsity"] == pytest.approx(1 - 12_217 / (3092 * 1305))
    # Distinct pairs per user: a kept user can have 3 rows of one item (1 pair; PROVENANCE: min 3 rows).
    assert mag["interactions_per_user_min"] == 1
    kept_rows = magazine.interactions.user[magazine.interactions.label >= 0]
    assert np.unique(kept_rows, return_counts=True)[1].min() == 3
    ml = load_dataset("ml-1m").summary()
    assert (ml["users"], ml["items"], ml["interactions"]) == (6040, 3706, 1_000_209)
    assert ml["interactions_per_user_min"] == 20 and ml["interactions_per_user_max"] == 2314
    assert ml["interactions_per_user_median"] == 96
    table = statistics_table(["magazine", "ml-1m"])
    assert "| magazine | 3k | 1.3k | 12k | 99.7% |" in table
    # Paper prints 95.6%; 1 - 1,000,209 / (6,040 * 3,706) = 95.53%, so we print 95.5%.
    assert "| ml-1m | 6k | 3.7k | 1M | 95.5% |" in table


def test_abbreviation_matches_paper_convention():
    assert [abbreviate_count(n) for n in (3092, 1305, 12_217, 6040, 3706, 1_000_209, 1_278_328, 17_770, 480_189,
                                          100_480_507, 999)] == [
        "3k", "1.3k", "12k", "6k", "3.7k", "1M", "1.2M", "17k", "480k", "100M", "999"]


def test_degree_statistics_by_hand():
    from infae_kit.data.stats import degree_statistics, interaction_degrees

    X = sp.csr_matrix(np.array([[1, 1, 0, 0],
                                [1, 0, 0, 0],
                                [1, 1, 1, 0]], dtype=np.float32))
    users, items = interaction_degrees(X)
    assert users.tolist() == [2, 1, 3] and items.tolist() == [3, 2, 1, 0]
    st = degree_statistics(X, quantiles=(0.5,))
    assert (st["users"], st["items"], st["interactions"]) == (3, 4, 6) and st["density"] == 0.5
    assert st["user_degree"] == {"min": 1, "mean": 2.0, "max": 3, "q50": 2.0}
    assert st["item_degree"] == {"min": 0, "mean": 1.5, "max": 3, "q50": 1.5}
    with pytest.raises(Exception, match="quantiles"):
        degree_statistics(X, quantiles=(50,))


def test_degree_ccdf_and_shape_distance():
    from infae_kit.data.stats import degree_ccdf, degree_shape_distance

    x, ccdf = degree_ccdf(np.array([1, 1, 2, 4]))
    assert x.tolist() == [1, 2, 4] and ccdf.tolist() == [1.0, 0.5, 0.25]
    x, _ = degree_ccdf(np.array([1, 1, 2, 4]), normalise=True)
    assert x.tolist() == [0.5, 1.0, 2.0]
    degrees = np.random.default_rng(0).zipf(2.0, 5000)
    assert degree_shape_distance(degrees, 7 * degrees) == 0.0  # same shape, other scale
    assert degree_shape_distance(degrees, np.full(5000, 3)) > 0.5  # heavy tail against a constant
    assert degree_shape_distance(np.array([1, 2]), np.array([2, 1])) == 0.0
    with pytest.raises(DataError):
        degree_shape_distance(np.array([]), degrees)


def test_degree_comparison_and_table():
    from infae_kit.data.stats import degree_comparison, degree_table

    a = _random_csr(200, 50, 0.1, seed=1)
    big = sp.csr_matrix(sp.kron(np.ones((2, 3)), a))  # every degree scaled: same shapes
    comparison = degree_comparison({"a": a, "a ⊗ 1": big}, reference="a")
    assert comparison["a"]["user_degree_ks"] == 0.0 and comparison["a ⊗ 1"]["item_degree_ks"] == 0.0
    assert comparison["a ⊗ 1"]["users"] == 400 and comparison["a ⊗ 1"]["interactions"] == 6 * a.nnz
    table = degree_table(comparison)
    assert table.count("\n") == 3 and "| a ⊗ 1 | 400 | 150 |" in table
    with pytest.raises(Exception, match="reference"):
        degree_comparison({"a": a}, reference="b")
