"""Tests of infae_kit.experiments.sweeps: cells, the cache and resumption, noise handling, budgets, derived tables, plots."""

from __future__ import annotations

import dataclasses
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from infae_kit.caching import DamagedCacheWarning
from infae_kit.data import load_dataset
from infae_kit.errors import ParameterError
from infae_kit.experiments.sweeps import (
    FULL,
    SweepSettings,
    noisy_dataset,
    relative_drop,
    run_cell,
    run_sweep,
    training_rows,
)
from infae_kit.experiments.sweep_figures import plot_budget_curves, plot_noise_budget_curves, plot_noise_drop

FAST = SweepSettings(seed=3, infae_lambdas=(0.1, 5.0), ease_lambdas=(10.0, 100.0), distill_preset="ci",
                     distill_overrides={"steps": 3, "gamma": 5, "log_freq": 3})


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_users=120, n_items=200, seed=5)


def test_noisy_dataset_corrupts_train_only(data):
    assert noisy_dataset(data, 0, seed=1) is data
    noisy = noisy_dataset(data, 5, seed=1)
    flips = np.asarray((noisy.train != data.train).sum(axis=1)).ravel()
    assert np.all(flips == 10)  # 5 % of 200 items
    assert (noisy.val != data.val).nnz == 0 and (noisy.test != data.test).nnz == 0
    assert noisy.name == data.name and noisy._auc_negatives_cache is not data._auc_negatives_cache


def test_training_rows_of_each_sampler_have_the_budget(data, tmp_path):
    for source in ("user-rns", "head-user", "svp-cf"):
        rows, info = training_rows(data, source, 30, FAST, cache_dir=tmp_path)
        assert rows.shape == (30, data.n_items) and info["rows"] == 30
        assert set(np.unique(rows.data)) <= {1.0}
    rows, info = training_rows(data, "interaction-rns", 30, FAST, cache_dir=tmp_path)
    assert rows.shape[0] == 30 and info["interactions"] < data.train[:30].nnz  # 30 users, few interactions each
    matched = dataclasses.replace(FAST, interaction_budget="matched-interactions")
    rows, info = training_rows(data, "interaction-rns", 30, matched, cache_dir=tmp_path)
    assert info["interactions"] == round(30 * data.train.nnz / np.count_nonzero(np.diff(data.train.indptr)))
    rows, info = training_rows(data, FULL, None, FAST, cache_dir=tmp_path)
    assert (rows != data.train).nnz == 0


def test_bad_budgets_and_names_are_clear_errors(data, tmp_path):
    with pytest.raises(ParameterError, match="larger than the data"):
        training_rows(data, "distill-cf", data.n_users + 1, FAST, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="integer >= 1"):
        training_rows(data, "distill-cf", 0, FAST, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="the sources are"):
        training_rows(data, "random", 10, FAST, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="larger than the data"):
        run_sweep(data, sources=["user-rns"], budgets=[data.n_users + 1], settings=FAST, cache_dir=tmp_path,
                  progress=False)
    with pytest.raises(ParameterError, match="models are"):
        run_sweep(data, sources=["user-rns"], budgets=[10], models=["svd"], settings=FAST, cache_dir=tmp_path,
                  progress=False)
    with pytest.raises(ParameterError, match="budget or seed"):
        SweepSettings(distill_overrides={"budget": 10})


def test_user_rns_over_every_user_equals_the_full_data_cell(data, tmp_path):
    n_active = int(np.count_nonzero(np.diff(data.train.indptr)))
    everyone = run_cell(data, "user-rns", n_active, "ease", settings=FAST, cache_dir=tmp_path)
    full = run_cell(data, FULL, None, "ease", settings=FAST, cache_dir=tmp_path)
    assert everyone["lambda"] == full["lambda"]
    assert everyone["test_HR@10"] == pytest.approx(full["test_HR@10"])
    assert everyone["test_NDCG@100"] == pytest.approx(full["test_NDCG@100"])


