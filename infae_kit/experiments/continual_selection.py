"""Continual learning with settings chosen on validation users, and the claim DISTILL-CF ≥ ADER ≥ Individual.

Each strategy of :func:`~infae_kit.experiments.continual_models.run_continual` has knobs that decide how much its
memory counts: ADER's λ_base (the weight of its distillation term), and for DISTILL-CF the weight of the
synthetic rows in MVAE's loss, whether they are soft or binary rows, and the summary's γ and τ. Comparing the
strategies at one hand-picked setting each favours whichever the setting happens to suit. Here every strategy
gets a grid, each of a step's evaluated users is assigned (seeded, the same for every strategy and setting) to
**validation** or **test**, each strategy's setting is the one with the best mean validation metric over the
compared periods, and the claim is checked on the test users only, with the paired per-period differences::

    >>> grid = continual_grid(ader_lambda_bases=[0.2, 0.8, 3.2], memory_weights=[1, 4, 16],
    ...                       supports=["soft", "topk"])                                      # doctest: +SKIP
    >>> sel = select_continual(split, grid, budget=25, mvae=..., distill_config=..., cache_dir="runs")  # doctest: +SKIP
    >>> sel.claim["NDCG@10"]["holds"]                                                        # doctest: +SKIP

Every (strategy, setting) run is cached by :func:`run_continual`, so a larger grid only pays for what is new.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from infae_kit.checks import parse_list
from infae_kit.distill import DistillConfig
from infae_kit.errors import ParameterError
from infae_kit.experiments.continual import PeriodSplit
from infae_kit.experiments.continual_models import (
    STRATEGIES,
    ContinualResult,
    run_continual,
)

__all__ = [
    "CLAIM_ORDER",
    "SETTING_KEYS",
    "ContinualSelection",
    "continual_grid",
    "ordering_claim",
    "select_continual",
]

CLAIM_ORDER = ("distill-cf", "ader", "individual")
"""The paper's ordering (Figure 5), best first."""

SETTING_KEYS = {
    "individual": (),
    "joint": (),
    "ader": ("lambda_base",),
    "distill-cf": ("memory_weight", "support", "gamma", "tau"),
}
"""The knobs each strategy's grid may vary (``support``, ``gamma``, ``tau`` are DISTILL-CF's summary's)."""


def _given(values: Any) -> bool:
    """False for ``None``, ``""`` and an empty sequence (keep the base configuration's value)."""
    return values is not None and (len(values) > 0 if not isinstance(values, str) else values.strip() != "")


def continual_grid(*, ader_lambda_bases: Sequence[float] = (0.8,), memory_weights: Sequence[float] = (1.0,),
                   supports: Sequence[str] = ("soft",), gammas: Sequence[int] = (), taus: Sequence[float] = (),
                   strategies: Sequence[str] = ("individual", "ader", "distill-cf")) -> dict[str, list[dict]]:
    """The settings of each strategy: ``{strategy: [setting, …]}`` (ADER: each λ_base; DISTILL-CF: every
    combination of memory weight × support × γ × τ; empty ``gammas`` / ``taus`` keep the base configuration's).

    Accepts lists or comma-separated strings (notebook parameters)."""
    strategies = [s.lower() for s in parse_list(strategies, str, "strategies")]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ParameterError(f"strategies must be a non-empty list of {STRATEGIES}, got {strategies!r}.")
    lams = parse_list(ader_lambda_bases, float, "ader_lambda_bases")
    weights = parse_list(memory_weights, float, "memory_weights")
    sups = parse_list(supports, str, "supports")
    gams = parse_list(gammas, int, "gammas") if _given(gammas) else []
    tau_list = parse_list(taus, float, "taus") if _given(taus) else []
    if not lams or not weights or not sups:
        raise ParameterError("ader_lambda_bases, memory_weights and supports each need at least one value.")
    grid: dict[str, list[dict]] = {}
    for s in strategies:
        if s == "ader":
            grid[s] = [{"lambda_base": x} for x in lams]
        elif s == "distill-cf":
            grid[s] = [dict(zip(("memory_weight", "support", "gamma", "tau"), combo))
                       for combo in itertools.product(weights, sups, gams or [None], tau_list or [None])]
            grid[s] = [{k: v for k, v in g.items() if v is not None} for g in grid[s]]
        else:
            grid[s] = [{}]
    return grid


