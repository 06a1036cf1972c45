"""Tests of infae_kit.models.baselines: EASE's closed form, PopRec, the recommender interface and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.models import baselines
from infae_kit.models.baselines import EASE, EASE_LAMBDA_GRID, PopRec, ease_item_weights, item_gram
from infae_kit.errors import DataError, MemoryBudgetError, NumericalError, ParameterError


@pytest.fixture(scope="module")
def small_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((40, 15)) < 0.3).astype(np.float32))


def numpy_ease(X: np.ndarray, lam: float) -> np.ndarray:
    """Steck (2019), Eq. 8, in float64 with a dense inverse."""
    gram = X.T @ X + lam * np.eye(X.shape[1])
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


@pytest.mark.parametrize("lam", [0.5, 10.0])
def test_ease_matches_numpy_formula(small_matrix, lam):
    expected = numpy_ease(small_matrix.toarray().astype(np.float64), lam)
    b64 = ease_item_weights(small_matrix, lam, dtype=np.float64)
    np.testing.assert_allclose(b64, expected, atol=1e-12)
    b32 = ease_item_weights(small_matrix, lam)
    assert b32.dtype == np.float32
    np.testing.assert_allclose(b32, expected, atol=1e-5)
    assert np.all(np.diag(b64) == 0) and np.all(np.diag(b32) == 0)


def test_ease_solves_the_constrained_least_squares(small_matrix):
    # minimise f(B) = ||X - XB||² + λ||B||² subject to diag(B) = 0.
    # KKT: the gradient 2[(XᵀX + λI)B - XᵀX] vanishes off the diagonal (the diagonal is fixed by the constraint).
    X = small_matrix.toarray().astype(np.float64)
    lam = 3.0
    B = ease_item_weights(small_matrix, lam, dtype=np.float64)
    gradient = 2 * ((X.T @ X + lam * np.eye(X.shape[1])) @ B - X.T @ X)
    off_diagonal = ~np.eye(X.shape[1], dtype=bool)
    np.testing.assert_allclose(gradient[off_diagonal], 0.0, atol=1e-9)

    def objective(weights):
        return np.sum((X - X @ weights) ** 2) + lam * np.sum(weights**2)

    rng = np.random.default_rng(1)
    for _ in range(5):  # any feasible perturbation increases the objective (strictly convex problem)
        step = rng.standard_normal(B.shape) * 1e-3
        np.fill_diagonal(step, 0.0)
        assert objective(B + step) > objective(B)


def test_ease_predict_and_recommend(small_matrix):
    model = EASE(lam=10.0).fit(small_matrix)
    scores = model.predict(small_matrix[:7])
    assert scores.shape == (7, 15) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, small_matrix[:7].toarray() @ model.item_weights_, rtol=1e-5, atol=1e-6)
    top = model.recommend(small_matrix, k=5)
    assert top.shape == (40, 5)
    seen = small_matrix.toarray() > 0
    assert not seen[np.arange(40)[:, None], top].any()
    # without exclusion the best-scored items come back, seen or not
    top_all = model.recommend(small_matrix, k=5, exclude_seen=False)
    np.testing.assert_array_equal(top_all[:, 0], np.argmax(model.predict(small_matrix), axis=1))


def test_ease_accepts_dense_input(small_matrix):
    dense = small_matrix.toarray()
    np.testing.assert_allclose(
        EASE(lam=1.0).fit(dense).item_weights_, EASE(lam=1.0).fit(small_matrix).item_weights_, atol=1e-6
    )


def test_lambda_grid_is_the_papers():
    assert EASE_LAMBDA_GRID == (1.0, 10.0, 100.0, 1000.0, 10000.0)


def test_poprec_ranks_by_popularity():
    # item counts: item 0 -> 1, item 1 -> 3, item 2 -> 2, item 3 -> 0, item 4 -> 2
    X = sp.csr_matrix(
        np.array([[0, 1, 1, 0, 1], [1, 1, 0, 0, 0], [0, 1, 1, 0, 1]], dtype=np.float32)
    )
    model = PopRec().fit(X)
    np.testing.assert_array_equal(model.item_counts_, [1, 3, 2, 0, 2])
    context = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=np.float32))
    scores = model.predict(context)
    assert scores.shape == (2, 5) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores[0], scores[1])
    # ties (items 2 and 4, both 2) break towards the lower index; user 1 has seen item 1
    np.testing.assert_array_equal(model.recommend(context, k=4), [[1, 2, 4, 0], [2, 4, 0, 3]])


def test_errors(small_matrix):
    with pytest.raises(ParameterError, match="lam"):
        EASE(lam=-1.0)
    with pytest.raises(ParameterError, match="lam"):
        ease_item_weights(small_matrix, float("nan"))
    with pytest.raises(ParameterError, match="not fitted"):
        EASE().predict(small_matrix)
    with pytest.raises(ParameterError, match="not fitted"):
        PopRec().recommend(small_matrix)
    with pytest.raises(ParameterError, match="dtype"):
        EASE(dtype=np.int32)
    model = EASE(lam=1.0).fit(small_matrix)
    with pytest.raises(DataError, match="15"):
        model.predict(sp.csr_matrix((3, 14), dtype=np.float32))
    with pytest.raises(DataError, match="empty"):
        EASE().fit(sp.csr_matrix((0, 5), dtype=np.float32))
    with pytest.raises(DataError, match="no interactions"):
        EASE().fit(sp.csr_matrix((3, 5), dtype=np.float32))
    with pytest.raises(DataError, match="no interactions"):
        PopRec().fit(sp.csr_matrix((3, 5), dtype=np.float32))
    with pytest.raises(DataError, match="NaN"):
        PopRec().fit(np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match="negative"):
        PopRec().fit(np.array([[1.0, -1.0]]))
    with pytest.raises(MemoryBudgetError, match="GiB"):
        EASE(memory_budget_bytes=1000).fit(small_matrix)
    # λ = 0 with a never-seen item: XᵀX is singular, Cholesky fails with a clear message
    singular = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0]], dtype=np.float32))
    with pytest.raises(NumericalError, match="positive definite"):
        EASE(lam=0.0, dtype=np.float64).fit(singular)


@pytest.mark.parametrize("sparse", [True, False])
def test_item_gram_by_sparse_or_blocked_dense_products(small_matrix, monkeypatch, sparse):
    """Both paths of the cost model, the dense one over 3 blocks of 16 users: XᵀX."""
    monkeypatch.setattr(baselines, "sparse_product_is_cheaper", lambda *a, **k: sparse)
    soft = small_matrix.multiply(np.random.default_rng(1).random(small_matrix.shape)).tocsr()  # summary-like values
    for X in (small_matrix, soft):
        np.testing.assert_allclose(item_gram(X, np.float64, block_items=16), (X.T @ X).toarray(), rtol=1e-12)


def test_ease_from_a_precomputed_gram_equals_a_fresh_fit(small_matrix):
    gram = item_gram(small_matrix, np.float64)
    np.testing.assert_array_equal(gram, (small_matrix.T @ small_matrix).toarray())
    for lam in (10.0, 100.0):  # one Gram, several λ: each fit gets a copy
        fresh = EASE(lam, dtype=np.float64).fit(small_matrix).item_weights_
        reused = EASE(lam, dtype=np.float64).fit(small_matrix, gram=gram.copy()).item_weights_
        np.testing.assert_allclose(reused, fresh, rtol=1e-12, atol=1e-12)
    with pytest.raises(ParameterError, match="gram must be"):
        ease_item_weights(small_matrix, 10.0, gram=gram[:3, :3].copy())
