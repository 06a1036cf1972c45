"""Which validation protocol picks hyper-parameters better: the paper's split, or the validation holdout.

For one model and its grid, under one protocol (:func:`grid_curve`): every grid value's model is fitted on that
protocol's train split and evaluated on validation (train as context) and on test (train + validation as
context; the same pass under both protocols, :mod:`infae_kit.data.holdout`). From the curves:

* the value picked on validation HR@100 (:func:`~infae_kit.evaluation.selection.select_on_validation`) and
  its test metrics;
* the best value in hindsight (largest test HR@100, and largest test NDCG@10) and the regret of the pick;
* how well validation ranks the grid: Spearman's ρ of validation HR@100 against test HR@100 and NDCG@10 over the
  grid values (``None`` when either is constant);
* how stable the pick is: the users are resampled with replacement ``n_bootstrap`` times, the value picked on
  each resample's mean validation HR@100 is counted, and the test metrics expected from that pick are reported.

:func:`compare_protocols` runs both protocols (the holdout with several seeds) for ∞-AE and EASE on their
paper grids; under the holdout it also reports the *refit* test metrics: the model at the holdout's pick fitted
on the paper protocol's train split (the paper curve's test value at that pick). ``benchmarks/bench_validation_protocol.py``
writes it to ``benchmarks/results/validation_protocol-<dataset>.json``; :func:`protocol_table` lays it out.

Example:
    >>> report = compare_protocols(load_dataset("magazine"), holdout_seeds=(42, 0))    # doctest: +SKIP
    >>> print(protocol_table(report))                                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

from infae_kit.checks import MatrixLike, check_seed, is_int
from infae_kit.data.dataset import RecDataset
from infae_kit.data.holdout import DEFAULT_MIN_TRAIN_ITEMS, users_without_validation, with_validation_holdout
from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import evaluate_model
from infae_kit.evaluation.results import format_metric, markdown_table
from infae_kit.evaluation.selection import DEFAULT_SELECT_BY, select_on_validation
from infae_kit.models.baselines import EASE, EASE_LAMBDA_GRID
from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID, InfiniteAE

__all__ = [
    "PROTOCOL_MODELS",
    "JUDGED_BY",
    "grid_curve",
    "compare_protocols",
    "distill_protocol_run",
    "distill_protocol_table",
    "protocol_summary",
    "protocol_table",
]

PROTOCOL_MODELS: dict[str, tuple[Callable[[float], Any], tuple[float, ...]]] = {
    "infae": (lambda lam: InfiniteAE(lam), tuple(PAPER_LAMBDA_GRID)),
    "ease": (lambda lam: EASE(lam), tuple(EASE_LAMBDA_GRID)),
}
"""Model name → (λ → unfitted model, the paper's λ grid) of the models :func:`compare_protocols` compares on."""
JUDGED_BY = ("HR@100", "NDCG@10")
"""Test metrics a pick is judged by: the selection metric itself, and the paper's headline metric."""


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ of two equal-length sequences; ``None`` when either is constant or shorter than 3."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rho = float(spearmanr(x, y).statistic)
    return rho if math.isfinite(rho) else None


def grid_curve(
    data: RecDataset,
    make_model: Callable[[Any], Any],
    grid: Sequence[float],
    *,
    select_by: str = DEFAULT_SELECT_BY,
    n_bootstrap: int = 1000,
    bootstrap_seed: int = 0,
    train: MatrixLike | None = None,
) -> dict[str, Any]:
    """Validation and test metrics of a model over its grid on ``data``, and how well validation picks.

    Args:
        data: the dataset under one protocol (its ``train`` is what every model is fitted on).
        make_model: grid value → unfitted model with ``fit(X)`` and ``predict(X_context)``.
        grid: the values, in the order ties are broken (the first wins).
        select_by: the validation metric that picks (the paper's code: HR@100).
        n_bootstrap: user resamples of the pick-stability estimate (0: none).
        bootstrap_seed: their seed.
        train: ``(n_rows, n_items)`` rows to fit every model on instead of ``data.train`` (a DISTILL-CF support).

    Returns:
        JSON-ready dict: ``rows`` (per value: ``value``, ``val`` and ``test`` metrics), ``picked`` and
        ``picked_test``, ``hindsight`` and ``regret`` (per metric of :data:`JUDGED_BY`), ``spearman`` (ρ of
        validation ``select_by`` against each test metric of :data:`JUDGED_BY`), ``users_with_val_targets``,
        ``bootstrap`` (``pick_share`` per value, ``expected_test`` per metric, ``n``) and ``seconds``.

    Raises:
        ParameterError: an empty grid, a negative ``n_bootstrap``, a bad seed.
    """
    grid = [float(v) for v in grid]
    if not grid:
        raise ParameterError("grid is empty: give at least one value to compare.")
    if not is_int(n_bootstrap) or n_bootstrap < 0:
        raise ParameterError(f"n_bootstrap must be an integer ≥ 0, got {n_bootstrap!r}.")
    bootstrap_seed = check_seed(bootstrap_seed, "bootstrap_seed")
    t0 = time.perf_counter()
    val, test, val_per_user = {}, {}, []
    for value in grid:
        model = make_model(value).fit(data.train if train is None else train)
        val_result = evaluate_model(model, data, "val")
        val[value], test[value] = val_result.metrics, evaluate_model(model, data, "test").metrics
        if select_by in val_result.per_user:
            val_per_user.append(val_result.per_user[select_by])
    picked = select_on_validation(grid, lambda v: (val[v], None), select_by=select_by).best_value
    hindsight = {m: max(grid, key=lambda v: test[v][m]) for m in JUDGED_BY}  # first of the best, as the pick
    curve: dict[str, Any] = {
        "rows": [{"value": v, "val": val[v], "test": test[v]} for v in grid],
        "select_by": select_by,
        "picked": picked,
        "picked_test": test[picked],
        "hindsight": {m: {"value": hindsight[m], "test": test[hindsight[m]][m]} for m in JUDGED_BY},
        "regret": {m: test[hindsight[m]][m] - test[picked][m] for m in JUDGED_BY},
        "spearman": {m: _spearman([val[v][select_by] for v in grid], [test[v][m] for v in grid]) for m in JUDGED_BY},
        "users_with_val_targets": int(data.n_users - users_without_validation(data).size),
    }
    if n_bootstrap and len(val_per_user) == len(grid):
        per_user = np.stack(val_per_user)  # (n_grid, n_users) fractions
        n_users = per_user.shape[1]
        rng = np.random.default_rng(bootstrap_seed)
        picks = np.empty(n_bootstrap, dtype=np.int64)
        for start in range(0, n_bootstrap, 100):
            stop = min(start + 100, n_bootstrap)
            counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=stop - start)
            picks[start:stop] = np.argmax(counts @ per_user.T, axis=1)  # first of the best, as the pick
        share = np.bincount(picks, minlength=len(grid)) / n_bootstrap
        curve["bootstrap"] = {
            "n": int(n_bootstrap), "seed": bootstrap_seed,
            "pick_share": [{"value": v, "share": float(s)} for v, s in zip(grid, share)],
            "expected_test": {m: float(sum(s * test[v][m] for v, s in zip(grid, share))) for m in JUDGED_BY},
        }
    curve["seconds"] = time.perf_counter() - t0
    return curve


