"""Tests of infae_kit.experiments.sampling: budgets, subsets, determinism, head-user and SVP-CF orderings, the cache, errors."""

from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.experiments import sampling
from infae_kit.data import load_dataset
from infae_kit.errors import DataError, ParameterError
from infae_kit.experiments.sampling import (
    SAMPLERS,
    BiasProxyConfig,
    head_user,
    interaction_rns,
    sample,
    svp_cf_forgetting,
    svp_cf_user,
    user_rns,
)

FAST_PROXY = BiasProxyConfig(epochs=10, batch_size=256)


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    return load_dataset("synthetic", n_users=300, n_items=200, seed=3).train


def options_for(name: str) -> dict:
    return {"proxy": FAST_PROXY} if name == "svp-cf" else {}


def row_counts(X) -> np.ndarray:
    return np.diff(sp.csr_matrix(X).indptr)


def assert_subset(sampled: sp.csr_matrix, X: sp.csr_matrix) -> None:
    assert sampled.shape == X.shape
    assert sampled.dtype == np.float32 and np.all(sampled.data == 1.0)
    assert abs(sampled - sampled.multiply(X)).sum() == 0  # every sampled entry is an entry of X


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("n_users", [1, 37, 150])
def test_user_budget_is_exact_and_a_subset(train, name, n_users):
    s = sample(name, train, n_users=n_users, seed=0, **options_for(name))
    assert s.method == name and s.budget == {"n_users": n_users}
    assert s.n_users == n_users
    assert_subset(s.matrix, train)
    nonzero_rows = np.flatnonzero(row_counts(s.matrix) > 0)
    np.testing.assert_array_equal(nonzero_rows, s.users)  # kept users are exactly the non-empty rows
    assert np.all(np.diff(s.users) > 0)
    compact = s.rows()
    assert compact.shape == (n_users, train.shape[1])
    assert (compact != train[s.users]).nnz == 0 or name == "interaction-rns"


@pytest.mark.parametrize("name", ["user-rns", "head-user", "svp-cf"])
def test_user_samplers_keep_whole_users(train, name):
    s = sample(name, train, n_users=60, seed=1, **options_for(name))
    assert (s.rows() != train[s.users]).nnz == 0
    assert s.n_interactions == row_counts(train)[s.users].sum()


@pytest.mark.parametrize("name", ["user-rns", "head-user", "svp-cf"])
@pytest.mark.parametrize("percent", [0.5, 10, 33.3, 100])
def test_user_samplers_stop_at_the_first_user_reaching_the_percent_budget(train, name, percent):
    s = sample(name, train, percent=percent, seed=2, **options_for(name))
    assert_subset(s.matrix, train)
    target = percent * train.nnz / 100
    assert s.n_interactions >= target
    # Without its last user the sample would be short of the budget; the last user holds at most the max.
    assert s.n_interactions - row_counts(s.matrix)[s.users].max() < target
    if percent == 100:
        assert (s.matrix != train).nnz == 0


@pytest.mark.parametrize("percent", [0.1, 1, 12.5, 50, 100])
def test_interaction_rns_keeps_the_requested_share_of_interactions(train, percent):
    s = interaction_rns(train, percent=percent, seed=4)
    assert s.n_interactions == max(1, int(np.floor(percent * train.nnz / 100 + 0.5)))
    assert_subset(s.matrix, train)
    np.testing.assert_array_equal(s.users, np.flatnonzero(row_counts(s.matrix) > 0))


def test_interaction_rns_draws_interactions_not_users(train):
    # A 30 % interaction sample touches nearly every user, with about 30 % of each user's interactions.
    s = interaction_rns(train, percent=30, seed=0)
    assert s.n_users > 0.9 * train.shape[0]
    heavy = row_counts(train) >= 40
    share = row_counts(s.matrix)[heavy] / row_counts(train)[heavy]
    assert 0.2 < share.mean() < 0.4


def test_interaction_rns_user_budget_modes(train):
    n_candidates = int((row_counts(train) > 0).sum())
    distinct = interaction_rns(train, n_users=50, seed=5)
    assert distinct.n_users == 50 and distinct.info["user_budget"] == "distinct-users"
    # Maximal prefix: the same random order, one more user allowed, keeps strictly more interactions.
    assert interaction_rns(train, n_users=51, seed=5).n_interactions > distinct.n_interactions
    assert abs(interaction_rns(train, n_users=n_candidates, seed=5).matrix - train).sum() == 0
    matched = interaction_rns(train, n_users=50, seed=5, user_budget="matched-interactions")
    assert matched.n_interactions == int(np.floor(50 * train.nnz / n_candidates + 0.5))
    assert matched.n_users > 50  # spread over many users
    with pytest.raises(ParameterError, match="user_budget"):
        interaction_rns(train, n_users=50, user_budget="users")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_sample(train, name):
    a = sample(name, train, n_users=40, seed=11, **options_for(name))
    b = sample(name, train, n_users=40, seed=11, **options_for(name))
    np.testing.assert_array_equal(a.users, b.users)
    assert (a.matrix != b.matrix).nnz == 0


