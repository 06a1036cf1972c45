"""Experiment of notebook 08: landmark ∞-AE against the paper's user sampling and exact ∞-AE.

* :func:`quality_against_landmarks` — for each number of landmarks ``m`` and selection rule, landmark ∞-AE
  (every user a target) next to ∞-AE trained on ``m`` sampled users (the paper's Netflix protocol) and exact
  ∞-AE where it fits: every metric, λ picked on validation for each.

Its cost against the number of users is measured by :mod:`infae_kit.scale.cost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from infae_kit.errors import MemoryBudgetError, ParameterError

if TYPE_CHECKING:
    import numpy.typing as npt

    from infae_kit.data.dataset import RecDataset
    from infae_kit.models.infinite_ae import InfiniteAEReport

__all__ = ["quality_against_landmarks", "exact_fits", "MODELS"]

MODELS = ("landmark", "sampled", "exact")
"""Model names of the rows of :func:`quality_against_landmarks` and :func:`cost_against_users`."""


def exact_fits(n_users: int, n_items: int, dtype: npt.DTypeLike = "float32") -> bool:
    """Whether exact ∞-AE on ``n_users`` passes its memory guard on this machine."""
    from infae_kit.models.infinite_ae import check_memory

    try:
        check_memory(n_users, n_items, dtype)
    except MemoryBudgetError:
        return False
    return True


def quality_against_landmarks(data: RecDataset, landmarks: Sequence[int], selections: Sequence[str], *,
                              lambdas: Sequence[float] | None = None, block_users: int = 8192, seed: int = 42,
                              eval_users: int | None = None, sampled: bool = True,
                              exact_report: InfiniteAEReport | None = None, progress: bool = False) -> list[dict]:
    """Test and validation metrics of landmark ∞-AE (each rule) and of ∞-AE on ``m`` sampled users, per ``m``.

    Args:
      data: a :class:`~infae_kit.data.RecDataset`.
      landmarks: the ``m`` values (each capped at the number of users).
      selections: landmark rules (``"uniform"``, ``"kmeans++"``, ``"leverage"``).
      lambdas: λ grid (default: the paper's).
      block_users, seed, eval_users: as in :func:`~infae_kit.models.landmark.tune_and_evaluate_landmark`.
      sampled: also run ∞-AE on ``m`` sampled users (the paper's protocol) for each ``m``.
      exact_report: an :class:`~infae_kit.models.infinite_ae.InfiniteAEReport` of exact ∞-AE to add as a row.
      progress: progress bars.

    Returns:
      Rows ``{"model", "selection", "m", "n_users_trained", "best_lambda", "test", "val", "seconds"}``.
    """
    from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID, tune_and_evaluate_infinite_ae
    from infae_kit.models.landmark import tune_and_evaluate_landmark

    grid = tuple(lambdas) if lambdas else PAPER_LAMBDA_GRID
    ms = sorted({min(int(m), data.n_users) for m in landmarks})
    if not ms or ms[0] < 1:
        raise ParameterError(f"landmarks must be positive numbers of users, got {landmarks!r}")
    rows = []
    for m in ms:
        for rule in selections:
            rep = tune_and_evaluate_landmark(data, landmarks=m, selection=rule, lambdas=grid, block_users=block_users,
                                             seed=seed, eval_users=eval_users, progress=progress)
            rows.append({"model": "landmark", "selection": rule, "m": m, "n_users_trained": rep.n_users_trained,
                         "best_lambda": rep.best_value, "test": rep.test_metrics,
                         "val": rep.val_metrics[rep.best_value], "seconds": rep.timings_s["total"]})
        if sampled:
            rep = tune_and_evaluate_infinite_ae(data, lambdas=grid, user_budget=m, seed=seed, progress=progress)
            rows.append({"model": "sampled", "selection": "uniform", "m": m, "n_users_trained": m,
                         "best_lambda": rep.best_value, "test": rep.test_metrics,
                         "val": rep.val_metrics[rep.best_value], "seconds": rep.timings_s["total"]})
    if exact_report is not None:
        rows.append({"model": "exact", "selection": "all", "m": data.n_users, "n_users_trained": data.n_users,
                     "best_lambda": exact_report.best_value, "test": exact_report.test_metrics,
                     "val": exact_report.val_metrics[exact_report.best_value],
                     "seconds": exact_report.timings_s["total"]})
    return rows
