"""Landmark ∞-AE: exact at m = U, the streamed normal equations, λ grid, selection rules, guards."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.data import build_rec_dataset, make_synthetic
from infae_kit.errors import DataError, MemoryBudgetError, ParameterError
from infae_kit.evaluation.protocol import evaluate_model
from infae_kit.models.infinite_ae import InfiniteAE, tune_and_evaluate_infinite_ae
from infae_kit.models.landmark import LandmarkInfiniteAE, tune_and_evaluate_landmark
from infae_kit.models.landmark_basis import SELECTIONS, landmark_basis, read_landmark_file, select_landmark_users
from infae_kit.models import landmark_solver
from infae_kit.models.landmark_solver import (
    accumulate_normal_equations,
    check_landmark_memory,
    estimate_landmark_memory_bytes,
    solve_landmark,
)
from infae_kit.models.ntk import ntk_matrix


@pytest.fixture(scope="module")
def small():
    return build_rec_dataset(make_synthetic(n_users=300, n_items=120, mean_interactions=15, seed=3),
                             name="synthetic", seed=3)


def test_all_users_as_landmarks_is_exact_infinite_ae(small):
    """m = U, float64: β = (K² + λ'K)⁻¹ K X = (K + λ'I)⁻¹ X, the scores of exact ∞-AE to 1e-6."""
    exact = InfiniteAE(lam=5.0, dtype="float64").fit(small.train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no jitter warning: the float64 solve is clean
        landmark = LandmarkInfiniteAE(lam=5.0, landmarks=np.arange(small.n_users), dtype="float64",
                                      block_users=64).fit(small.train)
    ctx = small.train_val()
    np.testing.assert_allclose(landmark.predict(ctx), exact.predict(ctx), rtol=0, atol=1e-6)
    assert landmark.effective_lambda_ == pytest.approx(exact.effective_lambda_, rel=1e-12)
    assert landmark.n_users_trained_ == small.n_users


def test_float32_blocks_with_float64_solve_stay_close_to_float64(small):
    args = dict(lam=5.0, landmarks=80, selection="uniform", block_users=50)
    f64 = LandmarkInfiniteAE(dtype="float64", **args).fit(small.train)
    f32 = LandmarkInfiniteAE(dtype="float32", **args).fit(small.train)
    a, b = f64.predict(small.train), f32.predict(small.train)
    assert b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4 * np.abs(a).max()


@pytest.mark.parametrize("sparse_gram", [True, False])
def test_normal_equations_are_the_explicit_products(small, monkeypatch, sparse_gram):
    """Streamed over 7 blocks of 50 users = K_LU K_UL, K_LU X and trace(K_UU) written out densely, with the
    blocks' Grams as sparse × sparse or sparse × dense products."""
    monkeypatch.setattr(landmark_solver, "sparse_product_is_cheaper", lambda *a, **k: sparse_gram)
    basis = landmark_basis(small.train, 40, "uniform", dtype="float64", seed=1)
    ne = accumulate_normal_equations(small.train, basis, block_users=50)
    k_ul = ntk_matrix(small.train, basis.rows, dtype="float64")
    np.testing.assert_allclose(ne.ktk, k_ul.T @ k_ul, rtol=1e-10)
    np.testing.assert_allclose(ne.ktx, k_ul.T @ small.train.toarray(), rtol=1e-10)
    assert ne.kernel_trace == pytest.approx(np.trace(ntk_matrix(small.train, dtype="float64")), rel=1e-10)
    # β solves the normal equations
    beta, reg, _ = solve_landmark(ne, 5.0, dtype="float64")
    lhs = (ne.ktk + reg * ne.k_mm) @ beta
    np.testing.assert_allclose(lhs, ne.ktx, rtol=1e-6, atol=1e-8 * np.abs(ne.ktx).max())


def test_block_size_does_not_change_the_scores(small):
    """Blocks of 17 users (18 blocks) or one block: the same scores. (β itself is not compared: the normal
    equations are ill-conditioned, so β's components along K_LL's tiny eigenvalues are not determined, while
    K(x, L) β is.)"""
    a = LandmarkInfiniteAE(lam=5.0, landmarks=60, selection="uniform", block_users=17).fit(small.train)
    b = LandmarkInfiniteAE(lam=5.0, landmarks=60, selection="uniform", block_users=10_000).fit(small.train)
    ref = b.predict(small.train)
    assert np.abs(a.predict(small.train) - ref).max() < 1e-4 * np.abs(ref).max()


