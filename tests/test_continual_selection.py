"""How a memory enters MVAE (row weights), validation users, and settings chosen on them
(:mod:`infae_kit.experiments.continual_selection`)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.caching import DamagedCacheWarning
from infae_kit.distill import DistillConfig
from continual_fixtures import TINY, max_param_diff
from infae_kit.errors import ParameterError
from infae_kit.experiments import continual as C
from infae_kit.experiments import continual_models as CM
from infae_kit.experiments.continual_memory import (
    memory_probe,
    probe_averages,
    row_profile,
)
from infae_kit.experiments.continual_mvae import ContinualMVAE, Replay
from infae_kit.experiments.continual_selection import (
    continual_grid,
    ordering_claim,
    select_continual,
)




# ---------------------------------------------------------------------------------------------------------
# row weights
# ---------------------------------------------------------------------------------------------------------
def test_unit_row_weights_train_the_plain_model(small_matrix):
    plain = ContinualMVAE(**TINY, seed=2).fit(small_matrix)
    ones = ContinualMVAE(**TINY, seed=2).fit(small_matrix, row_weights=np.ones(small_matrix.shape[0]))
    assert max_param_diff(plain.params_, ones.params_) < 1e-5


def test_row_weights_change_what_the_model_learns():
    """Half the users hold items {1, 2}, half {1, 3}: for a user with item 1 only, the model ranks item 2 above
    item 3 exactly when the first half weighs more."""
    X = sp.csr_matrix(np.array([[0, 1, 1, 0]] * 16 + [[0, 1, 0, 1]] * 16, dtype=np.float32))
    query = sp.csr_matrix(np.array([[0, 1, 0, 0]], dtype=np.float32))
    config = {**TINY, "epochs": 40}
    margin = {}
    for w in (0.25, 4.0):
        weights = np.r_[np.full(16, w), np.ones(16)]
        scores = ContinualMVAE(**config, seed=0).fit(X, row_weights=weights).predict(query)[0]
        margin[w] = float(scores[2] - scores[3])
    assert margin[4.0] > 0 > margin[0.25]


def test_row_weights_are_checked(small_matrix):
    model = ContinualMVAE(**TINY)
    with pytest.raises(ParameterError, match="one weight per row"):
        model.fit(small_matrix, row_weights=np.ones(3))
    with pytest.raises(ParameterError, match="finite and ≥ 0"):
        model.fit(small_matrix, row_weights=-np.ones(small_matrix.shape[0]))
    with pytest.raises(ParameterError, match="cannot be combined"):
        model.fit(small_matrix, row_weights=np.ones(small_matrix.shape[0]),
                  replay=Replay(small_matrix[:2], np.zeros((2, small_matrix.shape[1])), 1.0))


# ---------------------------------------------------------------------------------------------------------
# validation users
# ---------------------------------------------------------------------------------------------------------
def test_selection_users_split_every_user_once_and_repeat():
    users = np.arange(3, 103)
    val, test = CM.selection_users(users, 0.3, seed=0, period=2)
    assert len(val) == 30 and len(test) == 70
    assert np.array_equal(np.sort(np.r_[val, test]), users)
    again = CM.selection_users(users, 0.3, seed=0, period=2)
    assert np.array_equal(again[0], val)
    assert not np.array_equal(CM.selection_users(users, 0.3, seed=0, period=3)[0], val)
    none, every = CM.selection_users(users, 0.0, seed=0, period=2)
    assert none.size == 0 and np.array_equal(every, users)
    assert [len(x) for x in CM.selection_users(np.arange(2), 0.1, 0, 0)] == [1, 1]


def test_run_continual_sets_validation_users_aside(split, tmp_path):
    kwargs = dict(budget=8, mvae=TINY, seed=0, cache_dir=tmp_path, progress=False)
    every = CM.run_continual(split, ["individual"], **kwargs)
    held = CM.run_continual(split, ["individual"], selection_share=0.5, **kwargs)
    assert held.from_cache == {"individual": False}  # its own cache entry
    steps = list(C.continual_steps(split, "individual"))
    for r_all, r in zip(every.rows, held.rows):
        t = r["period"]
        assert r["n_users"] + r["n_validation_users"] == r_all["n_users"] == len(steps[t].users)
        assert set(r["validation"]) == set(every.metric_names())
        # the same model: the two halves' hit counts add up to the whole's
        k = 100
        total = r_all[f"HR@{k}"] * r_all["n_users"]
        assert r[f"HR@{k}"] * r["n_users"] + r["validation"][f"HR@{k}"] * r["n_validation_users"] == pytest.approx(
            total, rel=1e-5)
    assert held.metric_names() == every.metric_names()
    val = held.averages(validation=True)["individual"]
    assert val["HR@10"] == pytest.approx(np.mean([r["validation"]["HR@10"] for r in held.rows]))
    with pytest.raises(ParameterError, match="no validation users"):
        every.averages(validation=True)
    with pytest.raises(ParameterError, match="selection_share"):
        CM.run_continual(split, ["individual"], selection_share=1.0, **kwargs)
    with pytest.raises(ParameterError, match="memory_weight"):
        CM.run_continual(split, ["distill-cf"], memory_weight=-1, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# grid, claim, profiles
# ---------------------------------------------------------------------------------------------------------
def test_continual_grid_is_the_product_of_the_knobs():
    grid = continual_grid(ader_lambda_bases="0.2,0.8", memory_weights=[1, 4], supports="soft,topk", gammas="50,200",
                          strategies="individual,joint,ader,distill-cf")
    assert grid["individual"] == [{}] and grid["joint"] == [{}]
    assert grid["ader"] == [{"lambda_base": 0.2}, {"lambda_base": 0.8}]
    assert len(grid["distill-cf"]) == 2 * 2 * 2
    assert {"memory_weight": 4.0, "support": "topk", "gamma": 200} in grid["distill-cf"]
    assert all("tau" not in g for g in grid["distill-cf"])  # no τ given: the base configuration's
    with pytest.raises(ParameterError, match="strategies"):
        continual_grid(strategies="individual,ewc")


def test_ordering_claim_on_a_constructed_example():
    per_period = {"HR@10": {"distill-cf": [0, 3, 5, 4], "ader": [0, 2, 4, 5], "individual": [0, 1, 1, 1]}}
    c = ordering_claim(per_period, [1, 2, 3], ["HR@10"])["HR@10"]
    assert c["distill-cf"] == pytest.approx(4) and c["ader"] == pytest.approx(11 / 3)
    assert c["holds"] and c["periods_distill_ge_ader"] == 2 and c["periods_compared"] == 3
    assert c["paired_diff_distill_minus_ader"] == pytest.approx(1 / 3)
    assert c["paired_diff_sem"] == pytest.approx(np.std([1, 1, -1], ddof=1) / np.sqrt(3))
    assert c["paired_diff_ader_minus_individual"] == pytest.approx(8 / 3)
    per_period["HR@10"]["ader"] = [0, 0, 0, 0]
    assert not ordering_claim(per_period, [1, 2, 3], ["HR@10"])["HR@10"]["holds"]
    with pytest.raises(ParameterError, match="needs the strategies"):
        ordering_claim({"HR@10": {"ader": [1]}}, [0], ["HR@10"])


def test_row_profile_of_binary_and_soft_rows():
    binary = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.float32))
    p = row_profile(binary)
    assert p == {"rows": 2, "mass": 3.0, "nonzeros": 3.0, "entropy": pytest.approx(1.0)}
    soft = sp.csr_matrix(np.array([[0.9, 0.1, 0, 0]], dtype=np.float32))
    q = row_profile(soft)
    expected = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(2)
    assert q["mass"] == pytest.approx(1.0) and q["entropy"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_select_continual_chooses_on_validation_and_checks_on_test(split, tmp_path):
    grid = continual_grid(ader_lambda_bases=[0.2, 3.2], memory_weights=[1, 4], supports=["topk"])
    dconfig = DistillConfig(gamma=8, steps=3, log_freq=3, support="topk")
    kwargs = dict(distill_config=dconfig, budget=8, mvae=TINY, seed=0, cache_dir=tmp_path)
    sel = select_continual(split, grid, **kwargs)
    assert sel.periods == list(range(1, split.n_periods - 1))
    for strategy in ("individual", "ader", "distill-cf"):
        options = [c for c in sel.candidates if c["strategy"] == strategy]
        best = max(options, key=lambda c: c["validation"]["NDCG@10"])
        assert best["chosen"] and sum(c["chosen"] for c in options) == 1
        assert sel.chosen[strategy] == best["setting"]
        # the claim uses the chosen setting's test numbers
        assert sel.claim["NDCG@10"][strategy] == pytest.approx(best["test"]["NDCG@10"])
    assert len(sel.n_users["validation"]) == split.n_periods - 1
    # a rerun reads every run from the cache and chooses the same
    again = select_continual(split, grid, **kwargs)
    assert all(c["from_cache"] for c in again.candidates) and again.chosen == sel.chosen
    assert again.to_dict()["claim"] == sel.claim
    with pytest.raises(ParameterError, match="set by select_continual"):
        select_continual(split, grid, lambda_base=0.3, **kwargs)
    with pytest.raises(ParameterError, match="may vary"):
        select_continual(split, {**grid, "ader": [{"memory_weight": 2}]}, **kwargs)
    with pytest.raises(ParameterError, match="at least one setting"):
        select_continual(split, {"ader": grid["ader"]}, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# the memory probe
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_memory_probe_fits_both_models_on_each_memory(split, tmp_path):
    dconfig = DistillConfig(budget=8, gamma=8, steps=3, log_freq=3, support="topk")
    rows = memory_probe(split, dconfig, mvae=TINY, periods=[0, 1], cache_dir=tmp_path)
    assert len(rows) == 2 * 2 * 3
    for p in (0, 1):
        data = CM.period_dataset(split, p)
        scored = int((np.diff(data.val.indptr) > 0).sum())
        mine = [r for r in rows if r["period"] == p]
        assert {(r["model"], r["memory"]) for r in mine} == {(m, x) for m in ("∞-AE", "MVAE")
                                                             for x in ("random real users", "summary", "all users")}
        assert {r["n_users"] for r in mine} == {scored}
        sizes = {r["memory"]: r["rows"] for r in mine}
        assert sizes == {"random real users": 8, "summary": 8, "all users": data.n_users}
        assert all(r["lambda"] in dconfig.val_lambdas for r in mine if r["model"] == "∞-AE")
        assert all(r["lambda"] is None for r in mine if r["model"] == "MVAE")
    # the summary is the continual loop's: read from the same cache
    _, info = CM.period_summary(split, 0, dconfig, cache_dir=tmp_path / "distill_cache")
    assert info["from_cache"]
    # a rerun reads every period's rows from the cache; a damaged entry is set aside and recomputed
    assert memory_probe(split, dconfig, mvae=TINY, periods=[0, 1], cache_dir=tmp_path) == rows
    (entry,) = (tmp_path / "continual_probe").glob("*-p1-*.json")
    entry.write_text('{"key": ')
    with pytest.warns(DamagedCacheWarning, match=entry.name):
        healed = memory_probe(split, dconfig, mvae=TINY, periods=[0, 1], cache_dir=tmp_path)
    assert [r["period"] for r in healed] == [r["period"] for r in rows]
    assert [r["HR@100"] for r in healed if r["model"] == "∞-AE"] == pytest.approx(
        [r["HR@100"] for r in rows if r["model"] == "∞-AE"], abs=1e-6)
    avg = probe_averages(rows, "HR@100")
    for model in ("∞-AE", "MVAE"):
        by = {(r["period"], r["memory"]): r["HR@100"] for r in rows if r["model"] == model}
        gains = [by[p, "summary"] - by[p, "random real users"] for p in (0, 1)]
        assert avg[model]["summary − random"] == pytest.approx(np.mean(gains))
        assert avg[model]["periods"] == 2
    with pytest.raises(ParameterError, match="periods is empty"):
        memory_probe(split, dconfig, mvae=TINY, periods=[])