@pytest.mark.parametrize("name", ["interaction-rns", "user-rns", "svp-cf"])
def test_different_seeds_different_samples(train, name):
    budget = {"percent": 20} if name == "interaction-rns" else {"n_users": 40}
    a = sample(name, train, seed=0, **budget, **options_for(name))
    b = sample(name, train, seed=1, **budget, **options_for(name))
    assert (a.matrix != b.matrix).nnz > 0


def test_head_user_picks_the_heaviest_users(train):
    counts = row_counts(train)
    for n_users in (1, 25, 100):
        s = head_user(train, n_users=n_users, seed=0)
        dropped = np.setdiff1d(np.arange(train.shape[0]), s.users)
        assert counts[s.users].min() >= counts[dropped].max()
    assert head_user(train, n_users=1).users[0] == np.argmax(counts)
    # The seed only breaks ties: the kept counts are the same whatever the seed.
    a, b = head_user(train, n_users=100, seed=0), head_user(train, n_users=100, seed=9)
    np.testing.assert_array_equal(np.sort(counts[a.users]), np.sort(counts[b.users]))


def test_empty_rows_are_never_sampled():
    X = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=np.float32))
    for name in SAMPLERS:
        s = sample(name, X, n_users=3, seed=0, **options_for(name))
        np.testing.assert_array_equal(s.users, [0, 2, 4])
        with pytest.raises(ParameterError, match="3 users with at least one interaction"):
            sample(name, X, n_users=4, **options_for(name))


def test_input_is_binarised_and_not_modified(train):
    X = train.copy()
    X.data[::7] = 2.0
    before = X.copy()
    for name in SAMPLERS:
        s = sample(name, X, percent=50, seed=0, **options_for(name))
        assert np.all(s.matrix.data == 1.0)
    assert (X != before).nnz == 0
    dense = user_rns(train.toarray(), n_users=10, seed=0)  # dense input works too
    assert (dense.matrix != user_rns(train, n_users=10, seed=0).matrix).nnz == 0


# ---------------------------------------------------------------------------------------------------------
# SVP-CF on planted data
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted():
    """120 structured users consume only the 20 most popular items; 30 noise users pick 10 items uniformly
    from the whole catalogue of 200. A bias-only proxy learns that items 0–19 are popular, so it ranks the
    structured users' items above almost every negative (few forgetting events) and the noise users' items,
    mostly unpopular, below about half of them: SVP-CF must rank the noise users first."""
    rng = np.random.default_rng(0)
    n_items, rows = 200, []
    for _ in range(120):
        rows.append(rng.choice(20, size=10, replace=False))
    noise_users = np.arange(120, 150)
    for _ in noise_users:
        rows.append(rng.choice(n_items, size=10, replace=False))
    order = rng.permutation(150)  # interleave the two groups
    X = np.zeros((150, n_items), dtype=np.float32)
    for position, user in enumerate(order):
        X[position, rows[user]] = 1.0
    noise_positions = np.flatnonzero(np.isin(order, noise_users))
    return sp.csr_matrix(X), noise_positions


@pytest.mark.parametrize("loss", ["bpr", "logistic"])
def test_svp_cf_forgets_noise_users_most(planted, loss):
    X, noise = planted
    counts = svp_cf_forgetting(X, BiasProxyConfig(loss=loss), seed=0)
    structured = np.setdiff1d(np.arange(X.shape[0]), noise)
    assert counts.per_user.shape == (X.shape[0],) and np.all((counts.per_user >= 0) & (counts.per_user <= 1))
    assert counts.per_user[noise].min() > counts.per_user[structured].max()
    assert counts.per_user[noise].mean() > 0.3 and counts.per_user[structured].mean() < 0.1
    s = svp_cf_user(X, n_users=noise.shape[0], seed=0, proxy=BiasProxyConfig(loss=loss))
    np.testing.assert_array_equal(s.users, noise)


def test_svp_cf_forgetting_is_nan_for_empty_users():
    X = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32))
    counts = svp_cf_forgetting(X, FAST_PROXY, seed=0)
    assert np.isnan(counts.per_user[1]) and np.all(np.isfinite(counts.per_user[[0, 2]]))


