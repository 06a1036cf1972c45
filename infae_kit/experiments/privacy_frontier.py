"""DISTILL-CF's privacy–utility frontier: how much a summary leaks against how good it is, across μ, γ and τ.

For one dataset and a grid of DISTILL-CF settings (:func:`frontier_configs`: μ as a share of the users, γ, τ on
top of a base :class:`~infae_kit.distill.DistillConfig`), :func:`privacy_frontier` measures, per setting:

* **utility**: test NDCG@10 of ∞-AE fitted on the summary with the λ DISTILL-CF picked for it on validation
  (``DistillResult.best_lambda``, as notebooks 03 and 06 do), as a percentage of full-data ∞-AE's test NDCG@10
  (λ over the paper's grid picked on validation HR@100, :func:`~infae_kit.models.infinite_ae.tune_and_evaluate_infinite_ae`,
  as in notebook 03);
* **privacy**: the % of target users de-anonymized by the prediction attack of
  :mod:`infae_kit.experiments.privacy` (:func:`~infae_kit.experiments.privacy.attack_point` on a
  :class:`~infae_kit.experiments.privacy.ModelRelease`): with ``fraction_revealed`` of each target's history
  known and ``noise`` flipped in (notebook 06's headline: 90 %, no noise), the top-m prediction of ∞-AE on the
  summary is exactly the m missing items.

One **control** sits alongside, as in notebook 06: ∞-AE fitted on every user except the targets (λ picked on
validation HR@100 over DISTILL-CF's inner grid), attacked the same way. What it recovers is inferred from the
population; what a summary recovers beyond it is leaked by the summary. The target of the paper's claim
(Appendix B.6, "≈ 1 %" on Douban) drawn on the frontier is :data:`TARGET_MAX_DEANONYMIZED_PERCENT` at
:data:`TARGET_MIN_QUALITY_PERCENT` of full-data quality (:meth:`FrontierResult.reaching_target`).

**Caching.** Every summary goes through :func:`~infae_kit.distill.distill_cached` (``distill_cache_dir``): a
rerun reads it, an interrupted run resumes from its last checkpoint. Every measured setting, the control and
the full-data reference are small JSON entries in ``cache_dir/privacy_frontier/`` keyed by the data's
fingerprint, the configuration, the targets and the attack's setting (:func:`infae_kit.caching.entry_path`),
written atomically when done: a rerun of a finished grid reads JSON only, an interrupted one computes only the
missing settings, a damaged entry is set aside and recomputed.

Example:
    >>> from infae_kit.data import load_dataset
    >>> from infae_kit.distill import distill_config_for
    >>> data = load_dataset("magazine")                                                       # doctest: +SKIP
    >>> configs = frontier_configs(distill_config_for("magazine"), data.n_users, [0.02, 0.05, 0.1],
    ...                            taus=[0.5, 5.0])                                          # doctest: +SKIP
    >>> frontier = privacy_frontier(data, configs, cache_dir="runs")                          # doctest: +SKIP
    >>> frontier.table()[["budget", "tau", "quality_percent", "deanonymized_percent"]]        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from infae_kit.caching import (
    check_cache_format,
    data_name,
    dataset_fingerprint,
    entry_path,
    read_keyed_row,
    write_keyed_row,
)
from infae_kit.checks import binary_interactions, check_fraction, is_int, is_real
from infae_kit.distill import DistillConfig, distill_cached
from infae_kit.errors import ParameterError
from infae_kit.evaluation.protocol import evaluate_model
from infae_kit.evaluation.selection import tune_and_evaluate
from infae_kit.experiments.privacy import ModelRelease, attack_point, draw_targets
from infae_kit.io_utils import progress_bar
from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID, InfiniteAE, tune_and_evaluate_infinite_ae

if TYPE_CHECKING:
    import pandas as pd

    from infae_kit.data.dataset import RecDataset

__all__ = [
    "QUALITY_METRIC",
    "TARGET_MAX_DEANONYMIZED_PERCENT",
    "TARGET_MIN_QUALITY_PERCENT",
    "FrontierResult",
    "frontier_configs",
    "privacy_frontier",
]

QUALITY_METRIC = "NDCG@10"
"""The test metric a summary's quality is measured in, as a percentage of full-data ∞-AE's."""
TARGET_MAX_DEANONYMIZED_PERCENT = 1.0
"""The paper's privacy claim: about 1 % of users de-anonymized or fewer (0.86 % on Douban)."""
TARGET_MIN_QUALITY_PERCENT = 95.0
"""The utility a summary must keep to count as reaching the target: 95 % of full-data ∞-AE's test NDCG@10."""
_FORMAT = 1  # bump when a cached entry changes meaning
_TARGET_STREAM = 6  # spawn key of the targets' random stream, distinct from the stream DISTILL-CF draws from


