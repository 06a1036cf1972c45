"""The kit's closed-form NTK against neural-tangents (which really runs here: it is installed in CI)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.errors import ParameterError
from infae_kit.jax_compat import enable_x64
from infae_kit.models import ntk as ntk_module
from infae_kit.models.ntk import (
    gram_matrix,
    ntk_from_gram,
    ntk_matrix,
    ntk_matrix_jax,
    sparse_gram_into,
    sparse_product_is_cheaper,
    sparse_transpose_product,
    squared_row_norms,
)
from infae_kit.models.reference import (
    import_neural_tangents,
    reference_autoencoder_kernel_fn,
)


def _random_binary(n, d, density, seed):
    return sp.random(n, d, density=density, format="csr", random_state=seed, data_rvs=np.ones).astype(np.float32)


def test_neural_tangents_imports_without_tensorflow():
    nt = import_neural_tangents()
    assert nt.__version__ == "0.6.5"
    assert hasattr(nt.stax, "Dense")


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_ntk_equals_neural_tangents_float64(depth):
    x = _random_binary(40, 60, 0.12, seed=depth)
    y = _random_binary(25, 60, 0.25, seed=10 + depth)
    _, _, kernel_fn = reference_autoencoder_kernel_fn(n_items=60, depth=depth)
    with enable_x64():
        ref_xy = np.asarray(kernel_fn(x.toarray().astype(np.float64), y.toarray().astype(np.float64), "ntk"))
        ref_xx = np.asarray(kernel_fn(x.toarray().astype(np.float64), None, "ntk"))
        ours_xy = ntk_matrix(x, y, depth=depth, dtype="float64")
        ours_xx = ntk_matrix(x, depth=depth, dtype="float64")
    assert ours_xy.dtype == np.float64
    np.testing.assert_allclose(ours_xy, ref_xy, rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours_xx, ref_xx, rtol=1e-6, atol=0)


def test_ntk_float32_close_to_float64_and_symmetric():
    x = _random_binary(50, 80, 0.1, seed=3)
    k32 = ntk_matrix(x, dtype="float32")
    with enable_x64():
        k64 = ntk_matrix(x, dtype="float64")
    assert k32.dtype == np.float32
    np.testing.assert_allclose(k32, k64, rtol=1e-5)
    np.testing.assert_allclose(k32, k32.T, rtol=1e-6)
    # PSD up to float32 round-off
    assert np.linalg.eigvalsh(k64).min() > -1e-8 * np.abs(k64).max()


def test_ntk_depends_only_on_inner_products_and_norms():
    # Two pairs with the same ‖x‖², ‖y‖², xᵀy but different supports give the same kernel value.
    d = 10
    a = np.zeros((2, d), np.float32)
    b = np.zeros((2, d), np.float32)
    a[0, [0, 1, 2]] = 1; a[1, [2, 3]] = 1   # ‖x‖²=3, ‖y‖²=2, xᵀy=1
    b[0, [5, 6, 7]] = 1; b[1, [7, 9]] = 1
    ka = ntk_matrix(sp.csr_matrix(a))
    kb = ntk_matrix(sp.csr_matrix(b))
    np.testing.assert_allclose(ka, kb, rtol=1e-6)


def test_gram_matrix_sparse_blocks_match_dense():
    x = _random_binary(33, 17, 0.3, seed=1)
    y = _random_binary(29, 17, 0.3, seed=2)
    dense = x.toarray() @ y.toarray().T
    np.testing.assert_array_equal(gram_matrix(x, y, block_rows=7), dense)
    np.testing.assert_array_equal(gram_matrix(x.toarray(), y), dense)
    np.testing.assert_array_equal(squared_row_norms(x), (x.toarray() ** 2).sum(1))
    with pytest.raises(ParameterError, match="columns"):
        gram_matrix(x, _random_binary(3, 5, 0.5, seed=0))


def test_gram_matrix_sparse_product_matches_dense_in_row_blocks(monkeypatch):
    x = _random_binary(41, 23, 0.2, seed=3)
    y = _random_binary(37, 23, 0.2, seed=4)
    dense = x.toarray() @ y.toarray().T
    monkeypatch.setattr(ntk_module, "_SPARSE_BLOCK_ENTRIES", 37 * 5)  # 5 rows of x per block: 9 blocks
    np.testing.assert_array_equal(gram_matrix(x, y, sparse_product=True), dense)
    np.testing.assert_array_equal(gram_matrix(x, sparse_product=True), x.toarray() @ x.toarray().T)


@pytest.mark.parametrize("threads", [1, 3])
def test_threaded_sparse_products_match_dense(monkeypatch, threads):
    """Row chunks in 1 or 3 threads: X Yᵀ and Xᵀ K equal their dense products."""
    monkeypatch.setattr(ntk_module, "host_threads", lambda: threads)
    x = _random_binary(41, 23, 0.2, seed=3)
    y = _random_binary(37, 23, 0.2, seed=4)
    k = np.random.default_rng(0).random((41, 6)).astype(np.float32)
    out = sparse_gram_into(x, sp.csr_matrix(y.T), np.full((41, 37), np.nan, np.float32))
    np.testing.assert_array_equal(out, x.toarray() @ y.toarray().T)
    np.testing.assert_allclose(sparse_transpose_product(x, k), x.toarray().T @ k, rtol=1e-6)


def test_sparse_product_is_chosen_for_short_rows_over_a_long_catalogue():
    long_tail = _random_binary(2000, 20_000, 0.0005, seed=5)   # about 10 items a row out of 20,000
    dense_ish = _random_binary(2000, 300, 0.2, seed=6)          # 60 items a row out of 300
    assert sparse_product_is_cheaper(long_tail, long_tail)
    assert not sparse_product_is_cheaper(dense_ish, dense_ish)


def test_ntk_gradient_is_finite_on_the_diagonal():
    x = jnp.asarray(_random_binary(8, 12, 0.4, seed=5).toarray())
    for depth in (1, 2):
        g = jax.grad(lambda a: ntk_matrix_jax(a, depth=depth).sum())(x)
        assert bool(jnp.all(jnp.isfinite(g)))
    # and agrees with finite differences away from the diagonal
    with enable_x64():
        x64 = jnp.asarray(np.random.default_rng(0).random((4, 6)))
        y64 = jnp.asarray(np.random.default_rng(1).random((3, 6)))
        f = lambda a: ntk_matrix_jax(a, y64).sum()
        g = jax.grad(f)(x64)
        eps = 1e-6
        e = jnp.zeros_like(x64).at[1, 2].set(eps)
        fd = (f(x64 + e) - f(x64 - e)) / (2 * eps)
        assert abs(float(g[1, 2]) - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))


def test_bad_arguments_are_rejected():
    x = _random_binary(5, 6, 0.5, seed=0)
    with pytest.raises(ParameterError, match="depth"):
        ntk_matrix(x, depth=0)
    with pytest.raises(ParameterError, match="float32 or float64"):
        ntk_matrix(x, dtype="int32")
    with pytest.raises(ParameterError, match="n_features"):
        ntk_from_gram(jnp.ones((2, 2)), jnp.ones(2), jnp.ones(2), n_features=0)


def test_the_differentiable_kernel_follows_jax_default_precision():
    """CI runs this file twice, with JAX_ENABLE_X64 off and on: the JAX kernel is float32 or float64 accordingly,
    and matches the float64 reference to that precision."""
    x = sp.random(12, 40, density=0.2, format="csr", random_state=3, data_rvs=np.ones)
    k = ntk_matrix_jax(jnp.asarray(x.toarray()))
    with enable_x64():
        reference = ntk_matrix(x, dtype="float64")
    error = float(np.max(np.abs(np.asarray(k, dtype=np.float64) - reference) / np.abs(reference)))
    if jax.config.jax_enable_x64:
        assert k.dtype == jnp.float64 and error < 1e-12, error
    else:
        assert k.dtype == jnp.float32 and 1e-12 < error < 1e-5, error