def test_tuning_matches_fit_and_evaluate(small):
    rep = tune_and_evaluate_landmark(small, landmarks=100, selection="uniform", lambdas=(1.0, 5.0, 50.0),
                                     block_users=64, progress=False)
    assert set(rep.val_metrics) == {1.0, 5.0, 50.0}
    assert rep.val_metrics[rep.best_value]["HR@100"] == max(m["HR@100"] for m in rep.val_metrics.values())
    # the model at the picked λ, fitted from scratch and evaluated by the generic protocol, gives the same test
    model = LandmarkInfiniteAE(lam=rep.best_value, landmarks=rep.landmark_users, block_users=64).fit(small.train)
    test = evaluate_model(model, small, "test")
    for name, value in rep.test_metrics.items():
        assert value == pytest.approx(test.metrics[name], rel=1e-6), name
    assert rep.n_landmarks == 100 and rep.n_users_trained == small.n_users == rep.n_users_evaluated
    assert rep.timings_s["total"] > 0 and "accumulate" in rep.timings_s


def test_landmarks_beat_training_on_the_same_number_of_sampled_users(small):
    """The point of landmarks: all users as targets beats ∞-AE trained on m sampled users (synthetic data)."""
    lm = tune_and_evaluate_landmark(small, landmarks=60, selection="uniform", block_users=64, progress=False)
    sampled = tune_and_evaluate_infinite_ae(small, user_budget=60, progress=False)
    for name in ("HR@10", "NDCG@10", "HR@100"):
        assert lm.test_metrics[name] > sampled.test_metrics[name], name


def test_eval_users_sample_keeps_every_user_as_target(small):
    rep = tune_and_evaluate_landmark(small, landmarks=50, selection="uniform", lambdas=(5.0,), eval_users=120,
                                     block_users=64, progress=False)
    assert rep.n_users_evaluated == 120 and rep.n_users_trained == small.n_users
    assert rep.test.n_users == 120


def test_lambda_picked_on_a_seeded_subset_of_the_evaluated_users(small):
    """select_users=k scores validation on the users a k-user evaluation sample with seed eval_seed + 1 has."""
    args = dict(landmarks=50, selection="uniform", lambdas=(1.0, 5.0, 50.0), block_users=64, progress=False)
    sub = tune_and_evaluate_landmark(small, select_users=80, **args)
    same_users = tune_and_evaluate_landmark(small, eval_users=80, eval_seed=1, **args)
    assert sub.n_users_selection == 80 and sub.n_users_evaluated == small.n_users
    for lam in args["lambdas"]:
        for name, value in same_users.val_metrics[lam].items():
            assert sub.val_metrics[lam][name] == pytest.approx(value, rel=1e-6), (lam, name)
    full = tune_and_evaluate_landmark(small, **args)
    assert full.n_users_selection == small.n_users
    assert any(sub.val_metrics[1.0][k] != full.val_metrics[1.0][k] for k in full.val_metrics[1.0])
    test = tune_and_evaluate_landmark(small, lambdas=(sub.best_value,), **{k: v for k, v in args.items() if k != "lambdas"})
    assert sub.test_metrics == pytest.approx(test.test_metrics, rel=1e-6)  # test is on every evaluated user


@pytest.mark.parametrize("rule", ["uniform", "kmeans++", "leverage"])
def test_selection_rules_are_seeded_distinct_users(small, rule):
    a = select_landmark_users(small.train, 30, rule, seed=5)
    b = select_landmark_users(small.train, 30, rule, seed=5)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 30 and a.min() >= 0 and a.max() < small.n_users
    assert not np.array_equal(a, select_landmark_users(small.train, 30, rule, seed=6))


def test_kmeanspp_spreads_over_clusters():
    """400 identical users and two groups of 40 identical users: k-means++ (D² sampling in the NTK geometry)
    takes one landmark from each group, since a chosen row leaves its duplicates at distance 0."""
    rows = [range(0, 8)] * 400 + [range(20, 26)] * 40 + [range(40, 45)] * 40
    X = sp.lil_matrix((len(rows), 60), dtype=np.float32)
    for u, items in enumerate(rows):
        X[u, list(items)] = 1.0
    X = X.tocsr()
    group = np.repeat([0, 1, 2], [400, 40, 40])
    for seed in range(3):
        assert set(group[select_landmark_users(X, 3, "kmeans++", seed=seed)]) == {0, 1, 2}
    # uniform sampling mostly draws the large group only
    assert sum(set(group[select_landmark_users(X, 3, "uniform", seed=s)]) == {0, 1, 2} for s in range(10)) <= 2