def ordering_claim(per_period: Mapping[str, Mapping[str, Sequence[float]]], periods: Sequence[int],
                   metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The paper's ordering DISTILL-CF ≥ ADER ≥ Individual, checked per metric on the means over ``periods``,
    with the paired per-period difference DISTILL-CF − ADER (mean, standard error, periods where ≥ 0).

    Args:
        per_period: ``{metric: {strategy: [value at t = 0, 1, …]}}`` (:meth:`ContinualResult.per_period`);
            needs ``distill-cf``, ``ader`` and ``individual``.
        periods: the steps compared (t ≥ 1).
        metrics: the metrics checked.

    Returns:
        ``{metric: {"distill-cf", "ader", "individual": means, "distill_ge_ader", "ader_ge_individual", "holds",
        "periods_distill_ge_ader", "periods_compared", "paired_diff_distill_minus_ader", "paired_diff_sem"
        (None with one period), "paired_diff_ader_minus_individual", "paired_diff_ader_minus_individual_sem"}}``.
    """
    periods = [int(p) for p in periods]
    if not periods:
        raise ParameterError("periods must name at least one step to compare.")
    out = {}
    for m in metrics:
        series = per_period[m]
        missing = [s for s in CLAIM_ORDER if s not in series]
        if missing:
            raise ParameterError(f"the claim needs the strategies {CLAIM_ORDER}; {missing} missing.")
        d, a, i = (np.asarray(series[s], dtype=np.float64)[periods] for s in CLAIM_ORDER)

        def sem(x: np.ndarray) -> float | None:
            return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None

        out[m] = {"distill-cf": float(d.mean()), "ader": float(a.mean()), "individual": float(i.mean()),
                  "distill_ge_ader": bool(d.mean() >= a.mean()), "ader_ge_individual": bool(a.mean() >= i.mean()),
                  "holds": bool(d.mean() >= a.mean() >= i.mean()),
                  "periods_distill_ge_ader": int(np.sum(d - a >= 0)), "periods_compared": len(periods),
                  "paired_diff_distill_minus_ader": float((d - a).mean()), "paired_diff_sem": sem(d - a),
                  "paired_diff_ader_minus_individual": float((a - i).mean()),
                  "paired_diff_ader_minus_individual_sem": sem(a - i)}
    return out


@dataclass
class ContinualSelection:
    """Outcome of :func:`select_continual`.

    Attributes:
        metric: the validation metric that chose each strategy's setting.
        periods: the steps averaged over and compared (t = 1..K−2).
        candidates: one dict per (strategy, setting): ``strategy``, ``setting``, ``validation`` and ``test``
            (``{metric: mean over periods}``), ``chosen`` (bool), ``from_cache``.
        chosen: ``{strategy: setting}``.
        per_period: ``{metric: {strategy: [test value at t = 0, 1, …]}}`` of the chosen settings.
        claim: :func:`ordering_claim` on the test users of the chosen settings.
        n_users: ``{"validation": […], "test": […]}`` users per step.
    """

    metric: str
    periods: list[int]
    candidates: list[dict[str, Any]]
    chosen: dict[str, dict[str, Any]]
    per_period: dict[str, dict[str, list[float]]]
    claim: dict[str, dict[str, Any]]
    n_users: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The selection as JSON-ready nested dicts (what notebook 07 records; ``ContinualSelection(**d)`` reads
        it back)."""
        return dataclasses.asdict(self)


def _run_kwargs(strategy: str, setting: Mapping[str, Any], distill_config: DistillConfig) -> dict[str, Any]:
    unknown = set(setting) - set(SETTING_KEYS[strategy])
    if unknown:
        raise ParameterError(f"{strategy} settings may vary {SETTING_KEYS[strategy] or 'nothing'}, got "
                             f"{sorted(unknown)}.")
    kw: dict[str, Any] = {}
    if "lambda_base" in setting:
        kw["lambda_base"] = float(setting["lambda_base"])
    if "memory_weight" in setting:
        kw["memory_weight"] = float(setting["memory_weight"])
    summary = {k: setting[k] for k in ("support", "gamma", "tau") if k in setting}
    if strategy == "distill-cf":
        kw["distill_config"] = dataclasses.replace(distill_config, **summary)
    return kw


def select_continual(split: PeriodSplit, grid: Mapping[str, Sequence[Mapping[str, Any]]], *,
                     distill_config: DistillConfig, metric: str = "NDCG@10", selection_share: float = 0.5,
                     metrics: Sequence[str] = ("HR@10", "NDCG@10", "HR@100"), progress: bool = False,
                     **run_kwargs: Any) -> ContinualSelection:
    """Run every (strategy, setting) of ``grid`` with validation users set aside, choose each strategy's setting
    on validation, and check the paper's ordering on the test users.

    Args:
        split: the periods.
        grid: ``{strategy: [setting, …]}`` (:func:`continual_grid`); must hold ``distill-cf``, ``ader`` and
            ``individual`` (``joint`` may be added as a reference).
        distill_config: DISTILL-CF's base configuration (a setting's ``support`` / ``gamma`` / ``tau`` replace
            its fields).
        metric: the validation metric, averaged over the compared periods, that chooses (higher is better).
        selection_share: the share of each step's users that validates (:func:`run_continual`).
        metrics: the metrics of the claim.
        progress: a progress bar per run.
        **run_kwargs: passed to :func:`run_continual` for every run (``budget``, ``mvae``, ``cache_dir``, …).

    Returns:
        :class:`ContinualSelection`.
    """
    if not 0.0 < float(selection_share) < 1.0:
        raise ParameterError(f"selection_share must be in (0, 1) to set validation users aside, got {selection_share!r}.")
    missing = [s for s in CLAIM_ORDER if not grid.get(s)]
    if missing:
        raise ParameterError(f"the grid needs at least one setting for each of {CLAIM_ORDER}; {missing} have none.")
    unknown = [s for s in grid if s not in STRATEGIES]
    if unknown:
        raise ParameterError(f"unknown strategies {unknown} in the grid; use {STRATEGIES}.")
    forbidden = {"strategies", "selection_share", "lambda_base", "memory_weight"} & set(run_kwargs)
    if forbidden:
        raise ParameterError(f"{sorted(forbidden)} are set by select_continual (the grid), not passed to it.")
    periods = list(range(1, split.n_periods - 1))
    if not periods:
        raise ParameterError("selection needs at least 3 periods (the strategies differ from t = 1 on).")
    runs: list[tuple[dict[str, Any], ContinualResult]] = []  # (candidate, its run), in grid order
    for strategy, settings in grid.items():
        for setting in settings:
            result = run_continual(split, [strategy], selection_share=float(selection_share), progress=progress,
                                   **_run_kwargs(strategy, setting, distill_config), **run_kwargs)
            if metric not in result.metric_names():
                raise ParameterError(f"metric {metric!r} is not among the results' {result.metric_names()}.")
            runs.append(({"strategy": strategy, "setting": dict(setting),
                          "validation": result.averages(periods, validation=True)[strategy],
                          "test": result.averages(periods)[strategy], "chosen": False,
                          "from_cache": bool(result.from_cache[strategy])}, result))
    chosen: dict[str, dict[str, Any]] = {}
    per_period: dict[str, dict[str, list[float]]] = {m: {} for m in metrics}
    for strategy in grid:
        # max keeps the first of equal validation scores: ties go to the earlier setting of the grid
        best, result = max(((c, r) for c, r in runs if c["strategy"] == strategy),
                           key=lambda cr: cr[0]["validation"][metric])
        best["chosen"] = True
        chosen[strategy] = best["setting"]
        for m in metrics:
            per_period[m][strategy] = result.per_period(m)[strategy]
    first = next(r for c, r in runs if c["strategy"] == CLAIM_ORDER[0])
    rows = sorted(first.rows, key=lambda r: r["period"])
    n_users = {"validation": [int(r.get("n_validation_users", 0)) for r in rows],
               "test": [int(r["n_users"]) for r in rows]}
    return ContinualSelection(metric=metric, periods=periods, candidates=[c for c, _ in runs], chosen=chosen,
                              per_period=per_period, claim=ordering_claim(per_period, periods, metrics),
                              n_users=n_users)
