"""Hyper-parameter selection on validation, then test: the one loop every model of the kit is tuned with.

* :func:`select_on_validation` — the loop itself: validate each grid value, keep the best by one validation
  metric (ties go to the first value of the grid). The caller says how a value is validated, so a model with
  exact shortcuts keeps them: ∞-AE (:func:`infae_kit.models.infinite_ae.tune_and_evaluate_infinite_ae`) computes
  its kernel once and scores validation with ``K α = X − λ'α``, EASE refits per λ, and "fit on a support, pick
  λ on validation" (DISTILL-CF's validation) is a grid over λ with the support's kernel computed once.
* :func:`tune_and_evaluate` — that loop for any model with ``fit``/``predict``, then the test pass.
* :class:`TuningReport` — what every tuning returns, with the same field names everywhere (``best_value``,
  ``val_metrics``, ``test_metrics``, ``timings_s``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import DEFAULT_BATCH_USERS, DEFAULT_KS, EvaluationResult, evaluate_model
from infae_kit.io_utils import progress_bar

__all__ = ["DEFAULT_SELECT_BY", "Selection", "TuningReport", "select_on_validation", "tune_and_evaluate"]

DEFAULT_SELECT_BY = "HR@100"
"""The validation metric the paper's code selects every hyper-parameter by."""


@dataclass
class Selection:
    """Outcome of :func:`select_on_validation`.

    Attributes:
        best_value: the grid value with the highest validation ``select_by`` (the first one among ties).
        val_metrics: ``{value: {metric: value}}`` for every grid value, in grid order.
        best_state: what the validation callable returned with the best value's metrics (e.g. the fitted
            model, or ∞-AE's dual weights), so the caller need not refit.
        select_by: the metric that decided.
    """

    best_value: Any
    val_metrics: dict[Any, dict[str, float]]
    best_state: Any = field(default=None, repr=False)
    select_by: str = DEFAULT_SELECT_BY


@dataclass
class TuningReport:
    """Outcome of a tuning: a hyper-parameter picked on validation, then the test pass.

    Attributes:
        best_value: the value picked on validation (λ for ∞-AE and EASE).
        val_metrics: ``{value: {metric: value}}`` validation metrics for every value of the grid.
        test_metrics: ``{metric: value}`` test metrics at ``best_value`` (train + validation as context);
            empty when no test pass ran.
        test: the full :class:`~infae_kit.evaluation.protocol.EvaluationResult` of the test pass (per-user
            values, top-k lists), or ``None``.
        model: the fitted model at ``best_value``.
        timings_s: seconds per stage (``total`` included).
        select_by: the validation metric that picked ``best_value``.
    """

    best_value: Any
    val_metrics: dict[Any, dict[str, float]]
    test_metrics: dict[str, float]
    test: EvaluationResult | None = field(repr=False)
    model: Any = field(repr=False)
    timings_s: dict[str, float] = field(default_factory=dict)
    select_by: str = DEFAULT_SELECT_BY

    @property
    def best_val_metrics(self) -> dict[str, float]:
        """Validation metrics at ``best_value``."""
        return self.val_metrics[self.best_value]


def select_on_validation(
    grid: Sequence[Hashable],
    validate: Callable[[Any], tuple[dict[str, float], Any]],
    *,
    select_by: str = DEFAULT_SELECT_BY,
    progress: bool = False,
    desc: str = "grid",
) -> Selection:
    """Validate every value of ``grid`` and keep the best by ``select_by``.

    Args:
        grid: the candidate values, in order (hashable: they key ``val_metrics``).
        validate: ``validate(value) -> (metrics, state)``: the validation metrics of the model with that value
            and whatever the caller wants back for the winner (a fitted model, dual weights, ``None``).
        select_by: the validation metric to maximise; a value wins only when strictly better, so ties go to
            the first value of the grid.
        progress: a tqdm bar over the grid.
        desc: the bar's label.

    Returns:
        :class:`Selection`.

    Raises:
        ParameterError: an empty grid, or ``select_by`` not among the metrics ``validate`` returns.
    """
    values = list(grid)
    if not values:
        raise ParameterError("the grid is empty: give at least one value to select from.")
    val: dict[Any, dict[str, float]] = {}
    best, best_state = None, None
    bar = progress_bar(values, desc=desc, enabled=progress)
    for value in bar:
        metrics, state = validate(value)
        if select_by not in metrics:
            raise ParameterError(f"select_by={select_by!r} is not a computed metric: {sorted(metrics)}")
        val[value] = dict(metrics)
        if best is None or metrics[select_by] > val[best][select_by]:
            best, best_state = value, state
    bar.finish()
    return Selection(best, val, best_state, select_by)


def tune_and_evaluate(
    make_model: Callable[[Any], Any],
    grid: Sequence[Hashable],
    data: Any,
    *,
    select_by: str = DEFAULT_SELECT_BY,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = DEFAULT_BATCH_USERS,
    progress: bool = False,
    desc: str = "grid",
    train: Any = None,
) -> TuningReport:
    """Fit ``make_model(value)`` on train for each grid value, pick the best by validation ``select_by``
    (:func:`select_on_validation`), and evaluate that model on test (train + validation as context), as the
    paper does for every model.

    Args:
        make_model: maps a grid value to an unfitted model with ``fit(X)`` and ``predict(X_context)``.
        grid: hyper-parameter values (e.g. EASE's λ grid).
        data: a :class:`~infae_kit.data.RecDataset` (its users are the ones evaluated).
        select_by: validation metric to maximise.
        ks: cut-offs of HR/nDCG/PSP.
        batch_size: users scored at a time.
        progress: a progress bar over the grid.
        desc: the bar's label.
        train: ``(n_rows, n_items)`` rows to fit on instead of ``data.train`` (a sample of users, a distilled
            support, …); the evaluation still uses ``data``'s users, context and targets.

    Returns:
        :class:`TuningReport` (``timings_s``: ``grid``, ``test``, ``total``).

    Raises:
        ParameterError: an empty grid, ``train`` with another number of items, an unknown ``select_by``.
    """
    t0 = time.perf_counter()
    fit_rows = data.train if train is None else train
    if fit_rows.shape[1] != data.n_items:
        raise ParameterError(f"train has {fit_rows.shape[1]} items but the dataset has {data.n_items}")

    def validate(value):
        model = make_model(value).fit(fit_rows)
        return evaluate_model(model, data, "val", ks=ks, batch_size=batch_size).metrics, model

    chosen = select_on_validation(grid, validate, select_by=select_by, progress=progress, desc=desc)
    t1 = time.perf_counter()
    test = evaluate_model(chosen.best_state, data, "test", ks=ks, batch_size=batch_size, keep_top_k=True)
    t2 = time.perf_counter()
    return TuningReport(chosen.best_value, chosen.val_metrics, test.metrics, test, chosen.best_state,
                        {"grid": t1 - t0, "test": t2 - t1, "total": t2 - t0}, select_by)
