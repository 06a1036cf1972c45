"""Fractal expansion: hand-worked Kronecker products, exact block sizes, determinism, the reduction, the cache,
and the shape and density of the registered Netflix-shaped expansions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from shared_data import needs_data_file
from infae_kit.data import RecDataset, build_rec_dataset, load_dataset, make_synthetic
from infae_kit.data.fractal import (FRACTAL_SPECS, FractalSpec, block_keep_counts, fractal_cache_path,
                                    fractal_dataset, fractal_expand, keep_probabilities, reduced_seed_matrix,
                                    resize_rows)
from infae_kit.data.split import split_counts_per_user
from infae_kit.caching import DamagedCacheWarning
from infae_kit.errors import DataError, ParameterError

needs_ml1m = needs_data_file("ml-1m/total_data.hdf5")

R_SMALL = np.array([[1, 0, 1],
                    [0, 1, 0]])


def test_plain_kronecker_by_hand():
    keep = np.array([[1.0, 0.0],
                     [1.0, 1.0]])
    expected = np.array([
        [1, 0, 1, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [1, 0, 1, 1, 0, 1],
        [0, 1, 0, 0, 1, 0],
    ])
    X = fractal_expand(R_SMALL, keep, seed=3, shuffle="none")
    np.testing.assert_array_equal(X.toarray(), expected)
    np.testing.assert_array_equal(expected, np.kron(keep, R_SMALL))
    assert X.indices.dtype == np.int32 and X.has_sorted_indices


def _random_binary(m: int, n: int, density: float, seed: int) -> sp.csr_matrix:
    R = sp.random(m, n, density=density, random_state=seed, format="csr")
    R.data[:] = 1.0
    return R


def _block(X, a, b, m, n):
    return X[a * m:(a + 1) * m, b * n:(b + 1) * n].toarray()


def test_shuffled_blocks_are_permuted_copies():
    R = _random_binary(30, 20, 0.2, seed=1)
    dense = R.toarray()
    ones = np.ones((3, 2))
    by_rows = fractal_expand(R, ones, seed=5, shuffle="rows")
    both = fractal_expand(R, ones, seed=5, shuffle="rows+columns")
    sv = np.linalg.svd(dense, compute_uv=False)
    row_blocks_differ = False
    for a in range(3):
        for b in range(2):
            block = _block(by_rows, a, b, 30, 20)
            # the same rows, in another order; columns untouched
            assert sorted(map(tuple, block)) == sorted(map(tuple, dense))
            row_blocks_differ |= not np.array_equal(block, dense)
            shuffled = _block(both, a, b, 30, 20)
            np.testing.assert_allclose(np.linalg.svd(shuffled, compute_uv=False), sv, atol=1e-9)
            assert sorted(shuffled.sum(0)) == sorted(dense.sum(0)) and sorted(shuffled.sum(1)) == sorted(dense.sum(1))
    assert row_blocks_differ
    # an expanded user is a mix of different source users: not a plain repetition
    assert not np.array_equal(_block(by_rows, 0, 0, 30, 20), _block(by_rows, 0, 1, 30, 20))


def test_blocks_keep_exact_counts_of_source_interactions():
    R = _random_binary(40, 25, 0.25, seed=2)
    keep = np.array([[0.5, 0.1, 1.0],
                     [0.0, 0.33, 0.77]])
    X = fractal_expand(R, keep, seed=11, shuffle="none")
    counts = block_keep_counts(keep, R.nnz)
    np.testing.assert_array_equal(counts, np.rint(keep * R.nnz))
    dense = R.toarray()
    for a in range(2):
        for b in range(3):
            block = _block(X, a, b, 40, 25)
            assert block.sum() == counts[a, b]
            assert np.all(block <= dense)  # a subset of R's interactions
    assert X.nnz == counts.sum() and X.max() == 1


def test_expansion_is_deterministic_and_blockwise_seeded():
    R = _random_binary(50, 30, 0.2, seed=3)
    keep = np.array([[0.4, 0.7], [0.2, 0.9], [0.6, 0.3]])
    a = fractal_expand(R, keep, seed=7)
    b = fractal_expand(R, keep, seed=7)
    c = fractal_expand(R, keep, seed=8)
    assert (a != b).nnz == 0 and (a != c).nnz > 0
    # every block has its own generator: the first row block does not depend on the others
    first = fractal_expand(R, keep[:1], seed=7)
    assert (first != a[:50]).nnz == 0


def test_expand_rejects_bad_input():
    with pytest.raises(ParameterError, match="shuffle"):
        fractal_expand(R_SMALL, np.ones((2, 2)), shuffle="cols")
    with pytest.raises(ParameterError, match="probabilities"):
        fractal_expand(R_SMALL, np.array([[1.5]]))
    with pytest.raises(ParameterError, match="seed"):
        fractal_expand(R_SMALL, np.ones((1, 1)), seed=-1)
    with pytest.raises(DataError, match="no interactions"):
        fractal_expand(np.zeros((3, 3)), np.ones((1, 1)))


def test_resize_rows_by_hand():
    np.testing.assert_allclose(resize_rows(np.arange(6.0)[:, None], 3).ravel(), [0.5, 2.5, 4.5])
    np.testing.assert_allclose(resize_rows(np.arange(3.0), 6), [0, 0, 1, 1, 2, 2])
    a, b, c = 3.0, 6.0, 12.0  # 3 rows onto 2: cells [0, 1.5) and [1.5, 3)
    np.testing.assert_allclose(resize_rows(np.array([a, b, c]), 2), [(a + b / 2) / 1.5, (b / 2 + c) / 1.5])
    M = np.random.default_rng(0).normal(size=(101, 4))
    np.testing.assert_allclose(resize_rows(M, 7).mean(0), M.mean(0))  # averaging keeps the mean


def test_reduced_seed_matrix():
    R = _random_binary(300, 120, 0.1, seed=4)
    S = reduced_seed_matrix(R, (12, 3))
    assert S.shape == (12, 3) and S.min() >= 0 and S.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(S, reduced_seed_matrix(R, (12, 3)))
    # a rank-one source (an outer product of positive vectors) reduces to a rank-one matrix
    u, v = np.linspace(1, 2, 60), np.linspace(1, 3, 40)
    S1 = reduced_seed_matrix(sp.csr_matrix(np.outer(u, v) > 2.0), (6, 4))
    rank_one = reduced_seed_matrix(sp.csr_matrix(np.ones((60, 40))), (6, 1))
    np.testing.assert_allclose(rank_one, 1.0)
    assert S1.shape == (6, 4)
    with pytest.raises(ParameterError, match="min"):
        reduced_seed_matrix(R_SMALL, (2, 2))


def test_keep_probabilities():
    seed = np.array([[1.0, 0.5], [0.25, 0.25]])
    keep = keep_probabilities(seed, 0.25)
    np.testing.assert_allclose(keep, seed * 0.25 / seed.mean())
    clipped = keep_probabilities(np.array([[1.0, 0.1]]), 0.9)  # the first block is copied whole
    np.testing.assert_allclose(clipped, [[1.0, 0.8]])
    with pytest.raises(ParameterError, match=r"\(0, 1\]"):
        keep_probabilities(seed, 1.5)
    with pytest.raises(ParameterError, match="zero blocks"):
        keep_probabilities(np.array([[1.0, 0.0]]), 0.8)


def _tiny_source() -> RecDataset:
    return build_rec_dataset(make_synthetic(n_users=60, n_items=40, mean_interactions=12, seed=0), name="tiny", seed=0)


TINY = FractalSpec("tiny-shape", "tiny", (4, 3), 3_000)


def test_fractal_dataset_shape_split_and_cache(tmp_path):
    source = _tiny_source()
    R = source.all_positives()
    ds = fractal_dataset(TINY, source, seed=5, cache_dir=tmp_path)
    assert ds.name == "tiny-shape" and ds.seed == 5 and ds.interactions is None
    assert ds.n_items <= 3 * R.shape[1] and ds.n_users + ds.n_removed_users <= 4 * R.shape[0]
    # the dataset is the expansion without its users of fewer than 3 interactions (and items left empty)
    keep = keep_probabilities(reduced_seed_matrix(R, (4, 3)), 3_000 / (12 * R.nnz))
    X = fractal_expand(R, keep, seed=5)
    assert abs(X.nnz - 3_000) <= 6
    degree = np.diff(X.indptr)
    kept_users = np.flatnonzero(degree >= 3)
    assert ds.n_removed_users == int(((degree > 0) & (degree < 3)).sum())
    np.testing.assert_array_equal(ds.user_ids, kept_users)
    union = ds.all_positives()
    expected = X[kept_users][:, ds.item_ids]
    assert union.shape == expected.shape and (union != expected).nnz == 0
    # the paper's split: every kept user gets the rule's train / val / test counts
    got = np.stack([np.diff(getattr(ds, s).indptr) for s in ("train", "val", "test")], axis=1)
    np.testing.assert_array_equal(got, split_counts_per_user(degree[kept_users]))
    path = fractal_cache_path("tiny-shape", 5, tmp_path)
    assert path.is_file()
    again = fractal_dataset(TINY, source, seed=5, cache_dir=tmp_path)
    for split in ("train", "val", "test"):
        assert (getattr(ds, split) != getattr(again, split)).nnz == 0
    np.testing.assert_array_equal(ds.user_ids, again.user_ids)
    # a truncated cache file is set aside and rebuilt, identically
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(DamagedCacheWarning, match="unreadable"):
        rebuilt = fractal_dataset(TINY, source, seed=5, cache_dir=tmp_path)
    assert len(list(path.parent.glob(path.name + ".damaged-*"))) == 1 and path.is_file()
    assert (rebuilt.train != ds.train).nnz == 0 and (rebuilt.test != ds.test).nnz == 0
    # a cache built from other inputs under the same name is set aside as stale
    other = dataclasses.replace(TINY, n_interactions=2_000)
    with pytest.warns(DamagedCacheWarning, match="other inputs"):
        smaller = fractal_dataset(other, source, seed=5, cache_dir=tmp_path)
    assert len(list(path.parent.glob(path.name + ".damaged-*"))) == 2
    assert smaller.all_positives().nnz < union.nnz


@needs_ml1m
@pytest.mark.slow
def test_netflix_shape_small_targets_and_cache(tmp_path, monkeypatch):
    from infae_kit.data.stats import degree_comparison

    monkeypatch.setenv("INFAE_CACHE_DIR", str(tmp_path))
    spec = FRACTAL_SPECS["netflix-shape-small"]
    ds = load_dataset("netflix-shape-small", seed=42)
    union = ds.all_positives()
    assert ds.n_users + ds.n_removed_users == 8 * 6040 == 48_320
    assert 17_000 <= ds.n_items <= 5 * 3706
    assert abs(union.nnz - spec.n_interactions) <= 20  # 40 blocks, each rounded
    assert 0.010 < union.nnz / (ds.n_users * ds.n_items) < 0.0125  # Netflix: 1.18 %
    assert union.indices.dtype == np.int32 and ds.n_duplicate_pairs == 0
    comparison = degree_comparison({"ml-1m": load_dataset("ml-1m"), "small": ds}, reference="ml-1m")
    assert comparison["small"]["item_degree_ks"] < 0.1  # item popularity keeps ML-1M's shape
    cached = fractal_cache_path("netflix-shape-small", 42)
    assert cached.is_file() and str(tmp_path) in str(cached)
    again = load_dataset("netflix-shape-small", seed=42)
    rebuilt = load_dataset("netflix-shape-small", seed=42, cache=False)
    for other in (again, rebuilt):
        for split in ("train", "val", "test"):
            assert (getattr(other, split) != getattr(ds, split)).nnz == 0


def test_block_subsets_are_uniform_k_subsets():
    from itertools import combinations

    from infae_kit.data.fractal import _uniform_subset

    rng = np.random.default_rng(0)
    draws = 24_000
    counts = dict.fromkeys(combinations(range(7), 3), 0)
    for _ in range(draws):
        subset = _uniform_subset(rng, 7, 3)
        counts[tuple(subset.tolist())] += 1  # sorted, exactly 3 distinct indices, or a KeyError
    expected = draws / len(counts)  # 35 subsets, 686 each
    assert max(abs(c - expected) for c in counts.values()) < 5 * np.sqrt(expected)
    assert _uniform_subset(rng, 5, 9).tolist() == [0, 1, 2, 3, 4]
    big = _uniform_subset(rng, 100_000, 25_000)
    assert big.shape == (25_000,) and np.all(np.diff(big) > 0)


def test_a_build_that_cannot_fit_is_refused_before_it_starts(tmp_path, monkeypatch):
    from infae_kit.data import fractal
    from infae_kit.errors import MemoryBudgetError

    monkeypatch.setattr(fractal, "available_memory_bytes", lambda: 100 * 2**20)
    with pytest.raises(MemoryBudgetError, match=r"netflix-shape-small.*GiB"):
        fractal_dataset("netflix-shape-small", _tiny_source(), cache_dir=tmp_path)
    assert not any(tmp_path.rglob("*.npz"))
    assert fractal.build_memory_bytes(100_480_507) > 2.6e9  # the measured peak of netflix-shape