def test_cells_are_cached_and_keyed_by_what_they_depend_on(data, tmp_path):
    first = run_cell(data, "user-rns", 20, "infae", settings=FAST, cache_dir=tmp_path)
    second = run_cell(data, "user-rns", 20, "infae", settings=FAST, cache_dir=tmp_path)
    assert not first["from_cache"] and second["from_cache"]
    assert {k: v for k, v in first.items() if k != "from_cache"} == {
        k: v for k, v in second.items() if k != "from_cache"}
    other_seed = SweepSettings(seed=4, infae_lambdas=FAST.infae_lambdas, ease_lambdas=FAST.ease_lambdas)
    assert not run_cell(data, "user-rns", 20, "infae", settings=other_seed, cache_dir=tmp_path)["from_cache"]
    noisy = noisy_dataset(data, 5, seed=3)
    assert not run_cell(noisy, "user-rns", 20, "infae", noise=5, settings=FAST, cache_dir=tmp_path)["from_cache"]
    files = sorted((tmp_path / "sweep_cells").glob("*.json"))
    assert len(files) == 3
    # a damaged cell file is recomputed, not trusted
    target = next(f for f in files if "noise0-" in f.name and json.loads(f.read_text())["key"]["seed"] == 3)
    target.write_text("{not json")
    with pytest.warns(DamagedCacheWarning, match=target.name):
        again = run_cell(data, "user-rns", 20, "infae", settings=FAST, cache_dir=tmp_path)
    assert not again["from_cache"] and again["test_HR@10"] == pytest.approx(first["test_HR@10"])
    assert len(list((tmp_path / "sweep_cells").glob("*.damaged-*"))) == 1


def test_an_extended_sweep_computes_only_the_new_cells(data, tmp_path):
    one = run_sweep(data, sources=["user-rns", "head-user"], budgets=[15], models=["ease"], settings=FAST,
                    cache_dir=tmp_path, progress=False)
    assert (one.n_computed, one.n_cached) == (3, 0)  # full + 2 sources
    two = run_sweep(data, sources=["user-rns", "head-user"], budgets=[15, 40], models=["ease"], settings=FAST,
                    cache_dir=tmp_path, progress=False)
    assert (two.n_computed, two.n_cached) == (2, 3)
    x, y = two.curve("user-rns", "ease", "HR@10")
    assert list(x) == [15, 40] and np.all(np.isfinite(y))
    assert two.value("head-user", "ease", "HR@10", 40) == pytest.approx(
        [r for r in two.rows if r["source"] == "head-user" and r["n_users"] == 40][0]["test_HR@10"])
    metrics = two.metrics_by_cell(["user-rns"])
    assert set(metrics) == {"ease_full", "ease_user-rns_15", "ease_user-rns_40"}
    assert set(metrics["ease_full"]) == {"val", "test"} and "HR@10" in metrics["ease_full"]["test"]


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_distill_cells_reuse_the_distilled_support(data, tmp_path):
    first = run_cell(data, "distill-cf", 10, "infae", settings=FAST, cache_dir=tmp_path)
    assert first["rows"] == 10 and "distill_best_lambda" in first
    assert len(list((tmp_path / "distill_cache").iterdir())) == 1
    ease = run_cell(data, "distill-cf", 10, "ease", settings=FAST, cache_dir=tmp_path)
    rows, info = training_rows(data, "distill-cf", 10, FAST, cache_dir=tmp_path)
    assert info["from_cache"] and rows.shape == (10, data.n_items)
    assert ease["rows"] == 10 and len(list((tmp_path / "distill_cache").iterdir())) == 1


@pytest.mark.slow  # one of the slowest unit tests: in make test, not in make test-fast
def test_noise_sweep_drops_and_plots(data, tmp_path):
    result = run_sweep(data, sources=["user-rns", "head-user"], budgets=[20, 60], models=["infae", "ease"],
                       noise_levels=[0, 10], settings=FAST, cache_dir=tmp_path, progress=False)
    assert len(result.rows) == 2 * (2 + 2 * 2 * 2)
    drops = relative_drop(result.rows, "HR@10", "ease")
    clean_full = drops[(drops.source == FULL) & (drops.noise == 0)]
    assert clean_full.drop_percent.iloc[0] == pytest.approx(0.0)
    noisy_full = drops[(drops.source == FULL) & (drops.noise == 10)].drop_percent.iloc[0]
    assert noisy_full > 0  # 10 % flips (20 items per user) hurt EASE
    with pytest.raises(ParameterError, match="clean full-data"):
        relative_drop([r for r in result.rows if r["source"] != FULL], "HR@10")
    fig = plot_budget_curves(result, models=["infae"], metrics=["HR@10", "NDCG@10"])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3  # two sources + the full-data line
    fig = plot_noise_drop(result, metrics=["HR@10"], budgets=[20, 60])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    fig = plot_noise_budget_curves(result, metrics=["HR@10"], noise_levels=[0, 10], sources=["user-rns"])
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 4  # 2 models × (source + full)
    import matplotlib.pyplot as plt

    plt.close("all")
