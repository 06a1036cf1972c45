"""Tests of infae_kit.experiments.noise: exact flips per user, identity at 0 %, complement at 100 %, seeds, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.experiments import noise
from infae_kit.data import load_dataset
from infae_kit.errors import DataError, ParameterError
from infae_kit.experiments.noise import add_noise, flips_per_user


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    return load_dataset("synthetic", n_users=250, n_items=180, seed=1).train


def flips_by_row(a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    return np.asarray(abs(a - b).sum(axis=1)).ravel().astype(np.int64)


def test_flips_per_user_rounds_to_nearest():
    assert flips_per_user(3706, 5) == 185        # 185.3
    assert flips_per_user(10, 25) == 3           # 2.5, halves up
    assert flips_per_user(180, 0) == 0 and flips_per_user(180, 100) == 180


@pytest.mark.parametrize("percent", [0.5, 1, 5, 12.5, 50, 99])
def test_every_user_gets_exactly_k_flips(train, percent):
    noisy = add_noise(train, percent, seed=0)
    k = flips_per_user(train.shape[1], percent)
    assert k > 0
    np.testing.assert_array_equal(flips_by_row(noisy, train), np.full(train.shape[0], k))
    assert noisy.shape == train.shape and noisy.dtype == np.float32
    assert np.all(noisy.data == 1.0) and noisy.has_sorted_indices
    # Both directions happen: some interactions removed, some added.
    removed = abs(train - train.multiply(noisy)).sum()
    added = abs(noisy - noisy.multiply(train)).sum()
    assert added > 0 and (removed > 0 or percent < 1)
    assert removed + added == k * train.shape[0]


def test_zero_percent_is_the_identity_and_a_copy(train):
    noisy = add_noise(train, 0, seed=5)
    assert (noisy != train).nnz == 0 and noisy is not train
    noisy.data[:] = 0.0
    assert train.data.min() == 1.0  # the input is untouched


def test_hundred_percent_is_the_complement(train):
    noisy = add_noise(train, 100, seed=0)
    np.testing.assert_array_equal(noisy.toarray(), 1.0 - train.toarray())


def test_seeds(train):
    a, b, c = add_noise(train, 5, seed=3), add_noise(train, 5, seed=3), add_noise(train, 5, seed=4)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0


def test_flipped_items_are_uniform_over_the_catalogue(train):
    # Each item is flipped in a user's row with probability k / n_items: about 250·18/180 = 25 times here.
    noisy = add_noise(train, 10, seed=0)
    per_item = np.asarray(abs(noisy - train).sum(axis=0)).ravel()
    k, n_users, n_items = flips_per_user(180, 10), train.shape[0], train.shape[1]
    expected = n_users * k / n_items
    assert per_item.sum() == n_users * k
    chi2 = ((per_item - expected) ** 2 / expected).sum()
    assert chi2 < n_items + 5 * np.sqrt(2 * n_items)  # chi-square with n_items − 1 dof, far from its tail


def test_blocks_of_users_give_exact_flips(train, monkeypatch):
    # Force many small blocks (3 users each) so that the block loop and its last partial block are exercised.
    monkeypatch.setattr(noise, "_BLOCK_CELLS", 3 * train.shape[1])
    noisy = add_noise(train, 7, seed=0)
    np.testing.assert_array_equal(flips_by_row(noisy, train), flips_per_user(train.shape[1], 7))


def test_empty_rows_and_non_binary_input():
    X = sp.csr_matrix(np.array([[0, 0, 0, 0], [2, 0, 1, 0]], dtype=np.float32))
    noisy = add_noise(X, 50, seed=0)
    assert np.all(noisy.data == 1.0)
    np.testing.assert_array_equal(np.asarray(abs(noisy - (X > 0)).sum(axis=1)).ravel(), [2, 2])
    dense = add_noise(X.toarray(), 50, seed=0)
    assert (dense != noisy).nnz == 0


@pytest.mark.parametrize("percent", [-0.1, 100.01, float("nan"), float("inf"), "5", True, None])
def test_bad_percent_raises(train, percent):
    with pytest.raises(ParameterError, match="percent"):
        add_noise(train, percent)


def test_bad_seed_and_data_raise(train):
    with pytest.raises(ParameterError, match="seed"):
        add_noise(train, 5, seed=-1)
    with pytest.raises(ParameterError, match="seed"):
        add_noise(train, 5, seed=1.5)
    with pytest.raises(DataError, match="negative"):
        add_noise(-train, 5)
    with pytest.raises(DataError, match="2-D"):
        add_noise(np.ones(4), 5)
