"""Hyper-parameter selection on validation, then test: the loop every model of the kit is tuned with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import DEFAULT_BATCH_USERS, DEFAULT_KS, EvaluationResult, evaluate_model
from infae_kit.io_utils import progress_bar


@dataclass
class TuningReport:
    """Outcome of :func:`tune_and_evaluate` (validation-picked hyper-parameter, then test)."""

    best_value: Any
    val_metrics: dict[Any, dict[str, float]]
    test_metrics: dict[str, float]
    test: EvaluationResult = field(repr=False)
    model: Any = field(repr=False)
    timings_s: dict[str, float] = field(default_factory=dict)
    select_by: str = "HR@100"


def tune_and_evaluate(
    make_model: Callable[[Any], Any],
    grid: Sequence[Any],
    data,
    *,
    select_by: str = "HR@100",
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = DEFAULT_BATCH_USERS,
    progress: bool = False,
    desc: str = "grid",
    train=None,
) -> TuningReport:
    """Fit ``make_model(value)`` on train for each grid value, pick the best by validation ``select_by``,
    and evaluate that model on test (train + validation as context), as the paper does for every model.

    Args:
      make_model: maps a grid value to an unfitted model with ``fit(csr)`` and ``predict(csr)``.
      grid: hyper-parameter values (e.g. EASE's λ grid).
      data: a RecDataset (its users are the ones evaluated).
      select_by: validation metric to maximise.
      train: rows to fit on instead of ``data.train`` (a sample of users, a distilled support, …); the
        evaluation still uses ``data``'s users, context and targets.
    """
    import time

    if not grid:
        raise ParameterError("grid is empty: give at least one value")
    t0 = time.perf_counter()
    val: dict[Any, dict[str, float]] = {}
    best, best_model = None, None
    fit_rows = data.train if train is None else train
    if fit_rows.shape[1] != data.n_items:
        raise ParameterError(f"train has {fit_rows.shape[1]} items but the dataset has {data.n_items}")
    bar = progress_bar(list(grid), desc=desc, enabled=progress)
    for value in bar:
        model = make_model(value).fit(fit_rows)
        val[value] = evaluate_model(model, data, "val", ks=ks, batch_size=batch_size).metrics
        if select_by not in val[value]:
            raise ParameterError(f"select_by={select_by!r} is not a computed metric: {sorted(val[value])}")
        if best is None or val[value][select_by] > val[best][select_by]:
            best, best_model = value, model
    bar.finish()
    t1 = time.perf_counter()
    test = evaluate_model(best_model, data, "test", ks=ks, batch_size=batch_size, keep_top_k=True)
    t2 = time.perf_counter()
    return TuningReport(best, val, test.metrics, test, best_model,
                        {"grid": t1 - t0, "test": t2 - t1, "total": t2 - t0}, select_by)
