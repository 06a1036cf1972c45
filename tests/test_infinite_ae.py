"""∞-AE: the closed form, inference on unseen users, λ selection, and its numerical and memory guards."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.data import build_rec_dataset, make_synthetic
from infae_kit.errors import DataError, MemoryBudgetError, ParameterError
from infae_kit.evaluation.protocol import evaluate_model
from infae_kit.models.infinite_ae import (
    PAPER_LAMBDA_GRID,
    InfiniteAE,
    check_memory,
    estimate_fit_memory_bytes,
    fit_infinite_ae,
    tune_and_evaluate_infinite_ae,
)
from infae_kit.models.ntk import ntk_matrix


@pytest.fixture(scope="module")
def small():
    inter = make_synthetic(n_users=300, n_items=120, mean_interactions=15, seed=3)
    return build_rec_dataset(inter, name="synthetic", seed=3)


def _explicit_scores(X_train, X_ctx, lam):
    """Algorithm 1–2 written out in float64: K_pred (K + λ tr(K)/n I)⁻¹ X."""
    K = ntk_matrix(X_train, dtype="float64")
    Kp = ntk_matrix(X_ctx, X_train, dtype="float64")
    reg = K + lam * np.trace(K) / K.shape[0] * np.eye(K.shape[0])
    return Kp @ np.linalg.solve(reg, X_train.toarray())


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-8), ("float32", 2e-3)])
def test_fit_predict_is_the_closed_form(small, dtype, rtol):
    model = InfiniteAE(lam=5.0, dtype=dtype).fit(small.train)
    ref = _explicit_scores(small.train, small.train_val(), 5.0)
    got = model.predict(small.train_val())
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


def test_unseen_users_are_just_rows(small):
    model = fit_infinite_ae(small.train[:200], lam=1.0, dtype="float64")
    new_users = small.train_val()[200:]
    np.testing.assert_allclose(model.predict(new_users), _explicit_scores(small.train[:200], new_users, 1.0),
                               rtol=1e-8, atol=1e-10)


def test_recommend_excludes_seen_items(small):
    model = InfiniteAE(lam=5.0).fit(small.train)
    ctx = small.train_val()[:50]
    top = model.recommend(ctx, k=20)
    assert top.shape == (50, 20)
    for u in range(50):
        assert not set(top[u]) & set(ctx[u].indices)
    # without exclusion the top items of a training user are its own train items (KRR fits them)
    top_all = model.recommend(small.train[:50], k=1, exclude_seen=False)
    own = np.array([top_all[u, 0] in set(small.train[u].indices) for u in range(50)])
    assert own.mean() > 0.9


def test_tuning_picks_best_validation_lambda_and_matches_plain_evaluation(small):
    rep = tune_and_evaluate_infinite_ae(small, lambdas=(0.0, 1.0, 20.0), progress=False)
    hr = {lam: m["HR@100"] for lam, m in rep.val_metrics.items()}
    assert rep.best_value == max(hr, key=hr.get)
    # λ = 0 interpolates the train rows: unseen items all tie, so AUC is exactly 0.5
    assert rep.val_metrics[0.0]["AUC"] == pytest.approx(0.5)
    # the validation shortcut K α = X − λ'α gives the same metrics as scoring through predict()
    for lam in (1.0, 20.0):
        direct = evaluate_model(InfiniteAE(lam).fit(small.train), small, "val", ks=(10, 100))
        for name, value in direct.metrics.items():
            assert rep.val_metrics[lam][name] == pytest.approx(value, rel=1e-4, abs=1e-4), (lam, name)
    direct_test = evaluate_model(InfiniteAE(rep.best_value).fit(small.train), small, "test")
    for name, value in direct_test.metrics.items():
        assert rep.test_metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-5)
    assert set(rep.timings_s) >= {"kernel", "test", "total"}


def test_infinite_ae_beats_popularity_on_planted_structure(small):
    from infae_kit.models.baselines import PopRec

    rep = tune_and_evaluate_infinite_ae(small, lambdas=(1.0, 5.0, 20.0), progress=False)
    pop = evaluate_model(PopRec().fit(small.train), small, "test")
    assert rep.test_metrics["HR@10"] > pop.metrics["HR@10"]
    assert rep.test_metrics["AUC"] > pop.metrics["AUC"]


def test_user_budget_trains_on_a_seeded_subset(small):
    a = InfiniteAE(lam=5.0, user_budget=100, seed=1).fit(small.train)
    b = InfiniteAE(lam=5.0, user_budget=100, seed=1).fit(small.train)
    c = InfiniteAE(lam=5.0, user_budget=100, seed=2).fit(small.train)
    assert a.alpha_.shape == (100, small.n_items)
    np.testing.assert_array_equal(a.train_user_index_, b.train_user_index_)
    assert not np.array_equal(a.train_user_index_, c.train_user_index_)
    rep = tune_and_evaluate_infinite_ae(small, lambdas=(5.0,), user_budget=100, progress=False)
    direct = evaluate_model(InfiniteAE(5.0, user_budget=100, seed=42).fit(small.train), small, "val")
    assert rep.val_metrics[5.0]["HR@100"] == pytest.approx(direct.metrics["HR@100"], rel=1e-4)


def test_singular_kernel_gets_jitter_not_nan():
    # identical users make K exactly singular; with λ = 0 float32 Cholesky fails -> defined jitter recovery
    row = sp.csr_matrix(np.array([[1, 1, 0, 0, 1, 0]], dtype=np.float32))
    X = sp.vstack([row] * 6 + [sp.csr_matrix(np.eye(6, dtype=np.float32))]).tocsr()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = InfiniteAE(lam=0.0, dtype="float32").fit(X)
    assert model.jitter_ > 0
    assert any("jitter" in str(x.message) for x in w)
    assert np.all(np.isfinite(model.predict(X)))


def test_memory_guard_stops_before_allocating(small):
    need = estimate_fit_memory_bytes(small.n_users, small.n_items)
    assert need == check_memory(small.n_users, small.n_items, limit_bytes=need)
    with pytest.raises(MemoryBudgetError, match=r"user_budget=\d") as err:
        InfiniteAE(memory_limit_bytes=need // 2).fit(small.train)
    assert "GiB" in str(err.value) and "DISTILL-CF" in str(err.value)
    # the Netflix scale the paper reports: 476k users would need a 844 GiB float32 kernel
    with pytest.raises(MemoryBudgetError, match="476,000"):
        check_memory(476_000, 17_770, limit_bytes=24 * 1024**3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lam=-1.0), "lam"), (dict(lam=float("nan")), "lam"), (dict(dtype="int8"), "dtype"),
    (dict(user_budget=0), "user_budget"), (dict(depth=0), "depth"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        InfiniteAE(**kwargs)


def test_bad_inputs(small):
    with pytest.raises(ParameterError, match="not fitted"):
        InfiniteAE().predict(small.train)
    model = InfiniteAE().fit(small.train)
    with pytest.raises(DataError, match="item columns"):
        model.predict(sp.csr_matrix((2, small.n_items + 1), dtype=np.float32))
    with pytest.raises(DataError, match="empty"):
        InfiniteAE().fit(sp.csr_matrix((0, 5), dtype=np.float32))
    with pytest.raises(ParameterError, match="lambdas"):
        tune_and_evaluate_infinite_ae(small, lambdas=(), progress=False)
    with pytest.raises(ParameterError, match="select_by"):
        tune_and_evaluate_infinite_ae(small, lambdas=(1.0,), select_by="MRR", progress=False)


def test_paper_grid():
    assert PAPER_LAMBDA_GRID == (0.0, 1.0, 5.0, 20.0, 50.0, 100.0)


def test_tune_and_evaluate_can_fit_on_other_rows(small):
    """Baselines trained on a subset (or a distilled support) are still evaluated on the dataset's users."""
    from infae_kit.models.baselines import EASE
    from infae_kit.evaluation.selection import tune_and_evaluate

    sub = small.train[:120]
    rep = tune_and_evaluate(lambda lam: EASE(lam), (10.0, 100.0), small, train=sub)
    direct = evaluate_model(EASE(rep.best_value).fit(sub), small, "test")
    assert rep.test_metrics == pytest.approx(direct.metrics)
    assert rep.test.n_users == small.n_users
    with pytest.raises(ParameterError, match="items"):
        tune_and_evaluate(lambda lam: EASE(lam), (10.0,), small, train=sp.csr_matrix((3, 7), dtype=np.float32))


