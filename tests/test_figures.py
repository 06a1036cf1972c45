"""The notebooks' figures and tables, drawn by the kit (one call each): what they draw and the numbers they return."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from infae_kit.data import load_dataset  # noqa: E402
from infae_kit.errors import ParameterError  # noqa: E402
from infae_kit.evaluation.protocol import evaluate_model, hit_rate_by_user_bucket  # noqa: E402
from infae_kit.evaluation.results import format_metric, markdown_table, metrics_table  # noqa: E402
from infae_kit.models.baselines import PopRec  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", n_users=150, n_items=120, mean_interactions=12, seed=2)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_markdown_tables():
    assert format_metric("AUC", 0.912345) == "0.9123" and format_metric("HR@10", 31.456) == "31.46"
    assert format_metric("HR@10", None) == "—"
    assert markdown_table(["a", "b"], [[1, 2.5]]) == "| a | b |\n|---|---:|\n| 1 | 2.5 |\n"
    with pytest.raises(ParameterError, match="2 cells"):
        markdown_table(["a", "b", "c"], [[1, 2]])
    table = metrics_table({"∞-AE": {"AUC": 0.9, "HR@10": 30.0}, "EASE": {"AUC": 0.8}}, ["AUC", "HR@10"],
                          reference={"∞-AE": {"HR@10": 31.5}})
    assert table.splitlines()[2:] == ["| ∞-AE | 0.9000 | 30.00 |", "| ∞-AE (paper) | — | 31.50 |",
                                      "| EASE | 0.8000 | — |"]


def test_lambda_sweep_and_coldstart(data):
    from infae_kit.evaluation.plotting import plot_coldstart, plot_lambda_sweep

    fig = plot_lambda_sweep({1.0: {"HR@100": 1, "AUC": 0.5}, 5.0: {"HR@100": 2, "AUC": 0.6}}, 5.0,
                            metrics=("HR@100", "AUC"), title="t")
    assert [ax.get_title() for ax in fig.axes] == ["validation HR@100", "validation AUC"]
    result = evaluate_model(PopRec().fit(data.train), data, "test", keep_top_k=True)
    fig, coldness = plot_coldstart({"PopRec": result}, data, n_buckets=4)
    _, expected = hit_rate_by_user_bucket(result.per_user["HR@100"], data.train, 4)
    assert coldness["users"]["PopRec"] == pytest.approx(expected.tolist())
    assert len(coldness["items"]["PopRec"]) == 4 and len(fig.axes[0].lines) == 1


def test_ntk_figures():
    from infae_kit.models.ntk import ntk_matrix
    from infae_kit.models.ntk_figures import ntk_of_counts, plot_depth_metrics, plot_width_convergence

    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 1]], dtype=np.float32))
    theta = ntk_of_counts(4)(np.array([2.0], np.float32), np.array([3.0], np.float32), np.array([1.0], np.float32))
    assert float(theta[0]) == pytest.approx(ntk_matrix(x)[0, 1], rel=1e-5)
    errors = {1: np.array([[0.4, 0.5], [0.2, 0.25], [0.1, 0.12]])}
    fig, slopes = plot_width_convergence([64, 256, 1024], errors)
    assert slopes[1] == pytest.approx(np.polyfit(np.log([64, 256, 1024]), np.log(errors[1].mean(axis=1)), 1)[0])
    table = pd.DataFrame({"HR@10": [10.0, 12.0], "AUC": [0.9, 0.8]}, index=["depth 1", "depth 2"])
    fig = plot_depth_metrics(table, ["HR@10", "AUC"])
    assert [list(line.get_ydata()) for line in fig.axes[0].lines] == [[10 / 12, 1.0], [1.0, 0.8 / 0.9]]


def test_distill_figures(data):
    from infae_kit.distill import DistillConfig
    from infae_kit.distill.figures import (gumbel_row_profile, matrix_profile, plot_distill_training,
                                           plot_distilled_vs_real)

    row = jax.numpy.asarray(data.train[:1].toarray())
    fig, grid = gumbel_row_profile(row, jax.random.PRNGKey(0), (1, 10), (0.3, 10.0))
    assert set(grid) == {"gamma=1,tau=0.3", "gamma=10,tau=0.3", "gamma=1,tau=10", "gamma=10,tau=10"}
    assert grid["gamma=10,tau=10"]["row_sum"] == pytest.approx(10.0, rel=1e-4)  # nothing clipped at τ = 10
    assert grid["gamma=1,tau=0.3"]["hard_items"] == 1
    history = {"loss": [3.0, 2.0], "best_step": 2,
               "evaluations": [{"step": 0, "lambda": 1.0, "metrics": {"HR@100": 5.0, "NDCG@10": 1.0}},
                               {"step": 2, "lambda": 5.0, "metrics": {"HR@100": 6.0, "NDCG@10": 1.5}}]}
    fig = plot_distill_training(history, DistillConfig(budget=5))
    assert len(fig.axes) == 3
    fig, profile = plot_distilled_vs_real({"real": data.train, "first users": data.train[:10]})
    assert profile["real"] == matrix_profile(data.train)
    assert profile["real"]["mean_row_sum"] == pytest.approx(data.train.nnz / data.n_users)


def test_privacy_figures_and_tables(data):
    from infae_kit.experiments.privacy import SampleRelease
    from infae_kit.experiments.privacy_figures import plot_attack_curves, recorded_runs_table, releases_table

    rows = [{"release": "user-rns", "attack": "matching", "noise": n, "percent": p, "targets": 10}
            for n, p in ((0.0, 90.0), (0.05, 40.0))]
    rows += [{"release": "DISTILL-CF", "attack": "prediction", "noise": n, "percent": p, "targets": 10,
              "recovered_percent": r} for n, p, r in ((0.0, 1.0, 20.0), (0.05, 0.0, 5.0))]
    fig = plot_attack_curves(rows, "noise", "noise (%)", "t")
    assert [list(line.get_xdata()) for line in fig.axes[0].lines] == [[0.0, 5.0], [0.0, 5.0]]
    assert list(fig.axes[1].lines[0].get_ydata()) == [20.0, 5.0]
    release = SampleRelease("user-rns", data.train[:5], np.arange(5), np.arange(3))
    table = releases_table([release], data.train, {})
    assert f"| user-rns | matching | 5 | {data.train[:5].nnz:,} | 3 |" in table
    record = {"dataset": "d", "fig8": rows, "headline": {
        "distillation_recovered_percent": 20.0, "control_recovered_percent": 4.0, "sampling_percent_at_max_noise": 40.0,
        "sampling_strategy": "user-rns", "max_noise_percent": 5.0}}
    assert recorded_runs_table([record]).splitlines()[2] == "| d | 90.0 | 1.0 | — | 20.0 / 4.0 | 40.0 (user-rns, 5 %) |"


def test_continual_figures_and_tables():
    from infae_kit.experiments.continual import split_into_periods
    from infae_kit.experiments.continual_figures import (averages_table, memories_table, periods_table,
                                                         plot_continual_averages, plot_continual_per_period)
    from infae_kit.experiments.continual_models import ContinualResult

    rows = [{"strategy": s, "period": t, "n_users": 3, "HR@10": v + t} for s, v in (("individual", 1.0), ("ader", 2.0))
            for t in range(3)]
    result = ContinualResult(rows=rows, strategies=["individual", "ader"],
                             exemplars=[{"period": 1, "lambda": 0.25, "n_items_before": 5, "n_items_now": 7}])
    fig = plot_continual_averages(result, [1, 2], ["HR@10"])
    assert [p.get_height() for p in fig.axes[0].patches] == [2.5, 3.5]
    fig = plot_continual_per_period(result, ["HR@10"])
    assert list(fig.axes[0].lines[1].get_ydata()) == [2.0, 3.0, 4.0]
    assert averages_table(result.averages([1, 2]), ["HR@10"]).splitlines()[2:] == ["| Individual | 2.50 |",
                                                                                    "| ADER | 3.50 |"]
    assert memories_table(result).splitlines()[2] == "| 1 | 0.250 | 5 → 7 | — | — |"
    split = split_into_periods(load_dataset("synthetic", n_users=60, n_items=40, seed=1), 3)
    table, users = periods_table(split)
    assert len(table.splitlines()) == 2 + 3 and users["new_users"][0] == users["active_users"][0]