# ---------------------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------------------
def _values(values: Sequence[Any] | None, name: str, check, default: Any) -> list[Any]:
    if values is None:
        return [default]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ParameterError(f"{name} must be a list of values (e.g. [1, 2]), got {values!r}.")
    values = list(values)
    if not values:
        raise ParameterError(f"{name} is empty: give at least one value, or None for the base configuration's.")
    for v in values:
        check(v)
    return values


def _check_share(value: Any) -> None:
    if not is_real(value) or not 0 < value <= 1:
        raise ParameterError(f"budget_shares holds {value!r}; each μ share must be a fraction of the users in (0, 1] "
                             "(0.05 for 5 %).")


def _check_gamma(value: Any) -> None:
    if not is_int(value) or value < 1:
        raise ParameterError(f"gammas holds {value!r}; each γ must be an integer >= 1 (Gumbel samples per fake user).")


def _check_tau(value: Any) -> None:
    if not is_real(value) or value <= 0:
        raise ParameterError(f"taus holds {value!r}; each τ must be a finite number > 0 (the Gumbel temperature).")


def frontier_configs(base: DistillConfig, n_users: int, budget_shares: Sequence[float], *,
                     gammas: Sequence[int] | None = None, taus: Sequence[float] | None = None) -> list[DistillConfig]:
    """The grid μ share × γ × τ as DISTILL-CF configurations: ``base`` with ``budget``, ``gamma``, ``tau`` replaced.

    μ = round(share · ``n_users``). Settings are ordered by γ, then τ, then μ (one curve per (γ, τ)).

    Args:
        base: every other field (steps, λ₂, seed, …), e.g. ``distill_config_for(dataset, "recorded")``.
        n_users: the dataset's users (the μ shares are of them).
        budget_shares: μ as fractions of ``n_users``, each in (0, 1].
        gammas: γ values (None: ``base.gamma``).
        taus: τ values (None: ``base.tau``).

    Returns:
        One :class:`~infae_kit.distill.DistillConfig` per setting.

    Raises:
        ParameterError: an empty list, a value out of range, a share under one user, or two shares that round to
            the same μ.
    """
    if not isinstance(base, DistillConfig):
        raise ParameterError(f"base must be a DistillConfig (e.g. distill_config_for(dataset)), got {type(base).__name__}.")
    if not is_int(n_users) or n_users < 1:
        raise ParameterError(f"n_users must be a positive integer, got {n_users!r}.")
    if budget_shares is None:
        raise ParameterError("budget_shares is None: give the μ shares to measure, e.g. [0.02, 0.05, 0.1].")
    shares = _values(budget_shares, "budget_shares", _check_share, None)
    budgets = [int(round(float(s) * n_users)) for s in shares]
    for share, mu in zip(shares, budgets):
        if mu < 1:
            raise ParameterError(f"a μ share of {share:g} is {share * n_users:.2f} of the {n_users} users, less than "
                                 f"one: use a share of at least {1 / n_users:.2g}.")
    if len(set(budgets)) != len(budgets):
        raise ParameterError(f"budget_shares {list(shares)} give μ = {budgets} for {n_users} users: two shares give "
                             "the same μ, drop one.")
    gamma_values = _values(gammas, "gammas", _check_gamma, base.gamma)
    tau_values = _values(taus, "taus", _check_tau, base.tau)
    for name, vals in (("gammas", gamma_values), ("taus", tau_values)):
        if len(set(vals)) != len(vals):
            raise ParameterError(f"{name} {vals} holds a value twice, drop the repeat.")
    return [replace(base, budget=mu, gamma=int(g), tau=float(t))
            for g in gamma_values for t in tau_values for mu in sorted(budgets)]