@pytest.mark.parametrize("keep_cross_kernel", [True, False])
def test_lambda_picked_for_a_soft_support_matches_fitting_each_lambda(small, monkeypatch, keep_cross_kernel):
    """"Fit on a support, pick λ on validation" (DISTILL-CF's validation): one kernel, one solve per λ."""
    import infae_kit.models.infinite_ae as infinite_ae

    support = sp.csr_matrix(np.random.default_rng(0).random((40, small.n_items)).astype(np.float32) ** 8)
    if not keep_cross_kernel:  # memory for the fit but not to keep the validation cross-kernel: recomputed per λ
        available = estimate_fit_memory_bytes(40, small.n_items)
        assert small.n_users * 40 * 4 > available // 4
        monkeypatch.setattr(infinite_ae, "available_memory_bytes", lambda: available)
    grid = (0.1, 1.0, 50.0)
    rep = tune_and_evaluate_infinite_ae(small, grid, train=support, evaluate_test=False, progress=False)
    assert rep.test is None and rep.test_metrics == {} and "test" in rep.timings_s
    for lam in grid:
        direct = evaluate_model(InfiniteAE(lam).fit(support), small, "val").metrics
        assert rep.val_metrics[lam] == pytest.approx(direct, rel=1e-5, abs=1e-5), lam
    hr = {lam: m["HR@100"] for lam, m in rep.val_metrics.items()}
    assert rep.best_value == max(hr, key=hr.get) and rep.model.lam == rep.best_value
    assert rep.best_val_metrics == rep.val_metrics[rep.best_value]
    assert rep.model.train_rows_.shape == support.shape
    with pytest.raises(ParameterError, match="items"):
        tune_and_evaluate_infinite_ae(small, (1.0,), train=support[:, :-1], progress=False)


@pytest.mark.parametrize("sparse", [True, False])
def test_sparse_and_dense_gram_paths_give_the_same_model(small, monkeypatch, sparse):
    """Whichever product the cost model picks, the kernel (co-occurrence counts) and hence α and scores agree."""
    import infae_kit.models.infinite_ae as infinite_ae_module

    monkeypatch.setattr(infinite_ae_module, "sparse_product_is_cheaper", lambda *a, **k: sparse)
    model = InfiniteAE(lam=5.0, dtype="float64").fit(small.train)
    np.testing.assert_allclose(model.predict(small.train[:40]),
                               _explicit_scores(small.train, small.train[:40], 5.0), rtol=1e-9, atol=1e-9)