def test_distilled_support_as_landmarks(small):
    support = np.random.default_rng(0).random((25, small.n_items)).astype(np.float32)  # soft rows, like a support
    model = LandmarkInfiniteAE(lam=5.0, support=support, block_users=64).fit(small.train)
    assert model.basis_.selection == "distilled" and model.basis_.user_index is None and model.basis_.m == 25
    assert np.isfinite(model.predict(small.train[:10])).all()
    with pytest.raises(ParameterError, match="support"):
        LandmarkInfiniteAE(selection="distilled")
    with pytest.raises(DataError, match="item columns"):
        LandmarkInfiniteAE(support=support[:, :10]).fit(small.train)


def test_bad_landmarks_are_refused_with_the_fix(small):
    with pytest.raises(ParameterError, match=r"exceeds the 300 users.*m ≤ 300"):
        LandmarkInfiniteAE(landmarks=301).fit(small.train)
    with pytest.raises(ParameterError, match="at least 1"):
        LandmarkInfiniteAE(landmarks=0).fit(small.train)
    with pytest.raises(DataError, match=r"not users of the training matrix.*\[300, 1000\]"):
        LandmarkInfiniteAE(landmarks=np.array([0, 5, 300, 1000])).fit(small.train)
    with pytest.raises(DataError, match="duplicate"):
        LandmarkInfiniteAE(landmarks=np.array([1, 1, 2])).fit(small.train)
    with pytest.raises(ParameterError, match="unknown selection"):
        LandmarkInfiniteAE(selection="random")
    with pytest.raises(ParameterError, match="block_users"):
        LandmarkInfiniteAE(block_users=0)
    assert set(SELECTIONS) == {"uniform", "kmeans++", "leverage", "distilled", "given"}


def test_landmark_file_maps_ids_and_names_unknown_users(small, tmp_path):
    ids = small.user_ids
    good = tmp_path / "landmarks.txt"
    good.write_text(f"# landmark users\n{ids[3]}\n{ids[10]}\n\n{ids[7]}\n")
    np.testing.assert_array_equal(read_landmark_file(good, ids), [3, 7, 10])
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{ids[3]}\nno-such-user\n99999999\n")
    with pytest.raises(DataError, match=r"2 user id\(s\) are not users of this dataset.*no-such-user"):
        read_landmark_file(bad, ids)


def test_memory_guard_names_what_would_fit():
    import re

    need = estimate_landmark_memory_bytes(2000, 18_530, 8192, 6)
    assert need < 16e9  # the Netflix-shaped run of the issue: m = 2,000, 8k-user blocks, 6 λ
    limit = int(0.8 * need)
    with pytest.raises(MemoryBudgetError, match=r"m=2,000 landmarks.*needs about") as err:
        check_landmark_memory(2000, 18_530, 8192, 6, limit_bytes=limit)
    block = int(re.search(r"block_users=([\d,]+) with m=2,000", str(err.value)).group(1).replace(",", ""))
    assert 1 <= block < 8192 and estimate_landmark_memory_bytes(2000, 18_530, block, 6) <= limit  # it does fit
    # a smaller m is named too when the block size alone cannot fit
    with pytest.raises(MemoryBudgetError, match=r"m=[\d,]+ landmarks with block_users=1,024") as err:
        check_landmark_memory(20_000, 18_530, 1024, 1, limit_bytes=8 * 1024**3)
    m = int(re.search(r"m=([\d,]+) landmarks with", str(err.value)).group(1).replace(",", ""))
    assert estimate_landmark_memory_bytes(m, 18_530, 1024, 1) <= 8 * 1024**3 < estimate_landmark_memory_bytes(20_000, 18_530, 1024, 1)
    assert check_landmark_memory(2000, 18_530, 8192, 6, limit_bytes=need) == need
    with pytest.raises(MemoryBudgetError):
        LandmarkInfiniteAE(landmarks=10, selection="uniform", memory_limit_bytes=1000).fit(sp.eye(20, format="csr"))


def test_save_and_load_round_trip(small, tmp_path):
    model = LandmarkInfiniteAE(lam=5.0, landmarks=40, selection="uniform").fit(small.train)
    path = model.save(tmp_path / "model.npz")
    again = LandmarkInfiniteAE.load(path)
    np.testing.assert_array_equal(again.predict(small.train[:20]), model.predict(small.train[:20]))
    np.testing.assert_array_equal(again.basis_.user_index, model.basis_.user_index)
    with pytest.raises(DataError, match="not a saved landmark"):
        LandmarkInfiniteAE.load(tmp_path / "missing.npz")