# ---------------------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------------------
@dataclass
class FrontierResult:
    """What :func:`privacy_frontier` measured.

    Attributes:
        dataset: the dataset's name.
        n_users: its users (the μ shares are of them).
        rows: one dict per setting, in the order of the configurations: ``budget`` (μ), ``budget_percent``,
            ``gamma``, ``tau``, ``steps``, ``lambda2``, ``lambda`` (∞-AE's on the summary), ``best_step``,
            ``steps_run``, ``test_<metric>`` (∞-AE on the summary), ``quality_percent`` (test NDCG@10 as % of
            full-data ∞-AE's), ``deanonymized_percent``, ``recovered_percent`` (share of the missing items in
            the top-m), ``targets``, ``correct``, ``distill_seconds`` (the run that distilled the summary, also
            when it was read from the cache), ``seconds`` (this setting's measurement: 0 when read back),
            ``distill_from_cache``, ``from_cache``.
        control: the same fields (without the DISTILL-CF ones) for ∞-AE on every non-target user, plus ``users``.
        full: full-data ∞-AE: ``lambda``, ``test_<metric>``, ``seconds``.
        attack: the attack's setting: ``fraction_revealed``, ``noise``, ``seed``, ``targets``, ``min_items``.
        timings_s: ``full``, ``control``, ``settings`` (sum over the settings measured now), ``total``.
        n_computed: settings measured now (a summary may still have come from the distill cache).
        n_cached: settings read back whole.
    """

    dataset: str
    n_users: int
    rows: list[dict[str, Any]]
    control: dict[str, Any]
    full: dict[str, Any]
    attack: dict[str, Any]
    timings_s: dict[str, float]
    n_computed: int
    n_cached: int

    def table(self) -> pd.DataFrame:
        """The settings as a DataFrame, one row each (the control is :attr:`control`)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def reaching_target(self, max_deanonymized_percent: float = TARGET_MAX_DEANONYMIZED_PERCENT,
                        min_quality_percent: float = TARGET_MIN_QUALITY_PERCENT) -> list[dict[str, Any]]:
        """The settings with at most ``max_deanonymized_percent`` de-anonymized at ``min_quality_percent`` or more
        of full-data quality, best quality first (empty when none does)."""
        hits = [r for r in self.rows if r["deanonymized_percent"] <= max_deanonymized_percent
                and r["quality_percent"] >= min_quality_percent]
        return sorted(hits, key=lambda r: -r["quality_percent"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, and ``target`` (the thresholds and the settings reaching them)."""
        reached = self.reaching_target()
        return {"dataset": self.dataset, "n_users": self.n_users, "rows": self.rows, "control": self.control,
                "full": self.full, "attack": self.attack, "timings_s": self.timings_s,
                "n_computed": self.n_computed, "n_cached": self.n_cached,
                "target": {"max_deanonymized_percent": TARGET_MAX_DEANONYMIZED_PERCENT,
                           "min_quality_percent": TARGET_MIN_QUALITY_PERCENT, "reached": bool(reached),
                           "settings": [{k: r[k] for k in ("budget", "budget_percent", "gamma", "tau")}
                                        for r in reached]}}


# ---------------------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------------------
def _targets_sha256(targets: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(targets, dtype=np.int64).tobytes()).hexdigest()


def _attack_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {"deanonymized_percent": float(row["percent"]), "recovered_percent": float(row["recovered_percent"]),
            "targets": int(row["targets"]), "correct": int(row["correct"])}


def _test_fields(metrics: dict[str, float]) -> dict[str, float]:
    return {f"test_{m}": float(v) for m, v in metrics.items()}


