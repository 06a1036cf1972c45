"""neural-tangents reference helpers: empirical NTK of finite networks vs the analytic kernel."""

import numpy as np
import pytest
import scipy.sparse as sp
from infae_kit.jax_compat import enable_x64

from infae_kit.errors import ParameterError
from infae_kit.models.reference import empirical_ntk_by_width


def _random_binary(n, d, density, seed):
    return sp.random(n, d, density=density, format="csr", random_state=seed, data_rvs=np.ones).astype(np.float32)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
@pytest.mark.parametrize("depth", [1, 2])
def test_empirical_ntk_error_shrinks_with_width(depth):
    x = _random_binary(12, 30, 0.2, seed=depth)
    errors = empirical_ntk_by_width(x, widths=(32, 2048), n_seeds=3, depth=depth, seed=0)
    assert errors.shape == (2, 3) and errors.dtype == np.float64
    assert np.all(np.isfinite(errors)) and np.all(errors > 0)
    # O(1/√width): 64× the width gives ~8× less error; ask for a clear 2.5× on the seed mean.
    assert errors[1].mean() < errors[0].mean() / 2.5
    assert errors[1].max() < 0.1


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_empirical_ntk_rectangular_float64_and_reproducible():
    x = _random_binary(6, 20, 0.3, seed=1)
    y = _random_binary(4, 20, 0.3, seed=2)
    a = empirical_ntk_by_width(x, y, widths=(256,), n_seeds=2, seed=7)
    b = empirical_ntk_by_width(x, y, widths=(256,), n_seeds=2, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a[0, 0] != a[0, 1]  # seeds are different initialisations
    with enable_x64():
        c = empirical_ntk_by_width(x.toarray(), y.toarray(), widths=(256,), n_seeds=2, seed=7)
    # float64 draws differ from float32 ones (JAX samples per dtype), so compare magnitudes only.
    assert c.shape == (1, 2) and np.all(np.isfinite(c)) and np.all(c < 0.5)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_empirical_ntk_several_outputs_average_over_units():
    x = _random_binary(8, 20, 0.3, seed=3)
    one = empirical_ntk_by_width(x, widths=(128,), n_seeds=4, seed=0, n_outputs=1)
    many = empirical_ntk_by_width(x, widths=(128,), n_seeds=4, seed=0, n_outputs=20)
    assert many.mean() < one.mean()  # tracing over 20 output units averages out the last layer's noise


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(widths=()), "widths"),
        (dict(widths=(0, 8)), "widths"),
        (dict(widths=(8.5,)), "widths"),
        (dict(n_seeds=0), "n_seeds"),
        (dict(depth=0), "depth"),
        (dict(n_outputs=0), "n_outputs"),
        (dict(max_dense_entries=10), "subsample"),
    ],
)
def test_empirical_ntk_rejects_bad_arguments(kwargs, match):
    x = _random_binary(4, 10, 0.3, seed=0)
    with pytest.raises(ParameterError, match=match):
        empirical_ntk_by_width(x, **kwargs)
    with pytest.raises(ParameterError, match="columns"):
        empirical_ntk_by_width(x, _random_binary(3, 11, 0.3, seed=0), widths=(8,))