def compare_protocols(
    data: RecDataset,
    *,
    models: Sequence[str] = tuple(PROTOCOL_MODELS),
    holdout_seeds: Sequence[int] = (42,),
    min_train_items: int = DEFAULT_MIN_TRAIN_ITEMS,
    grids: Mapping[str, Sequence[float]] | None = None,
    n_bootstrap: int = 1000,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    """:func:`grid_curve` of each model under the paper's protocol and under the holdout of each seed.

    Args:
        data: the dataset under the paper's protocol.
        models: names from :data:`PROTOCOL_MODELS`.
        holdout_seeds: seeds of :func:`~infae_kit.data.holdout.with_validation_holdout` (one curve per seed).
        min_train_items: the holdout's ``min_train_items``.
        grids: per model, a grid to use instead of its paper grid.
        n_bootstrap, bootstrap_seed: the pick-stability estimate of :func:`grid_curve`.

    Returns:
        JSON-ready dict: ``dataset``, ``n_users``, ``min_train_items``, ``users_with_val_targets`` (``paper`` and
        per holdout seed), ``moved`` (items moved per seed), and ``models``: per model ``grid``, ``paper`` (a
        curve) and ``holdout`` (a list of ``{seed, curve, refit_test}``; ``refit_test`` is the paper curve's
        test metrics at the holdout's pick). When a holdout moves nothing its curve is the paper's and
        ``identical_to_paper`` is true.

    Raises:
        ParameterError: an unknown model, no holdout seed, a dataset that already has a holdout.
    """
    unknown = [m for m in models if m not in PROTOCOL_MODELS]
    if unknown or not models:
        raise ParameterError(f"models must be names from {sorted(PROTOCOL_MODELS)}, got {list(models)!r}.")
    if not holdout_seeds:
        raise ParameterError("holdout_seeds is empty: give at least one seed of the holdout draw.")
    if data.holdout is not None:
        raise ParameterError("compare_protocols takes the paper-protocol dataset (load_dataset(name)), which it "
                             "holds out itself; this one already has a validation holdout.")
    held = {int(s): with_validation_holdout(data, seed=s, min_train_items=min_train_items) for s in holdout_seeds}
    report: dict[str, Any] = {
        "dataset": data.name, "n_users": data.n_users, "n_items": data.n_items, "min_train_items": int(min_train_items),
        "users_with_val_targets": {"paper": int(data.n_users - users_without_validation(data).size),
                                   **{str(s): int(d.n_users - users_without_validation(d).size)
                                      for s, d in held.items()}},
        "moved": {str(s): int(d.holdout.nnz) for s, d in held.items()},
        "models": {},
    }
    for name in models:
        make_model, grid = PROTOCOL_MODELS[name]
        grid = tuple(float(v) for v in (grids or {}).get(name, grid))
        paper = grid_curve(data, make_model, grid, n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed)
        paper_test = {row["value"]: row["test"] for row in paper["rows"]}
        runs = []
        for seed, dataset in held.items():
            same = dataset.holdout.nnz == 0
            curve = paper if same else grid_curve(dataset, make_model, grid, n_bootstrap=n_bootstrap,
                                                  bootstrap_seed=bootstrap_seed)
            runs.append({"seed": seed, "identical_to_paper": same, "curve": curve,
                         "refit_test": paper_test[curve["picked"]]})
        report["models"][name] = {"grid": list(grid), "paper": paper, "holdout": runs}
    return report


def distill_protocol_run(data: RecDataset, config: Any, *, cache_dir: str | os.PathLike | None = None,
                         n_bootstrap: int = 1000, bootstrap_seed: int = 0) -> dict[str, Any]:
    """DISTILL-CF on ``data`` under its protocol: how its validations spread, and what the support it keeps gives.

    Args:
        data: the dataset under one protocol (the support is distilled from its ``train``; its validation picks
            the inner λ at every validation and the best step).
        config: a :class:`~infae_kit.distill.DistillConfig`.
        cache_dir: read and write the support through :func:`~infae_kit.distill.distill_cached` there (``None``:
            distil afresh, nothing written).
        n_bootstrap, bootstrap_seed: the pick-stability estimate of the λ curve.

    Returns:
        JSON-ready dict: ``config``, ``from_cache``, ``best_step``, ``best_lambda``, ``validations`` (per validated
        step: ``step``, ``lambda``, validation HR@100), ``val_range`` (max − min validation HR@100 over the
        validations after step 0), ``test`` (∞-AE at ``best_lambda`` on the kept support: test metrics),
        ``lambda_curve`` (:func:`grid_curve` of ∞-AE on the kept support over ``config.val_lambdas``) and
        ``seconds`` (the distillation's, from its record).
    """
    from infae_kit.distill import distill, distill_cached

    if cache_dir is None:
        result, from_cache = distill(data, config, progress=False), False
    else:
        result, from_cache = distill_cached(data, config, cache_dir, progress=False)
    history = result.history
    validations = [{"step": int(e["step"]), "lambda": float(e["lambda"]), "HR@100": float(e["metrics"]["HR@100"])}
                   for e in history["evaluations"]]
    later = [v["HR@100"] for v in validations if v["step"] > 0]
    support = result.best_support
    test = evaluate_model(InfiniteAE(result.best_lambda).fit(support), data, "test").metrics
    return {
        "config": config.to_dict(), "from_cache": bool(from_cache), "best_step": history["best_step"],
        "best_lambda": float(result.best_lambda), "validations": validations,
        "val_range": float(max(later) - min(later)) if later else None, "test": test,
        "lambda_curve": grid_curve(data, lambda lam: InfiniteAE(lam), config.val_lambdas, train=support,
                                   n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed),
        "seconds": float(result.timings.get("total", float("nan"))),
    }


def protocol_summary(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (model, protocol) of a :func:`compare_protocols` report (holdout seeds averaged).

    Returns:
        Rows with ``model``, ``protocol`` (``paper``, ``holdout``, ``holdout, refit``), ``picked`` (the values
        picked, one per seed), ``test`` (mean test metrics of :data:`JUDGED_BY` at the pick), ``hindsight``
        (the best test value of each metric over the grid: the paper protocol's, or the mean over seeds),
        ``spearman`` (mean ρ per metric, ``None`` when undefined for every seed) and ``pick_share`` (the
        bootstrap share of the most picked value, mean over seeds).
    """
    rows = []

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    for name, entry in report["models"].items():
        paper, runs = entry["paper"], entry["holdout"]
        curves = {"paper": [paper], "holdout": [r["curve"] for r in runs]}
        for protocol, cs in curves.items():
            rows.append({
                "model": name, "protocol": protocol, "picked": [c["picked"] for c in cs],
                "test": {m: mean([c["picked_test"][m] for c in cs]) for m in JUDGED_BY},
                "hindsight": {m: mean([c["hindsight"][m]["test"] for c in cs]) for m in JUDGED_BY},
                "spearman": {m: mean([c["spearman"][m] for c in cs]) for m in JUDGED_BY},
                "pick_share": mean([max(p["share"] for p in c["bootstrap"]["pick_share"]) if "bootstrap" in c
                                    else None for c in cs]),
            })
        rows.append({
            "model": name, "protocol": "holdout, refit", "picked": [r["curve"]["picked"] for r in runs],
            "test": {m: mean([r["refit_test"][m] for r in runs]) for m in JUDGED_BY},
            "hindsight": {m: paper["hindsight"][m]["test"] for m in JUDGED_BY},
            "spearman": {m: None for m in JUDGED_BY}, "pick_share": None,
        })
    return rows


def protocol_table(report: Mapping[str, Any]) -> str:
    """A Markdown table of :func:`protocol_summary`: picks, test metrics at the pick against the best in
    hindsight, Spearman's ρ of validation against test over the grid, and the bootstrap pick share."""
    def cell(value, metric=None):
        if value is None:
            return "—"
        return format_metric(metric, value) if metric else f"{value:+.2f}"

    header = ["model", "protocol", "λ picked"]
    for m in JUDGED_BY:
        header += [f"test {m}", f"best {m}", f"ρ val/test {m}"]
    header.append("bootstrap pick share")
    lines = []
    for row in protocol_summary(report):
        picked = ", ".join(f"{v:g}" for v in row["picked"])
        cells = [row["model"], row["protocol"], picked]
        for m in JUDGED_BY:
            cells += [cell(row["test"][m], m), cell(row["hindsight"][m], m), cell(row["spearman"][m])]
        cells.append("—" if row["pick_share"] is None else f"{100 * row['pick_share']:.0f} %")
        lines.append(cells)
    return markdown_table(header, lines)


def distill_protocol_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`distill_protocol_run` results, each with a ``protocol`` key added: μ, the
    distillation seed, the best step, the validations' HR@100 range, the kept support's λ and test metrics, and
    its λ curve's Spearman ρ."""
    lines = []
    for run in runs:
        curve = run["lambda_curve"]
        lines.append([run["protocol"], run["config"]["budget"], run["config"]["seed"], run["best_step"],
                      len(run["validations"]),
                      "—" if run["val_range"] is None else f"{run['val_range']:.2f}",
                      f"{run['best_lambda']:g}"]
                     + [format_metric(m, run["test"][m]) for m in JUDGED_BY]
                     + ["—" if curve["spearman"][m] is None else f"{curve['spearman'][m]:+.2f}" for m in JUDGED_BY])
    header = ["protocol", "μ", "seed", "best step", "validations", "val HR@100 range", "λ"] + [
        f"test {m}" for m in JUDGED_BY] + [f"ρ val/test {m} (λ grid)" for m in JUDGED_BY]
    return markdown_table(header, lines)
