"""Tests of infae_kit.experiments.privacy_frontier: the grid, the table, the cache, bad grids."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from infae_kit.data import load_dataset
from infae_kit.distill import DistillConfig, distill_config_for
from infae_kit.distill import cache as distill_cache_module
from infae_kit.errors import ParameterError
from infae_kit.experiments import privacy_frontier as PF

BASE = DistillConfig(budget=20, gamma=10, tau=5.0, steps=4, log_freq=2, eval_steps=(), val_lambdas=(1.0, 50.0))


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_users=120, n_items=200, seed=5, mean_interactions=12)


@pytest.fixture
def count_distills(monkeypatch):
    """Counts the DISTILL-CF runs (the loop itself, not the cache lookups)."""
    calls = []
    real = distill_cache_module.distill

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(distill_cache_module, "distill", counting)
    return calls


def test_grid_is_the_product_in_curve_order():
    configs = PF.frontier_configs(BASE, 120, [0.25, 0.05], taus=[0.5, 5.0])
    assert [(c.budget, c.gamma, c.tau) for c in configs] == [(6, 10, 0.5), (30, 10, 0.5), (6, 10, 5.0), (30, 10, 5.0)]
    assert all(c.steps == BASE.steps and c.lambda2 == BASE.lambda2 for c in configs)
    default = PF.frontier_configs(BASE, 1000, [0.1])
    assert [(c.budget, c.gamma, c.tau) for c in default] == [(100, BASE.gamma, BASE.tau)]


@pytest.mark.parametrize("shares, kwargs, message", [
    ([], {}, "budget_shares is empty"),
    (None, {}, "budget_shares is None"),
    ([0.0], {}, "in (0, 1]"),
    ([1.5], {}, "in (0, 1]"),
    ([0.001], {}, "less than one"),
    ([0.1, 0.101], {}, "same μ"),
    ([0.1], {"gammas": [0]}, "γ must be an integer"),
    ([0.1], {"gammas": [2.5]}, "γ must be an integer"),
    ([0.1], {"taus": [-1.0]}, "τ must be a finite number > 0"),
    ([0.1], {"taus": []}, "taus is empty"),
    ([0.1], {"taus": [5, 5]}, "twice"),
    ("0.1", {}, "must be a list"),
])
def test_bad_grids_are_refused(shares, kwargs, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")
                       .replace("[", r"\[")):
        PF.frontier_configs(BASE, 120, shares, **kwargs)


def test_bad_calls_are_refused(data, tmp_path):
    with pytest.raises(ParameterError, match="configs is empty"):
        PF.privacy_frontier(data, [], cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="twice"):
        PF.privacy_frontier(data, [BASE, BASE], cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="DistillConfig"):
        PF.privacy_frontier(data, [{"budget": 10}], cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="fraction_revealed"):
        PF.privacy_frontier(data, [BASE], cache_dir=tmp_path, fraction_revealed=1.5)
    with pytest.raises(ParameterError, match="target_users"):
        PF.privacy_frontier(data, [BASE], cache_dir=tmp_path, target_users=[data.n_users])
    with pytest.raises(ParameterError, match="base must be a DistillConfig"):
        PF.frontier_configs(distill_config_for("synthetic").to_dict(), 120, [0.1])


def test_table_then_a_rerun_reads_the_cache(data, tmp_path, count_distills):
    configs = PF.frontier_configs(BASE, data.n_users, [0.05, 0.2], taus=[0.5, 5.0])
    first = PF.privacy_frontier(data, configs, cache_dir=tmp_path, n_targets=40, seed=3)
    assert len(count_distills) == len(configs) == 4
    table = first.table()
    assert len(table) == len(configs) and first.n_computed == 4 and first.n_cached == 0
    assert list(zip(table["budget"], table["tau"])) == [(c.budget, c.tau) for c in configs]
    assert np.allclose(table["budget_percent"], 100 * table["budget"] / data.n_users)
    for col in ("deanonymized_percent", "recovered_percent"):
        assert table[col].between(0, 100).all(), col
    assert (table["targets"] == 40).all() and (table["correct"] <= table["targets"]).all()
    assert np.allclose(table["deanonymized_percent"], 100 * table["correct"] / table["targets"])
    assert (table["quality_percent"] > 0).all() and table["quality_percent"].notna().all()
    assert np.allclose(table["quality_percent"], 100 * table["test_NDCG@10"] / first.full["test_NDCG@10"])
    assert (table["lambda"].isin(BASE.val_lambdas)).all()
    assert not table["from_cache"].any() and not table["distill_from_cache"].any()
    assert (table["seconds"] > 0).all() and first.timings_s["total"] >= first.timings_s["settings"] > 0
    assert first.control["users"] == data.n_users - 40 and first.control["lambda"] in BASE.val_lambdas
    assert 0 <= first.control["deanonymized_percent"] <= 100 and first.control["quality_percent"] > 0
    json.dumps(first.to_dict())  # JSON-ready

    second = PF.privacy_frontier(data, configs, cache_dir=tmp_path, n_targets=40, seed=3)
    assert len(count_distills) == 4, "a rerun distilled again"
    assert second.n_cached == 4 and second.n_computed == 0 and second.table()["from_cache"].all()
    assert second.timings_s["full"] == second.timings_s["control"] == second.timings_s["settings"] == 0.0
    measured = ["deanonymized_percent", "quality_percent", "test_NDCG@10", "lambda", "budget", "tau"]
    assert second.table()[measured].equals(table[measured])

    # an interrupted grid: one setting's entry lost, its summary still in the distill cache
    (entry,) = (tmp_path / "privacy_frontier").glob(f"*-mu{configs[0].budget}-g10-t0.5-*.json")
    entry.write_text("{not json")  # a damaged entry is set aside and the setting measured again
    with pytest.warns(UserWarning, match="could not be read"):
        third = PF.privacy_frontier(data, configs, cache_dir=tmp_path, n_targets=40, seed=3)
    assert len(count_distills) == 4, "the summary should have come from the distill cache"
    assert third.n_computed == 1 and third.n_cached == 3
    assert bool(third.rows[0]["distill_from_cache"]) and not third.rows[0]["from_cache"]
    assert third.table()[measured].equals(table[measured])

    # another attack setting is another measurement, but no new distillation
    other = PF.privacy_frontier(data, configs[:1], cache_dir=tmp_path, n_targets=40, seed=3, noise=0.05)
    assert len(count_distills) == 4 and other.n_computed == 1


def test_reaching_target_reads_both_thresholds(data, tmp_path):
    result = PF.privacy_frontier(data, [BASE], cache_dir=tmp_path, n_targets=30)
    row = result.rows[0]
    assert result.reaching_target(max_deanonymized_percent=100.0, min_quality_percent=0.0) == [row]
    assert result.reaching_target(max_deanonymized_percent=100.0,
                                  min_quality_percent=row["quality_percent"] + 1e-6) == []
    if row["deanonymized_percent"] > 0:
        assert result.reaching_target(max_deanonymized_percent=row["deanonymized_percent"] / 2,
                                      min_quality_percent=0.0) == []
    target = result.to_dict()["target"]
    assert target["reached"] == bool(result.reaching_target())
    assert target["max_deanonymized_percent"] == PF.TARGET_MAX_DEANONYMIZED_PERCENT
    assert math.isclose(result.control["quality_percent"],
                        100 * result.control["test_NDCG@10"] / result.full["test_NDCG@10"])


def test_given_targets_are_the_ones_attacked(data, tmp_path):
    targets = np.flatnonzero(np.diff(data.train.tocsr().indptr) >= 2)[:25]
    result = PF.privacy_frontier(data, [BASE], cache_dir=tmp_path, target_users=targets)
    assert result.attack["targets"] == 25 and result.rows[0]["targets"] == 25
    assert result.control["users"] == data.n_users - 25


def _recorded_frontier() -> dict:
    """A frontier as notebook 06 records it (to_dict), two curves of two μ each."""
    rows = [{"budget": mu, "budget_percent": 100 * mu / 1000, "gamma": 50, "tau": tau, "steps": 100,
             "test_NDCG@10": q / 5, "quality_percent": q, "deanonymized_percent": d, "recovered_percent": d + 1}
            for mu, tau, q, d in ((20, 0.5, 80.0, 0.5), (100, 0.5, 97.0, 0.8), (20, 5.0, 85.0, 2.0),
                                  (100, 5.0, 99.0, 6.0))]
    control = {"users": 900, "test_NDCG@10": 19.0, "quality_percent": 95.0, "deanonymized_percent": 3.0,
               "recovered_percent": 4.0}
    return {"dataset": "toy", "rows": rows, "control": control, "full": {"test_NDCG@10": 20.0},
            "attack": {"fraction_revealed": 0.9, "noise": 0.0, "targets": 500}}


def test_frontier_figure_and_table():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from infae_kit.experiments.privacy_figures import frontier_table, plot_privacy_frontier

    frontier = _recorded_frontier()
    fig = plot_privacy_frontier(frontier)
    ax = fig.axes[0]
    points = [c for c in ax.collections if len(c.get_offsets())]
    assert len(points) == 3  # two (γ, τ) curves and the control
    assert sorted(len(c.get_offsets()) for c in points) == [1, 2, 2]
    (box,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_label().startswith("target")]
    assert box.get_x() == PF.TARGET_MIN_QUALITY_PERCENT and box.get_height() == PF.TARGET_MAX_DEANONYMIZED_PERCENT
    assert "toy" in ax.get_title() and "500 targets" in ax.get_ylabel()
    plt.close(fig)
    table = frontier_table(frontier).splitlines()
    assert len(table) == 2 + 4 + 1
    assert [line.rstrip(" |").rsplit("|", 1)[-1].strip() for line in table[2:]] == ["no", "yes", "no", "no", "no"]


def test_verdict_says_reached_or_names_the_closest_points():
    from infae_kit.experiments.privacy_figures import frontier_verdict

    frontier = _recorded_frontier()
    text = frontier_verdict(frontier)
    assert "**reached** by 1" in text and "μ = 100 (10.0 % of the users), γ = 50, τ = 0.5" in text
    frontier["rows"][1]["deanonymized_percent"] = 1.5  # no setting in the box any more
    text = frontier_verdict(frontier)
    assert "**not reached**" in text
    assert "best quality at ≤ 1 %: μ = 20 (2.0 % of the users), γ = 50, τ = 0.5, 0.5 % de-anonymized at 80.0 %" in text
    assert "least de-anonymized at ≥ 95 % quality: μ = 100 (10.0 % of the users), γ = 50, τ = 0.5, 1.5 %" in text
    assert "The control: 3.0 % de-anonymized at 95.0 %" in text
    for r in frontier["rows"]:
        r["deanonymized_percent"], r["quality_percent"] = 10.0, 50.0
    text = frontier_verdict(frontier)
    assert "none de-anonymizes 1 % or fewer" in text and "none reaches 95 % of full-data quality" in text
