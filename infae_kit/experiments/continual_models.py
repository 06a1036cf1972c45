"""Continual learning with MVAE: four strategies period after period (paper §5, Figure 5, Appendix B.6, Fig. 11).

The protocol (:mod:`infae_kit.experiments.continual`): a timestamped log cut into K periods; at period t a model is trained,
then asked to predict period t+1 (by default: the users seen in periods 0..t, their history as input, their
period-(t+1) items as targets, seen items excluded). Every strategy trains an MVAE (Liang et al., 2018;
:class:`infae_kit.experiments.continual_mvae.ContinualMVAE`) period after period and is evaluated on exactly the same users, inputs and
targets; they differ only in what the model trains on at period t ≥ 1:

* ``"individual"`` — the rows of period t only: :math:`D_t`.
* ``"joint"`` — every period so far, each user's rows merged: :math:`D_0 ∪ … ∪ D_t`.
* ``"ader"`` — ADER (Mi et al., RecSys 2020): :math:`D_t` plus N *exemplars* of period t−1, chosen by herding
  on the previous model's user representations, trained with ADER's adaptively weighted distillation loss
  against the previous model's predictions::

      L = mean_{u ∈ D_t} ELBO-loss(x_u) + λ_t · mean_{e ∈ E} [ −Σ_{i ∈ I_{t−1}} |x_e| p_old(i | x_e) log p_new(i | x_e) ]
      λ_t = λ_base · sqrt( |I_{t−1}| / |I_t| · |E| / |D_t| )

  with :math:`I_t` the items seen in periods 0..t and both softmaxes restricted to the old items
  :math:`I_{t−1}` (:mod:`infae_kit.experiments.continual_mvae`: :func:`~infae_kit.experiments.continual_mvae.ader_lambda`,
  :func:`~infae_kit.experiments.continual_mvae.herding_selection`, :func:`~infae_kit.experiments.continual_mvae.teacher_targets`).
* ``"distill-cf"`` — :math:`D_t` plus a DISTILL-CF summary of period t−1 of the same budget: N *synthetic*
  users distilled from period t−1's rows (:func:`period_summary`), injected as training rows that each count
  ``memory_weight`` times in the loss (1, the default: as ordinary rows).

With ``selection_share > 0`` a seeded share of each step's evaluated users is set aside to choose settings on
(:mod:`infae_kit.experiments.continual_selection`), and the rows report the other users.

At t = 0 there is nothing to remember: every strategy trains the same model on period 0 (trained once and
shared). With ``warm_start=True`` (the default) each period's model starts from the same strategy's model of
the period before (continual fine-tuning; KL annealing continues), so ``"individual"`` is ADER's "Finetune"
baseline; ``warm_start=False`` trains every period from a fresh initialisation.

Adaptations of ADER to a user × item autoencoder (ADER is for session-based next-item prediction, with one
label per session), each a choice made here:

* **Exemplars are users** of period t−1 (their period-(t−1) rows); herding (Welling 2009, as iCaRL and ADER)
  runs in the previous model's representation of a user, the encoder mean μ(x_u), L2-normalised as ADER does.
  ADER splits its budget over labels in proportion to their frequency and herds within each label; a user has
  many items and no single label, so herding runs over all users of period t−1 at once.
* **Exemplars enter only through the distillation term** (as ADER's released code: with distillation on, an
  exemplar's own label is not used). The soft target of exemplar e is the previous model's distribution over
  the old items scaled by the row's size ``|x_e|``, so that it has the mass of the multinomial likelihood it
  stands in for (ADER's soft label replaces a one-hot label of mass 1).
* **λ_t** is ADER's (released code, default λ_base = 0.8), with both ratios: old to current items, and
  exemplars to new rows.
* ADER re-selects exemplars among the current data *and* the previous exemplars; here the memory is period
  t−1's users only, as for DISTILL-CF (whose summary covers period t−1 only), so the two memories hold the same
  data with the same budget.

The DISTILL-CF summary of period t−1 is distilled from that period's active users (:func:`period_dataset`):
each user's period-(t−1) items are split at random into distillation train (``1 − holdout``) and validation
(``holdout``), the validation picking the inner λ and the best step as in :func:`infae_kit.distill.distill`.
A budget that is not smaller than the number of users of a summarised period is refused.

Example:
    >>> from infae_kit.data import load_dataset
    >>> from infae_kit.experiments.continual import split_into_periods
    >>> split = split_into_periods(load_dataset("ml-100k"), 17)                             # doctest: +SKIP
    >>> result = run_continual(split, budget=25, mvae={"epochs": 40}, cache_dir="runs")    # doctest: +SKIP
    >>> result.averages()["ader"]["NDCG@10"]                                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.caching import check_cache_format, dataset_fingerprint, entry_path, read_json_entry
from infae_kit.checks import non_negative_float, parse_list
from infae_kit.data.dataset import RecDataset
from infae_kit.distill import DistillConfig, distill, distill_cached
from infae_kit.errors import ParameterError
from infae_kit.evaluation.metrics import propensity_weights
from infae_kit.evaluation.protocol import evaluate_rows
from infae_kit.experiments.continual import EVALUATIONS, PeriodSplit, continual_steps, split_rows
from infae_kit.experiments.continual_mvae import (
    ADER_LAMBDA_BASE,
    ContinualMVAE,
    Replay,
    ader_exemplars,
    ader_lambda,
    teacher_targets,
)
from infae_kit.io_utils import atomic_write_json, progress_bar
from infae_kit.models.mvae import MVAE

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "STRATEGIES",
    "ContinualResult",
    "active_rows",
    "period_dataset",
    "period_summary",
    "run_continual",
    "selection_users",
]

STRATEGIES = ("individual", "joint", "ader", "distill-cf")
"""The strategies of Figure 5, in the paper's order of presentation."""