def privacy_frontier(
    data: RecDataset,
    configs: Sequence[DistillConfig],
    *,
    cache_dir: str | os.PathLike,
    distill_cache_dir: str | os.PathLike | None = None,
    target_users: Sequence[int] | np.ndarray | None = None,
    n_targets: int = 500,
    min_items: int = 2,
    fraction_revealed: float = 0.9,
    noise: float = 0.0,
    seed: int = 42,
    control_lambdas: Sequence[float] | None = None,
    full_lambdas: Sequence[float] = PAPER_LAMBDA_GRID,
    progress: bool = False,
) -> FrontierResult:
    """Distil, fit, evaluate and attack every DISTILL-CF setting of ``configs``, with the control alongside.

    Args:
        data: the dataset; D, the matrix attacked and distilled, is ``data.train``.
        configs: the settings (e.g. :func:`frontier_configs`), distinct.
        cache_dir: the frontier's entries go to ``cache_dir/privacy_frontier/``.
        distill_cache_dir: DISTILL-CF's cache (default ``cache_dir/distill_cache``).
        target_users: ``(n_targets,)`` rows of D to attack (notebook 06 passes its own); default
            :func:`~infae_kit.experiments.privacy.draw_targets` of ``n_targets`` users with ``min_items``+ items,
            from a random stream of ``seed`` of their own.
        n_targets, min_items: the default targets' number and fewest items.
        fraction_revealed: fraction of each target's items the attacker knows, in (0, 1] (headline: 0.9).
        noise: fraction of the catalogue flipped in each revealed row, in [0, 1] (headline: 0).
        seed: seeds the revealed items and the noise (and the default targets).
        control_lambdas: the control's λ grid, picked on validation HR@100 (default: the first setting's
            ``val_lambdas``, DISTILL-CF's inner grid).
        full_lambdas: full-data ∞-AE's λ grid (default: the paper's).
        progress: a progress bar over the settings (DISTILL-CF's own bar is never shown).

    Returns:
        :class:`FrontierResult`.

    Raises:
        ParameterError: no configuration, one that is not a ``DistillConfig``, a repeated configuration, an
            attack setting out of range.
    """
    t_start = time.perf_counter()
    configs = list(configs)
    if not configs:
        raise ParameterError("configs is empty: give at least one DistillConfig (see frontier_configs).")
    for c in configs:
        if not isinstance(c, DistillConfig):
            raise ParameterError(f"configs must hold DistillConfig objects, got {type(c).__name__}.")
    keys = [json.dumps(c.to_dict(), sort_keys=True, default=str) for c in configs]
    if len(set(keys)) != len(keys):
        raise ParameterError("configs holds the same DISTILL-CF configuration twice; give each setting once.")
    fraction_revealed = check_fraction(fraction_revealed, "fraction_revealed", allow_zero=False)
    noise = check_fraction(noise, "noise", allow_zero=True)
    X = binary_interactions(data.train, "data.train")
    if target_users is None:
        targets = draw_targets(X, n_targets, min_items=min_items,
                               seed=np.random.default_rng(np.random.SeedSequence([int(seed), _TARGET_STREAM])))
    else:
        targets = np.unique(np.asarray(target_users, dtype=np.int64).ravel())
        if targets.size == 0 or targets.min() < 0 or targets.max() >= X.shape[0]:
            raise ParameterError(f"target_users must be a non-empty list of row indices in [0, {X.shape[0]}).")
    cache_dir = Path(cache_dir)
    distill_dir = cache_dir / "distill_cache" if distill_cache_dir is None else Path(distill_cache_dir)
    folder = check_cache_format(cache_dir / "privacy_frontier", "privacy-frontier", _FORMAT, "*.json")
    name = data_name(data)
    attack = {"fraction_revealed": fraction_revealed, "noise": noise, "seed": int(seed), "targets": int(targets.size),
              "min_items": int(min_items) if target_users is None else None}
    base_key = {"format": _FORMAT, "dataset": name, "data": dataset_fingerprint(data),
                "targets_sha256": _targets_sha256(targets), **attack}
    timings = {"full": 0.0, "control": 0.0, "settings": 0.0}

    # full-data ∞-AE, the 100 % of the quality axis
    full_lambdas = [float(v) for v in full_lambdas]
    key = {**base_key, "kind": "full", "lambdas": full_lambdas}
    path = entry_path(folder, f"{name}-full", key, ".json")
    full = read_keyed_row(path, key)
    if full is None:
        t = time.perf_counter()
        report = tune_and_evaluate_infinite_ae(data, full_lambdas, progress=False)
        full = {"lambda": float(report.best_value), **_test_fields(report.test_metrics),
                "seconds": time.perf_counter() - t}
        write_keyed_row(path, key, full)
        timings["full"] = full["seconds"]
    reference = full[f"test_{QUALITY_METRIC}"]

    def quality(row: dict[str, Any]) -> float:
        return 100.0 * row[f"test_{QUALITY_METRIC}"] / reference if reference > 0 else float("nan")

    # the control: ∞-AE on every non-target user, attacked the same way
    grid = [float(v) for v in (configs[0].val_lambdas if control_lambdas is None else control_lambdas)]
    if not grid or any(not math.isfinite(v) or v < 0 for v in grid):
        raise ParameterError(f"control_lambdas must be a non-empty list of finite λ >= 0, got {grid}.")
    key = {**base_key, "kind": "control", "lambdas": grid}
    path = entry_path(folder, f"{name}-control", key, ".json")
    control = read_keyed_row(path, key)
    if control is None:
        t = time.perf_counter()
        others = np.setdiff1d(np.arange(X.shape[0]), targets)
        tuning = tune_and_evaluate(lambda lam: InfiniteAE(lam), grid, data, train=X[others])
        point = attack_point(X, ModelRelease("control", tuning.model, targets), fraction_revealed, noise, seed=int(seed))
        control = {"users": int(others.size), "lambda": float(tuning.best_value), **_test_fields(tuning.test_metrics),
                   **_attack_fields(point), "seconds": time.perf_counter() - t}
        write_keyed_row(path, key, control)
        timings["control"] = control["seconds"]
    control["quality_percent"] = quality(control)

    # the settings
    rows, n_cached = [], 0
    bar = progress_bar(configs, desc=f"{name} frontier", enabled=progress)
    for config in bar:
        key = {**base_key, "kind": "distill-cf", "config": config.to_dict()}
        path = entry_path(folder, f"{name}-mu{config.budget}-g{config.gamma}-t{config.tau:g}", key, ".json")
        row = read_keyed_row(path, key)
        if row is not None:
            n_cached += 1
            row.update(seconds=0.0, from_cache=True)
        else:
            t = time.perf_counter()
            result, from_cache = distill_cached(data, config, distill_dir, progress=False)
            model = InfiniteAE(result.best_lambda).fit(result.best_support)
            test = evaluate_model(model, data, "test").metrics
            point = attack_point(X, ModelRelease("DISTILL-CF", model, targets), fraction_revealed, noise,
                                 seed=int(seed))
            row = {"budget": config.budget, "budget_percent": 100.0 * config.budget / X.shape[0],
                   "gamma": config.gamma, "tau": float(config.tau), "steps": config.steps,
                   "lambda2": float(config.lambda2), "lambda": float(result.best_lambda),
                   "best_step": result.history.get("best_step"), "steps_run": result.history.get("steps_run"),
                   **_test_fields(test), **_attack_fields(point),
                   "distill_seconds": float(result.timings.get("total", float("nan"))),
                   "distill_from_cache": bool(from_cache)}
            row["seconds"] = time.perf_counter() - t
            write_keyed_row(path, key, row)
            timings["settings"] += row["seconds"]
            row["from_cache"] = False
        row["quality_percent"] = quality(row)
        rows.append(row)
    bar.finish()
    timings["total"] = time.perf_counter() - t_start
    return FrontierResult(dataset=name, n_users=int(X.shape[0]), rows=rows, control=control, full=full,
                          attack=attack, timings_s=timings, n_computed=len(rows) - n_cached, n_cached=n_cached)
