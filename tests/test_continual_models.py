"""Tests of infae_kit.experiments.continual_models and continual_mvae (ADER's memory, MVAE's warm start, replay and
soft rows): known answers on constructed examples, and the loop on small synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.experiments import continual as C
from infae_kit.experiments import continual_models as CM
from infae_kit.experiments.continual_mvae import (
    ADER_LAMBDA_BASE,
    ContinualMVAE,
    Replay,
    ader_lambda,
    herding_selection,
    teacher_targets,
)
from infae_kit.models.mvae import MVAE
from infae_kit.caching import DamagedCacheWarning
from infae_kit.data import load_dataset
from infae_kit.distill import DistillConfig
from continual_fixtures import TINY, max_param_diff
from infae_kit.errors import DataError, ParameterError


# ---------------------------------------------------------------------------------------------------------
# herding and ADER's λ
# ---------------------------------------------------------------------------------------------------------
def test_herding_order_on_a_constructed_example():
    # unit vectors at 0°, 20°, −25°, 90°, −90°: mean μ ≈ (0.569, −0.016)
    angles = np.deg2rad([0, 20, -25, 90, -90])
    F = np.c_[np.cos(angles), np.sin(angles)]
    # step 1: ⟨μ, f⟩ = .569, .529, .523, −.016, .016 → 0 (the point closest to the mean)
    # step 2: w = 2μ − f0 = (.138, −.032): ⟨w, f⟩ for 1..4 = .119, .139, −.032, .032 → 2
    # step 3: w = 3μ − f0 − f2 = (−.198, .374): for 1, 3, 4 = −.058, .374, −.374 → 3
    # step 4: w = 4μ − f0 − f2 − f3 = (.371, −.641): for 1, 4 = .130, .641 → 4; then 1
    np.testing.assert_array_equal(herding_selection(F, 5), [0, 2, 3, 4, 1])
    by_distance = np.argsort(np.linalg.norm(F - F.mean(axis=0), axis=1))
    np.testing.assert_array_equal(by_distance, [0, 1, 2, 4, 3])  # herding is not "closest to the mean first"
    np.testing.assert_array_equal(herding_selection(F, 2), [0, 2])  # a prefix of the full order
    # scale does not matter with normalisation (ADER normalises the representations)
    np.testing.assert_array_equal(herding_selection(F * np.array([[1], [3], [0.5], [2], [7]]), 5), [0, 2, 3, 4, 1])
    assert sorted(herding_selection(F, 50).tolist()) == [0, 1, 2, 3, 4]  # n ≥ m: every row once


def test_herding_first_pick_is_closest_to_mean_and_errors():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(50, 4))
    Fn = F / np.linalg.norm(F, axis=1, keepdims=True)
    assert herding_selection(F, 1)[0] == np.argmin(np.linalg.norm(Fn - Fn.mean(axis=0), axis=1))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ParameterError, match="n must be"):
            herding_selection(F, bad)
    with pytest.raises(ParameterError, match="2-D"):
        herding_selection(np.zeros(3), 1)
    with pytest.raises(ParameterError, match="NaN"):
        herding_selection(np.full((2, 2), np.nan), 1)


def test_ader_lambda_formula():
    # λ = λ_base · sqrt(|I_{t−1}|/|I_t| · |E|/|D_t|) = 0.8 · sqrt(0.9 · 0.25)
    assert ader_lambda(0.8, 900, 1000, 30, 120) == pytest.approx(0.8 * math.sqrt(0.225))
    assert ader_lambda(0.8, 1000, 1000, 50, 50) == pytest.approx(0.8)  # nothing new, memory as large as data
    assert ader_lambda(0.0, 5, 10, 1, 3) == 0.0
    with pytest.raises(ParameterError, match="cannot be smaller"):
        ader_lambda(0.8, 10, 5, 1, 1)
    with pytest.raises(ParameterError, match="n_exemplars"):
        ader_lambda(0.8, 10, 10, 0, 1)
    with pytest.raises(ParameterError, match="lambda_base"):
        ader_lambda(-1, 10, 10, 1, 1)


class _FixedLogits:
    def __init__(self, logits):
        self.logits = np.asarray(logits, dtype=np.float32)

    def predict(self, X):
        return self.logits[: X.shape[0]]


def test_teacher_targets_are_softmax_over_old_items_times_row_size():
    logits = np.array([[0.0, np.log(3.0), 5.0, 1.0], [2.0, 2.0, -1.0, 7.0]])
    rows = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.float32))
    items = np.array([True, True, False, True])
    out = teacher_targets(_FixedLogits(logits), rows, items)
    z0 = 1 + 3 + math.e
    np.testing.assert_allclose(out[0], 2 * np.array([1 / z0, 3 / z0, 0, math.e / z0]), rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), [2, 4], rtol=1e-6)
    assert np.all(out[:, 2] == 0)


# ---------------------------------------------------------------------------------------------------------
# MVAE's warm start; ContinualMVAE's replay and soft rows
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_warm_start_continues_from_the_given_parameters(small_matrix):
    source = MVAE(**{**TINY, "epochs": 5}, seed=0).fit(small_matrix)
    # Adam moves each weight by about the learning rate per step: with a tiny one the model stays where it started
    tiny_lr = {**TINY, "learning_rate": 1e-9}
    warm = MVAE(**tiny_lr, seed=1).fit(small_matrix, init_params=source.params_, init_step=source.steps_run_)
    cold = MVAE(**tiny_lr, seed=1).fit(small_matrix)
    assert max_param_diff(warm.params_, source.params_) < 1e-6
    assert max_param_diff(cold.params_, source.params_) > 1e-2
    np.testing.assert_allclose(warm.predict(small_matrix), source.predict(small_matrix), atol=1e-4)
    # the step counter (KL annealing) continues: 2 epochs of ceil(40 / 32) = 2 batches after source's 5 × 2
    assert source.steps_run_ == 10 and warm.steps_run_ == 14 and cold.steps_run_ == 4
    # the given parameters are copied, not aliased or modified
    assert source.params_["decoder"][0]["w"] is not warm.params_["decoder"][0]["w"]


def test_warm_start_refuses_another_architecture(small_matrix):
    source = MVAE(**TINY).fit(small_matrix)
    with pytest.raises(ParameterError, match="shape"):
        MVAE(**{**TINY, "latent_size": 4}).fit(small_matrix, init_params=source.params_)
    with pytest.raises(ParameterError, match="structure"):
        MVAE(**TINY).fit(small_matrix, init_params={"encoder": []})
    with pytest.raises(ParameterError, match="init_step"):
        MVAE(**TINY).fit(small_matrix, init_step=-1)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_replay_distillation_pulls_the_exemplars_towards_their_targets(small_matrix):
    n_items = small_matrix.shape[1]
    exemplars = small_matrix[:6]
    items = np.zeros(n_items, dtype=bool)
    items[:10] = True
    targets = np.zeros((6, n_items), dtype=np.float32)
    targets[:, 7] = np.asarray(exemplars.sum(axis=1)).ravel()  # all the mass on old item 7
    config = {**TINY, "epochs": 60, "learning_rate": 0.01}
    with_kd = ContinualMVAE(**config).fit(small_matrix[6:], replay=Replay(exemplars, targets, 5.0, items))
    without = ContinualMVAE(**config).fit(small_matrix[6:])
    rank_of_7 = lambda m: (m.predict(exemplars)[:, :10] > m.predict(exemplars)[:, [7]]).sum(axis=1)
    assert np.all(rank_of_7(with_kd) == 0)  # item 7 first among the old items for every exemplar
    assert rank_of_7(without).mean() > 0
    assert with_kd.steps_run_ == 60 * 2  # 34 new + 6 replayed rows: 2 batches of 32 an epoch


def test_replay_inputs_are_checked(small_matrix):
    n_items = small_matrix.shape[1]
    model = ContinualMVAE(**TINY)
    with pytest.raises(ParameterError, match="must match"):
        model.fit(small_matrix, replay=Replay(small_matrix[:3], np.zeros((2, n_items)), 1.0))
    items = np.zeros(n_items, dtype=bool)
    items[0] = True
    with pytest.raises(ParameterError, match="outside replay.items"):
        model.fit(small_matrix, replay=Replay(small_matrix[:2], np.ones((2, n_items)), 1.0, items))
    with pytest.raises(ParameterError, match="replay.weight"):
        model.fit(small_matrix, replay=Replay(small_matrix[:2], np.zeros((2, n_items)), -1.0))
    with pytest.raises(ParameterError, match="Replay"):
        model.fit(small_matrix, replay=(small_matrix[:2], np.zeros((2, n_items)), 1.0))


def test_soft_rows_are_kept_only_when_asked(small_matrix):
    soft = small_matrix.copy()
    soft.data = np.random.default_rng(1).uniform(0.05, 1.0, soft.nnz).astype(np.float32)
    a = MVAE(**TINY).fit(soft)  # binarised: the same as the binary matrix
    b = MVAE(**TINY).fit(small_matrix)
    np.testing.assert_allclose(a.predict(small_matrix), b.predict(small_matrix), rtol=1e-5, atol=1e-5)
    c = ContinualMVAE(**TINY).fit(soft, binarize=False)  # other weights per item: another loss, other parameters
    assert max_param_diff(c.params_, b.params_) > 1e-3
    with pytest.raises(DataError, match="no interactions"):
        ContinualMVAE(**TINY).fit(sp.csr_matrix((3, 4), dtype=np.float32), binarize=False)


def test_continual_mvae_without_memory_is_the_plain_model(small_matrix):
    """The continual hooks live in the continual code: the plain MVAE has none, and without a replay or soft rows
    the continual variant trains the very same parameters (its own compiled step, the same arithmetic)."""
    plain = MVAE(**TINY, seed=3).fit(small_matrix)
    continual = ContinualMVAE(**TINY, seed=3).fit(small_matrix)
    assert max_param_diff(plain.params_, continual.params_) == 0.0
    with pytest.raises(TypeError, match="replay"):
        MVAE(**TINY).fit(small_matrix, replay=Replay(small_matrix[:2], np.zeros((2, small_matrix.shape[1])), 1.0))


def test_latent_means_shape_and_determinism(small_matrix):
    model = MVAE(**TINY).fit(small_matrix)
    mu = model.latent_means(small_matrix)
    assert mu.shape == (40, 8) and mu.dtype == np.float32
    np.testing.assert_array_equal(mu, model.latent_means(small_matrix))


# ---------------------------------------------------------------------------------------------------------
# period data, summaries and the loop
# ---------------------------------------------------------------------------------------------------------
def test_period_dataset_holds_the_active_users_of_the_period(split):
    data = CM.period_dataset(split, 1, holdout=0.2, seed=3)
    users = CM.active_rows(split.periods[1])
    assert data.n_users == len(users) and data.n_items == split.n_items
    assert ((data.train + data.val) != split.periods[1][users]).nnz == 0
    assert data.train.multiply(data.val).nnz == 0 and data.test.nnz == 0
    assert np.all(np.diff(data.train.indptr) > 0)  # nobody loses all their items to validation


def test_distill_budget_not_smaller_than_the_data_is_refused(split):
    n_users = CM.active_rows(split.periods[0]).size
    with pytest.raises(ParameterError, match="not smaller than"):
        CM.period_summary(split, 0, DistillConfig(budget=n_users, gamma=4, steps=1))
    smallest = min(CM.active_rows(split.periods[p]).size for p in range(split.n_periods - 2))
    with pytest.raises(ParameterError, match=rf"budget < {smallest}"):
        CM.run_continual(split, ["distill-cf"], budget=smallest, mvae=TINY, progress=False)
    with pytest.raises(ParameterError, match="at least 3 periods"):
        CM.run_continual(C.split_into_periods(load_dataset("synthetic", n_users=50, n_items=20, seed=0), 2),
                         ["ader"], budget=2, mvae=TINY, progress=False)
    with pytest.raises(ParameterError, match="strategies"):
        CM.run_continual(split, ["finetune"], mvae=TINY, progress=False)
    with pytest.raises(ParameterError, match="budget must be"):
        CM.run_continual(split, ["ader"], budget=0, mvae=TINY, progress=False)


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_the_loop_visits_every_period_of_every_strategy(split, tmp_path):
    budget = 8
    dconfig = DistillConfig(gamma=8, steps=3, log_freq=3, support="topk")
    kwargs = dict(budget=budget, mvae=TINY, distill_config=dconfig, seed=0, cache_dir=tmp_path, progress=False)
    result = CM.run_continual(split, CM.STRATEGIES, **kwargs)
    K = split.n_periods
    assert len(result.rows) == len(CM.STRATEGIES) * (K - 1)
    for s in CM.STRATEGIES:
        rows = [r for r in result.rows if r["strategy"] == s]
        assert [r["period"] for r in rows] == list(range(K - 1))
        assert [r["target_period"] for r in rows] == list(range(1, K))
    steps = list(C.continual_steps(split, "individual"))
    by = {(r["strategy"], r["period"]): r for r in result.rows}
    for t in range(K - 1):  # one evaluation for all strategies
        assert {by[(s, t)]["n_users"] for s in CM.STRATEGIES} == {len(steps[t].users)}
    first = {k: v for k, v in by[("individual", 0)].items() if k != "strategy"}
    for s in CM.STRATEGIES:  # the period-0 model is shared
        assert {k: v for k, v in by[(s, 0)].items() if k != "strategy"} == first
    for t in range(1, K - 1):
        assert by[("ader", t)]["n_memory_rows"] == budget == by[("distill-cf", t)]["n_memory_rows"]
        assert by[("joint", t)]["n_train_rows"] == CM.active_rows(split.history(t)).size
        assert by[("individual", t)]["n_train_rows"] == CM.active_rows(split.periods[t]).size
    # ADER's λ_t as the formula gives it, and its exemplars are users of the period before
    for ex in result.exemplars:
        t = ex["period"]
        assert by[("ader", t)]["lambda"] == pytest.approx(ader_lambda(
            ADER_LAMBDA_BASE, ex["n_items_before"], ex["n_items_now"], budget,
            by[("ader", t)]["n_train_rows"]))
        assert len(set(ex["users"])) == budget
        assert set(ex["users"]) <= set(CM.active_rows(split.periods[t - 1]).tolist())
    assert [s["period"] for s in result.summaries] == list(range(K - 2))
    averages = result.averages()
    assert set(averages) == set(CM.STRATEGIES) and {"HR@10", "NDCG@10", "HR@100"} <= set(averages["ader"])
    assert averages["joint"]["HR@10"] == pytest.approx(np.mean(result.per_period("HR@10")["joint"]))
    table = result.table()
    assert len(table) == len(result.rows)
    # a rerun reads every strategy from the cache: same rows, nothing trained
    again = CM.run_continual(split, CM.STRATEGIES, **kwargs)
    assert again.from_cache == {s: True for s in CM.STRATEGIES} and again.rows == result.rows
    # another setting of one strategy misses only that strategy's cache entry
    other = CM.run_continual(split, ["individual", "ader"], **{**kwargs, "lambda_base": 0.4})
    assert other.from_cache == {"individual": True, "ader": False}
    # a damaged cache entry is set aside and that strategy trained again; the others still come from the cache
    (damaged,) = [p for p in (tmp_path / "continual").glob("*-joint-*.json")]
    damaged.write_text('{"rows": [')
    with pytest.warns(DamagedCacheWarning, match=damaged.name):
        healed = CM.run_continual(split, ["individual", "joint"], **kwargs)
    assert healed.from_cache == {"individual": True, "joint": False}
    untimed = lambda rows: [{k: v for k, v in r.items() if k != "fit_s"} for r in rows if r["strategy"] == "joint"]
    assert untimed(healed.rows) == untimed(result.rows)  # retrained: the same rows, only the timings differ