_CACHE_VERSION = 2  # bump when cached rows change meaning (2: the kit's one data fingerprint)
_MEMORY_STRATEGIES = ("ader", "distill-cf")


# ---------------------------------------------------------------------------------------------------------
# Period data and DISTILL-CF summaries
# ---------------------------------------------------------------------------------------------------------
def active_rows(X: sp.csr_matrix) -> np.ndarray:
    """Indices of the non-empty rows of ``X`` (the users active in it)."""
    return np.flatnonzero(np.diff(sp.csr_matrix(X).indptr) > 0)


def period_dataset(split: PeriodSplit, t: int, holdout: float = 0.1, seed: int = 0) -> RecDataset:
    """Period ``t``'s active users as a :class:`RecDataset` for DISTILL-CF.

    Each user's period-t items are split at random (seeded): ``⌈holdout · n⌉`` to validation, the rest to train
    (a user with a single item keeps it in train). Test is empty (DISTILL-CF never reads it). Columns are the
    split's full item index, so the summary lives in the same item space as every period.
    """
    if not isinstance(t, (int, np.integer)) or isinstance(t, bool) or not 0 <= t < split.n_periods:
        raise ParameterError(f"period t must be an integer in [0, {split.n_periods - 1}], got {t!r}.")
    if not isinstance(holdout, (int, float, np.floating)) or not 0.0 < float(holdout) < 1.0:
        raise ParameterError(f"holdout must be a fraction in (0, 1), e.g. 0.1, got {holdout!r}.")
    X = split.periods[t]
    users = active_rows(X)
    train, val = split_rows(X[users], float(holdout), np.random.default_rng([int(seed), int(t)]))
    return RecDataset(name=f"{split.name or 'data'}-p{t}of{split.n_periods}", train=train, val=val,
                      test=sp.csr_matrix(train.shape, dtype=np.float32), user_ids=split.user_ids[users],
                      item_ids=split.item_ids, seed=int(seed), source=f"period {t} of {split!r}")


def period_summary(split: PeriodSplit, t: int, config: DistillConfig, *, holdout: float = 0.1, seed: int = 0,
                   cache_dir: str | Path | None = None, progress: bool = False) -> tuple[sp.csr_matrix, dict]:
    """A DISTILL-CF summary of period ``t``: ``(support (μ, n_items) csr, info)``.

    Args:
        split, t, holdout, seed: the data (:func:`period_dataset`).
        config: DISTILL-CF hyper-parameters; ``config.budget`` is μ, the number of synthetic users.
        cache_dir: keep / reuse the summary under ``cache_dir`` (:func:`infae_kit.distill.distill_cached`).
        progress: DISTILL-CF's progress bar.

    Returns:
        The released support (``config.support``) and ``info``: ``period``, ``n_users``, ``best_lambda``,
        ``best_step``, ``steps_run``, ``val_HR@100`` (best, and of the initial real users at step 0),
        ``seconds`` (of the original run), ``from_cache``.

    Raises:
        ParameterError: the budget is not smaller than the period's number of active users.
    """
    data = period_dataset(split, t, holdout, seed)
    if config.budget >= data.n_users:
        raise ParameterError(
            f"DISTILL-CF budget μ={config.budget} is not smaller than the {data.n_users} users active in period {t}: "
            "a summary must be smaller than the data it summarises; use a smaller budget (or fewer periods)."
        )
    if cache_dir is not None:
        result, from_cache = distill_cached(data, config, Path(cache_dir), progress=progress)
    else:
        result, from_cache = distill(data, config, progress=progress), False
    h = result.history
    info = {"period": int(t), "n_users": int(data.n_users), "best_lambda": float(result.best_lambda),
            "best_step": h.get("best_step"), "steps_run": h.get("steps_run"),
            "val_HR@100": h.get("best_metric"),
            "val_HR@100_step0": h["evaluations"][0]["metrics"]["HR@100"] if h.get("evaluations") else None,
            "support_nnz": int(result.best_support.nnz), "seconds": float(result.timings.get("total", float("nan"))),
            "from_cache": bool(from_cache)}
    return sp.csr_matrix(result.best_support, dtype=np.float32), info


