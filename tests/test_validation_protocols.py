"""Comparing validation protocols: grid curves, picks, hindsight, rank correlation, bootstrap, the report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.data import load_dataset, with_validation_holdout
from infae_kit.distill import distill_config_for
from infae_kit.errors import ParameterError
from infae_kit.experiments.validation_protocols import (
    JUDGED_BY,
    compare_protocols,
    distill_protocol_run,
    distill_protocol_table,
    grid_curve,
    protocol_summary,
    protocol_table,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sparse_data():
    return load_dataset("synthetic", n_users=300, n_items=150, mean_interactions=5, seed=4)


class _Oracle:
    """Scores ``quality`` · (the user's validation and test items) + noise: the larger ``quality``, the better on
    both splits, so validation ranks the grid exactly as test does."""

    needs_user_index = True

    def __init__(self, data, quality: float):
        self.truth = (data.val + data.test).toarray()
        self.quality = quality

    def fit(self, X):
        self.noise = 10 * np.random.default_rng(0).random(self.truth.shape)
        return self

    def predict(self, context, users):
        return self.quality * self.truth[users] + self.noise[users]


def test_grid_curve_picks_ranks_and_bootstraps(sparse_data):
    grid = (0.0, 1.0, 6.0, 3.0)
    curve = grid_curve(sparse_data, lambda q: _Oracle(sparse_data, q), grid, n_bootstrap=200)
    assert [row["value"] for row in curve["rows"]] == list(grid)
    assert curve["picked"] == 6.0 and curve["picked_test"] == curve["rows"][2]["test"]
    assert curve["hindsight"]["HR@100"] == {"value": 6.0, "test": curve["rows"][2]["test"]["HR@100"]}
    assert curve["regret"] == {m: 0.0 for m in JUDGED_BY}
    assert curve["spearman"]["HR@100"] == pytest.approx(1.0)
    shares = {p["value"]: p["share"] for p in curve["bootstrap"]["pick_share"]}
    assert shares[6.0] == 1.0 and sum(shares.values()) == pytest.approx(1.0)
    assert curve["bootstrap"]["expected_test"]["HR@100"] == pytest.approx(curve["picked_test"]["HR@100"])
    n_with_val = int((np.diff(sparse_data.val.indptr) > 0).sum())
    assert curve["users_with_val_targets"] == n_with_val < sparse_data.n_users
    json.dumps(curve)  # JSON-ready


def test_grid_curve_on_a_real_model_and_a_support(sparse_data):
    from infae_kit.models.baselines import EASE

    curve = grid_curve(sparse_data, lambda lam: EASE(lam), (1.0, 100.0, 10_000.0), n_bootstrap=100)
    by_value = {row["value"]: row for row in curve["rows"]}
    best_val = max(by_value, key=lambda v: by_value[v]["val"]["HR@100"])
    assert curve["picked"] == best_val
    for m in JUDGED_BY:
        assert curve["hindsight"][m]["test"] == max(row["test"][m] for row in curve["rows"])
        assert curve["regret"][m] >= 0
        assert curve["spearman"][m] is None or -1 <= curve["spearman"][m] <= 1
    shares = [p["share"] for p in curve["bootstrap"]["pick_share"]]
    assert sum(shares) == pytest.approx(1.0) and len(shares) == 3
    lo, hi = (f(row["test"]["HR@100"] for row in curve["rows"]) for f in (min, max))
    assert lo <= curve["bootstrap"]["expected_test"]["HR@100"] <= hi
    # fitted on other rows: a support of 20 users
    support = sp.csr_matrix(sparse_data.train[:20])
    on_support = grid_curve(sparse_data, lambda lam: EASE(lam), (1.0, 100.0), n_bootstrap=0, train=support)
    assert "bootstrap" not in on_support and on_support["rows"][0]["test"] != curve["rows"][0]["test"]


def test_compare_protocols_reports_both_protocols(sparse_data):
    report = compare_protocols(sparse_data, models=("ease",), holdout_seeds=(1, 2), grids={"ease": (10.0, 1000.0)},
                               n_bootstrap=50)
    moved = report["moved"]
    assert moved["1"] == moved["2"] == with_validation_holdout(sparse_data, seed=1).holdout.nnz > 0
    assert report["users_with_val_targets"]["paper"] + moved["1"] == report["users_with_val_targets"]["1"]
    entry = report["models"]["ease"]
    assert entry["grid"] == [10.0, 1000.0] and [r["seed"] for r in entry["holdout"]] == [1, 2]
    paper_test = {row["value"]: row["test"] for row in entry["paper"]["rows"]}
    for run in entry["holdout"]:
        assert not run["identical_to_paper"] and run["refit_test"] == paper_test[run["curve"]["picked"]]
        assert run["curve"]["users_with_val_targets"] > entry["paper"]["users_with_val_targets"]
    rows = protocol_summary(report)
    assert [r["protocol"] for r in rows] == ["paper", "holdout", "holdout, refit"]
    assert rows[1]["picked"] == [r["curve"]["picked"] for r in entry["holdout"]]
    assert rows[1]["test"]["HR@100"] == pytest.approx(np.mean([r["curve"]["picked_test"]["HR@100"]
                                                              for r in entry["holdout"]]))
    table = protocol_table(report)
    assert table.count("\n") == 2 + 3 and "| ease | holdout, refit |" in table
    json.dumps(report)
    # a holdout that moves nothing is the paper protocol itself
    same = compare_protocols(sparse_data, models=("ease",), holdout_seeds=(1,), min_train_items=10_000,
                             grids={"ease": (10.0,)}, n_bootstrap=0)
    run = same["models"]["ease"]["holdout"][0]
    assert run["identical_to_paper"] and run["curve"] is same["models"]["ease"]["paper"]


def test_bad_arguments(sparse_data):
    with pytest.raises(ParameterError, match="models must be"):
        compare_protocols(sparse_data, models=("mf",))
    with pytest.raises(ParameterError, match="holdout_seeds"):
        compare_protocols(sparse_data, holdout_seeds=())
    with pytest.raises(ParameterError, match="already has a validation holdout"):
        compare_protocols(with_validation_holdout(sparse_data))
    with pytest.raises(ParameterError, match="grid is empty"):
        grid_curve(sparse_data, lambda v: None, ())
    with pytest.raises(ParameterError, match="n_bootstrap"):
        grid_curve(sparse_data, lambda v: None, (1.0,), n_bootstrap=-1)


def test_distill_protocol_run_and_its_cache(sparse_data, tmp_path):
    config = distill_config_for("synthetic", "ci", budget=10, gamma=10, steps=4)
    run = distill_protocol_run(sparse_data, config, cache_dir=tmp_path, n_bootstrap=20)
    assert not run["from_cache"] and run["validations"][0]["step"] == 0
    assert run["best_step"] in [v["step"] for v in run["validations"]]
    later = [v["HR@100"] for v in run["validations"] if v["step"] > 0]
    assert run["val_range"] == pytest.approx(max(later) - min(later))
    assert [row["value"] for row in run["lambda_curve"]["rows"]] == list(config.val_lambdas)
    again = distill_protocol_run(sparse_data, config, cache_dir=tmp_path, n_bootstrap=20)
    assert again["from_cache"] and again["test"] == run["test"]
    table = distill_protocol_table([{"protocol": "paper", **run}])
    assert f"| paper | 10 | {config.seed} | {run['best_step']} |" in table
    json.dumps(run)


def test_benchmark_script_writes_its_record(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_validation_protocol",
                                                  ROOT / "benchmarks" / "bench_validation_protocol.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--datasets", "synthetic", "--models", "ease", "--grid", "ease", "10,1000", "--holdout-seeds",
                       "3", "--bootstrap", "20", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "validation_protocol-synthetic.json").read_text())
    assert record["dataset"] == "synthetic" and record["holdout_seeds"] == [3] and record["distill"] == []
    assert set(record["models"]) == {"ease"} and record["models"]["ease"]["grid"] == [10.0, 1000.0]
    assert record["peak_rss_bytes"] > 0 and "--grid ease 10,1000" in record["command"]
    assert record["table"] == protocol_table(record) and record["distill_table"] == ""
    for bad in ("100:1:2:3", "mu"):
        with pytest.raises(SystemExit):
            bench.main(["--datasets", "synthetic", "--distill-runs", bad, "--out", str(tmp_path)])