def test_svp_cf_cache_hits_without_retraining(train, tmp_path, monkeypatch):
    first = svp_cf_forgetting(train, FAST_PROXY, seed=3, cache_dir=tmp_path, dataset_name="synthetic")
    assert not first.from_cache and first.cache_path.exists() and first.cache_path.parent == tmp_path
    assert first.cache_path.name.startswith("svp-cf-synthetic-")

    def no_training(*args, **kwargs):
        raise AssertionError("the proxy was retrained although its counts are cached")

    monkeypatch.setattr(sampling, "_train_bias_proxy", no_training)
    second = svp_cf_forgetting(train, FAST_PROXY, seed=3, cache_dir=tmp_path, dataset_name="synthetic")
    assert second.from_cache and second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.per_user, first.per_user)
    assert second.seconds == first.seconds
    # The sampler (also through the dispatcher) uses the same cache, for every budget, and says so.
    for budget in ({"n_users": 20}, {"percent": 40}):
        s = svp_cf_user(train, seed=3, proxy=FAST_PROXY, cache_dir=tmp_path, dataset_name="synthetic", **budget)
        assert s.info["from_cache"] is True
        s = sample("svp-cf", train, seed=3, proxy=FAST_PROXY, cache_dir=tmp_path, dataset_name="synthetic", **budget)
        assert s.info["from_cache"] is True and s.info["cache_path"] == str(first.cache_path)
    # Another seed, configuration or dataset is another key: it trains (and so hits the patched trainer).
    other_config = BiasProxyConfig(epochs=11, batch_size=256)
    for kwargs in ({"config": FAST_PROXY, "seed": 4}, {"config": other_config, "seed": 3}):
        with pytest.raises(AssertionError, match="retrained"):
            svp_cf_forgetting(train, cache_dir=tmp_path, dataset_name="synthetic", **kwargs)
    with pytest.raises(AssertionError, match="retrained"):
        svp_cf_forgetting(train[:-1], FAST_PROXY, seed=3, cache_dir=tmp_path, dataset_name="synthetic")
    # one entry and the folder's format marker: no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [".infae_cache-svp-cf.format", first.cache_path.name]


@pytest.mark.parametrize("damage", [b"not an npz", b"PK\x03\x04truncated"])
def test_svp_cf_cache_recovers_from_a_corrupt_file(train, tmp_path, damage):
    from infae_kit.caching import DamagedCacheWarning

    first = svp_cf_forgetting(train, FAST_PROXY, seed=0, cache_dir=tmp_path)
    first.cache_path.write_bytes(damage)
    with pytest.warns(DamagedCacheWarning, match=first.cache_path.name):
        again = svp_cf_forgetting(train, FAST_PROXY, seed=0, cache_dir=tmp_path)
    assert not again.from_cache and len(list(tmp_path.glob("svp-cf-*.damaged-*"))) == 1
    np.testing.assert_array_equal(again.per_user, first.per_user)  # training is deterministic per seed
    assert svp_cf_forgetting(train, FAST_PROXY, seed=0, cache_dir=tmp_path).from_cache


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize(
    "budget, message",
    [
        ({}, "exactly one budget"),
        ({"n_users": 5, "percent": 10}, "exactly one budget"),
        ({"n_users": 0}, "n_users must be ≥ 1"),
        ({"n_users": -3}, "n_users must be ≥ 1"),
        ({"n_users": 301}, "larger than the data"),
        ({"n_users": 10.0}, "integer"),
        ({"n_users": True}, "integer"),
        ({"percent": 0}, r"\(0, 100\]"),
        ({"percent": -5}, r"\(0, 100\]"),
        ({"percent": 100.5}, r"\(0, 100\]"),
        ({"percent": float("nan")}, r"\(0, 100\]"),
        ({"percent": "10"}, "number"),
    ],
)
def test_bad_budgets_raise(train, name, budget, message):
    with pytest.raises(ParameterError, match=message):
        sample(name, train, seed=0, **budget, **options_for(name))


def test_bad_names_options_and_data(train):
    with pytest.raises(ParameterError, match=r"Unknown sampler 'random'.*head-user.*interaction-rns.*svp-cf.*user-rns"):
        sample("random", train, n_users=5)
    with pytest.raises(ParameterError, match="distill_cached"):
        sample("distill-cf", train, n_users=5)
    assert sample("Head_User", train, n_users=5).method == "head-user"
    with pytest.raises(ParameterError, match=r"does not take the option\(s\) \['cache_dir'\]"):
        sample("user-rns", train, n_users=5, cache_dir="x")
    with pytest.raises(ParameterError, match="seed"):
        user_rns(train, n_users=5, seed=-1)
    with pytest.raises(DataError, match="no interactions"):
        user_rns(sp.csr_matrix((4, 3), dtype=np.float32), n_users=1)
    with pytest.raises(DataError, match="negative"):
        user_rns(-train, n_users=1)
    with pytest.raises(ParameterError, match="BiasProxyConfig.loss"):
        BiasProxyConfig(loss="mse")
    with pytest.raises(ParameterError, match="epochs"):
        BiasProxyConfig(epochs=0)
    with pytest.raises(ParameterError, match=r"BiasProxyConfig.lr must be a finite number > 0, got -1.0"):
        BiasProxyConfig(lr=-1.0)
    with pytest.raises(ParameterError, match=r"BiasProxyConfig.beta2 must be a number in \[0, 1\), got 1"):
        BiasProxyConfig(beta2=1)
    with pytest.raises(ParameterError, match=r"unknown BiasProxyConfig fields \['lr_decay'\]"):
        BiasProxyConfig.from_dict({"epochs": 3, "lr_decay": 0.5})
    assert BiasProxyConfig.from_dict(BiasProxyConfig(epochs=3).to_dict()) == BiasProxyConfig(epochs=3)
    with pytest.raises(ParameterError, match="BiasProxyConfig"):
        svp_cf_forgetting(train, {"epochs": 3})