# ---------------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ContinualResult:
    """Outcome of :func:`run_continual`.

    Attributes:
        rows: one dict per (strategy, period t): ``strategy``, ``period`` (t, the last period trained on),
            ``target_period`` (t+1), ``n_users`` (evaluated), ``n_train_rows`` (data rows), ``n_memory_rows``
            (exemplars or synthetic users), ``lambda`` (ADER's λ_t, else None), ``fit_s``, ``epochs``, and the
            metrics (``HR@k``, ``NDCG@k``, ``PSP@k`` in %).
        strategies: the strategies run, in order.
        summaries: per summarised period, :func:`period_summary`'s info (DISTILL-CF).
        exemplars: per period t ≥ 1, the ADER memory: ``period``, ``users`` (row indices of period t−1's users
            chosen, herding order), ``lambda``, ``n_items_before``, ``n_items_now``.
        from_cache: per strategy, whether its rows were read from the cache.
        timings_s: ``{strategy: seconds}`` of this call (0 for cached strategies), plus ``period0``.
        config: the run's settings (what the cache key hashes).
    """

    rows: list[dict[str, Any]]
    strategies: list[str]
    summaries: list[dict[str, Any]] = field(default_factory=list)
    exemplars: list[dict[str, Any]] = field(default_factory=list)
    from_cache: dict[str, bool] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def metric_names(self) -> list[str]:
        """The metrics of the rows (``HR@k``, ``NDCG@k``, ``PSP@k``), in their order."""
        fixed = {"strategy", "period", "target_period", "n_users", "n_train_rows", "n_memory_rows", "lambda",
                 "fit_s", "epochs", "n_validation_users", "validation"}
        return [k for k in self.rows[0] if k not in fixed] if self.rows else []

    def table(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (one row per strategy × period)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def per_period(self, metric: str) -> dict[str, list[float]]:
        """``{strategy: [metric at t = 0, 1, …]}``."""
        out: dict[str, list[float]] = {s: [] for s in self.strategies}
        for r in sorted(self.rows, key=lambda r: r["period"]):
            out[r["strategy"]].append(float(r[metric]))
        return out

    def averages(self, periods: Iterable[int] | None = None, *, validation: bool = False) -> dict[str, dict[str, float]]:
        """``{strategy: {metric: mean over periods}}`` (every period by default; each period weighs the same).

        ``validation=True`` averages the metrics of the validation users instead (runs with ``selection_share``
        > 0; :func:`run_continual`)."""
        keep = None if periods is None else set(int(p) for p in periods)
        if validation and self.rows and "validation" not in self.rows[0]:
            raise ParameterError("these results have no validation users: run run_continual with selection_share > 0.")
        out = {}
        for s in self.strategies:
            rows = [r["validation"] if validation else r for r in self.rows
                    if r["strategy"] == s and (keep is None or r["period"] in keep)]
            out[s] = {m: float(np.mean([r[m] for r in rows])) for m in self.metric_names()} if rows else {}
        return out


def _check_strategies(strategies) -> list[str]:
    strategies = [s.lower() for s in parse_list(strategies, str, "strategies")]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if not strategies or unknown:
        raise ParameterError(f"strategies must be a non-empty list of {STRATEGIES}, got {strategies!r}.")
    return list(dict.fromkeys(strategies))


def _split_fingerprint(split: PeriodSplit) -> dict[str, Any]:
    """The periods' data fingerprint: every period's rows stacked (periods × users, items) and how they were cut."""
    stacked = sp.vstack([sp.csr_matrix(m) for m in split.periods], format="csr")
    return {"periods": dataset_fingerprint(stacked, name=split.name or "", item_ids=split.item_ids),
            "n_periods": split.n_periods, "by": split.by}


def selection_users(users: np.ndarray, share: float, seed: int, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a step's evaluated users into ``(validation, test)``: a seeded ``round(share · n)`` of them (at least
    one when ``share > 0`` and ``n ≥ 2``) validate, the rest test; both sorted. ``share = 0`` gives
    ``(empty, users)``."""
    users = np.asarray(users, dtype=np.int64)
    n_val = 0 if share <= 0 else min(max(int(round(share * users.size)), 1), users.size - 1)
    order = np.random.default_rng([int(seed), int(period), 1]).permutation(users.size)
    return np.sort(users[order[:n_val]]), np.sort(users[order[n_val:]])


def _seen_items(split: PeriodSplit, t: int) -> np.ndarray:
    """``(n_items,)`` bool: items with an interaction in periods 0..t."""
    return np.diff(split.history(t).tocsc().indptr) > 0


def run_continual(
    split: PeriodSplit,
    strategies: Sequence[str] | str = STRATEGIES,
    *,
    budget: int = 25,
    mvae: dict[str, Any] | None = None,
    distill_config: DistillConfig | None = None,
    lambda_base: float = ADER_LAMBDA_BASE,
    memory_weight: float = 1.0,
    warm_start: bool = True,
    evaluation: str = "next-period",
    eval_holdout: float = 0.2,
    distill_holdout: float = 0.1,
    ks: Sequence[int] = (10, 100),
    selection_share: float = 0.0,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    reuse: bool = True,
    progress: bool = True,
) -> ContinualResult:
    """Train an MVAE period after period with each strategy and evaluate it on the next period.

    Steps t = 0..K−2 (K = ``split.n_periods``): train at t, evaluate on t+1 (:func:`infae_kit.experiments.continual.
    continual_steps`). The period-0 model is the same for every strategy (trained once). See the module
    docstring for the strategies.

    Args:
        split: the periods (:func:`infae_kit.experiments.continual.split_into_periods`).
        strategies: any of :data:`STRATEGIES` (list or comma-separated string).
        budget: N, the number of users of period t−1 kept in memory: ADER's exemplars (all users of a period
            with fewer) and DISTILL-CF's synthetic users (must be smaller than every summarised period's users).
        mvae: keyword arguments of :class:`~infae_kit.models.mvae.MVAE` (its defaults otherwise). ``seed`` is
            replaced by ``seed + t`` at period t (the same for every strategy).
        distill_config: DISTILL-CF's configuration; its ``budget`` is replaced by ``budget`` (default:
            ``DistillConfig(gamma=50, steps=100, support="topk")``).
        lambda_base: ADER's λ_base (:func:`ader_lambda`).
        memory_weight: how many times each DISTILL-CF synthetic row counts in MVAE's loss, against 1 for a data
            row (``ContinualMVAE.fit(row_weights=...)``); 1 trains them as ordinary rows.
        warm_start: start each period's model from the same strategy's previous model (continual fine-tuning).
        evaluation, eval_holdout: ``"next-period"`` or ``"fold-in"`` (and its held-out fraction), see
            :func:`infae_kit.experiments.continual.continual_steps`.
        distill_holdout: validation fraction of each summarised period (:func:`period_dataset`).
        ks: metric cut-offs.
        selection_share: the share of each step's evaluated users set aside to **select** settings (e.g. 0.5):
            the rows' metrics are then those of the other users, and each row's ``validation`` holds the metrics
            of the selection users (:func:`selection_users`, seeded by ``seed`` and t, the same for every
            strategy). 0 evaluates every user.
        seed: seeds the MVAEs (``seed + t``), the evaluation split (fold-in) and the distillation splits.
        cache_dir: if given, each strategy's rows are cached in ``cache_dir/continual/`` (keyed by the data and
            every setting that changes them) and DISTILL-CF summaries in ``cache_dir/distill_cache/``; a rerun
            with the same settings reads them instead of training.
        reuse: ``False`` ignores (and overwrites) cached rows; cached summaries are still reused.
        progress: a tqdm bar over the (strategy, period) fits.

    Returns:
        :class:`ContinualResult`.

    Raises:
        ParameterError: unknown strategy or evaluation, bad budget, a DISTILL-CF budget not smaller than the
            users of a period it would summarise, fewer than 3 periods with a memory strategy.
    """
    strategies = _check_strategies(strategies)
    if not isinstance(split, PeriodSplit):
        raise ParameterError(f"split must be a PeriodSplit (split_into_periods), got {type(split).__name__}.")
    if evaluation not in EVALUATIONS:
        raise ParameterError(f"evaluation must be one of {EVALUATIONS}, got {evaluation!r}.")
    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ParameterError(f"budget must be a positive integer (users kept from the previous period), got {budget!r}.")
    budget = int(budget)
    K = split.n_periods
    mvae = dict(mvae or {})
    mvae.pop("seed", None)
    mvae.pop("progress", None)
    MVAE(**mvae)  # validates the configuration before anything runs
    base_config = distill_config if distill_config is not None else DistillConfig(gamma=50, steps=100, support="topk")
    if not isinstance(base_config, DistillConfig):
        raise ParameterError(f"distill_config must be a DistillConfig, got {type(base_config).__name__}.")
    dconfig = dataclasses.replace(base_config, budget=budget)
    ader_lambda(lambda_base, 1, 1, 1, 1)  # validates lambda_base
    memory_weight = non_negative_float("memory_weight", memory_weight, hint="1 trains the summary as ordinary rows.")
    if not isinstance(selection_share, (int, float, np.floating)) or not 0.0 <= float(selection_share) < 1.0:
        raise ParameterError(f"selection_share must be a fraction in [0, 1), e.g. 0.5, got {selection_share!r}.")
    if any(s in _MEMORY_STRATEGIES for s in strategies) and K < 3:
        raise ParameterError(f"ADER and DISTILL-CF remember period t−1 from t = 1 on; with {K} periods there is no "
                             "such step. Use at least 3 periods.")
    if "distill-cf" in strategies:
        sizes = [(p, int(active_rows(split.periods[p]).size)) for p in range(K - 2)]
        p_min, n_min = min(sizes, key=lambda x: x[1])
        if budget >= n_min:
            raise ParameterError(
                f"DISTILL-CF budget N={budget} is not smaller than the {n_min} users active in period {p_min}, one of "
                f"the periods it would summarise: a summary must be smaller than its data. Use budget < {n_min}."
            )

    steps = list(continual_steps(split, "individual", evaluation=evaluation, holdout=eval_holdout, seed=seed))
    weights = [propensity_weights(split.history(s.period)) for s in steps]
    users = [selection_users(s.users, float(selection_share), seed, s.period) for s in steps]
    config = {"version": _CACHE_VERSION, "data": _split_fingerprint(split), "mvae": MVAE(**mvae).config(),
              "budget": budget, "lambda_base": float(lambda_base), "warm_start": bool(warm_start),
              "evaluation": evaluation, "eval_holdout": float(eval_holdout), "ks": [int(k) for k in ks],
              "seed": int(seed), "distill": dconfig.to_dict(), "distill_holdout": float(distill_holdout),
              "memory_weight": memory_weight, "selection_share": float(selection_share)}
    config["mvae"].pop("seed", None)
    cache = (check_cache_format(Path(cache_dir) / "continual", "continual", _CACHE_VERSION, "*.json")
             if cache_dir is not None else None)
    distill_dir = Path(cache_dir) / "distill_cache" if cache_dir is not None else None

    def cache_path(strategy: str) -> Path | None:
        if cache is None:
            return None
        keys = ["version", "data", "mvae", "warm_start", "evaluation", "eval_holdout", "ks", "seed"]
        if selection_share:
            keys.append("selection_share")
        if strategy in _MEMORY_STRATEGIES:
            keys.append("budget")
        if strategy == "ader":
            keys.append("lambda_base")
        if strategy == "distill-cf":
            keys += ["distill", "distill_holdout"] + (["memory_weight"] if memory_weight != 1.0 else [])
        return entry_path(cache, f"{split.name or 'data'}-{strategy}",
                          {"strategy": strategy, **{k: config[k] for k in keys}}, ".json")

    result = ContinualResult(rows=[], strategies=strategies, config=config)
    todo = []
    for s in strategies:
        path = cache_path(s)
        saved = read_json_entry(path) if reuse and path is not None else None
        if isinstance(saved, dict) and "rows" in saved:
            result.rows += saved["rows"]
            result.exemplars += saved.get("exemplars", [])
            result.summaries += saved.get("summaries", [])
            result.from_cache[s], result.timings_s[s] = True, 0.0
        else:
            todo.append(s)
            result.from_cache[s] = False
    if not todo:
        result.rows.sort(key=lambda r: (strategies.index(r["strategy"]), r["period"]))
        return result

    def train(t: int, X, prev: MVAE | None, **kw) -> tuple[MVAE, float]:
        t0 = time.perf_counter()
        model = ContinualMVAE(**mvae, seed=int(seed) + t)
        if warm_start and prev is not None:
            kw.update(init_params=prev.params_, init_step=prev.steps_run_)
        model.fit(X, **kw)
        return model, time.perf_counter() - t0

    def row(strategy, t, model, fit_s, n_train, n_memory, lam=None) -> dict[str, Any]:
        validation, test = users[t]

        def scores(rows: np.ndarray) -> dict[str, float]:
            return evaluate_rows(model, steps[t].context[rows], steps[t].targets[rows], weights[t], ks)

        out = {"strategy": strategy, "period": t, "target_period": t + 1, "n_users": int(len(test)),
               "n_train_rows": int(n_train), "n_memory_rows": int(n_memory), "lambda": lam,
               "fit_s": float(fit_s), "epochs": len(model.history_), **scores(test)}
        if selection_share:
            out["n_validation_users"] = int(len(validation))
            out["validation"] = scores(validation)
        return out

    bar = progress_bar(total=1 + len(todo) * (K - 2), desc="continual", enabled=progress)
    t_start = time.perf_counter()
    X0 = split.periods[0][active_rows(split.periods[0])]
    bar.set_postfix_str("period 0 (shared)")
    model0, fit0 = train(0, X0, None)
    row0 = {"n_train": X0.shape[0], "fit_s": fit0}
    bar.update(1)
    result.timings_s["period0"] = time.perf_counter() - t_start
    summaries: dict[int, tuple[sp.csr_matrix, dict]] = {}

    for strategy in todo:
        t_strategy = time.perf_counter()
        rows = [row(strategy, 0, model0, row0["fit_s"], row0["n_train"], 0)]
        exemplars, used_summaries = [], []
        prev = model0
        for t in range(1, K - 1):
            bar.set_postfix_str(f"{strategy}, period {t}")
            current = split.periods[t] if strategy != "joint" else split.history(t)
            X = current[active_rows(current)]
            if strategy in ("individual", "joint"):
                model, fit_s = train(t, X, prev)
                rows.append(row(strategy, t, model, fit_s, X.shape[0], 0))
            elif strategy == "ader":
                previous_rows = active_rows(split.periods[t - 1])
                candidates = split.periods[t - 1][previous_rows]
                chosen = ader_exemplars(prev, candidates, budget)
                old_items, now_items = _seen_items(split, t - 1), _seen_items(split, t)
                lam = ader_lambda(lambda_base, int(old_items.sum()), int(now_items.sum()), len(chosen), X.shape[0])
                E = candidates[chosen]
                replay = Replay(E, teacher_targets(prev, E, old_items), lam, old_items)
                model, fit_s = train(t, X, prev, replay=replay)
                rows.append(row(strategy, t, model, fit_s, X.shape[0], len(chosen), lam))
                exemplars.append({"period": t, "users": previous_rows[chosen].tolist(), "lambda": lam,
                                  "n_items_before": int(old_items.sum()), "n_items_now": int(now_items.sum())})
            else:  # distill-cf
                if t - 1 not in summaries:
                    summaries[t - 1] = period_summary(split, t - 1, dconfig, holdout=distill_holdout, seed=seed,
                                                      cache_dir=distill_dir)
                support, info = summaries[t - 1]
                used_summaries.append(info)
                binary = support.nnz == 0 or bool(np.all(support.data == 1.0))
                stacked = sp.vstack([X, support], format="csr")
                row_weights = (None if memory_weight == 1.0 else
                               np.r_[np.ones(X.shape[0]), np.full(support.shape[0], memory_weight)])
                model, fit_s = train(t, stacked, prev, binarize=binary, row_weights=row_weights)
                rows.append(row(strategy, t, model, fit_s, X.shape[0], support.shape[0]))
            prev = model
            bar.update(1)
        result.rows += rows
        result.exemplars += exemplars
        result.summaries += used_summaries
        result.timings_s[strategy] = time.perf_counter() - t_strategy
        path = cache_path(strategy)
        if path is not None:
            atomic_write_json(path, {"strategy": strategy, "config": config, "rows": rows, "exemplars": exemplars,
                                     "summaries": used_summaries, "seconds": result.timings_s[strategy]})
    bar.finish()
    result.rows.sort(key=lambda r: (strategies.index(r["strategy"]), r["period"]))
    return result
