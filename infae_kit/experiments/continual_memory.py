"""What a continual-learning memory gives a model fitted on it alone: the DISTILL-CF summary of a period against
the random real users it started from, for ∞-AE (what the summary was distilled for) and for MVAE (what the
continual strategies train), and how the memory's rows look to MVAE's multinomial likelihood.

:func:`memory_probe` answers "does the summary's gain carry over from ∞-AE to MVAE?" directly, away from the
continual loop: for each summarised period p, on the held-out items of p's users (the split that validated the
summary, :func:`~infae_kit.experiments.continual_models.period_dataset`), it scores

* ∞-AE and MVAE fitted on the N **random real users** the distillation started from
  (:func:`infae_kit.distill.loop.initial_prior`),
* the same two models fitted on the N-user **summary**,
* and both fitted on **all** of p's users (the reference a memory stands in for).

∞-AE takes, for each memory, the λ of the distillation's grid with the best validation HR@100 (the same choice
for every memory, as the distillation makes it); MVAE is trained from scratch on the memory alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from infae_kit.caching import check_cache_format, dataset_fingerprint, entry_path, read_keyed_row, write_keyed_row
from infae_kit.distill import DistillConfig
from infae_kit.distill.config import SELECT_BY
from infae_kit.distill.loop import initial_prior
from infae_kit.errors import ParameterError
from infae_kit.evaluation.metrics import propensity_weights
from infae_kit.evaluation.protocol import evaluate_rows
from infae_kit.experiments.continual import PeriodSplit
from infae_kit.experiments.continual_models import period_dataset, period_summary
from infae_kit.experiments.continual_mvae import ContinualMVAE
from infae_kit.models.infinite_ae import InfiniteAE

__all__ = ["MEMORIES", "PROBE_MODELS", "memory_probe", "probe_averages", "row_profile"]

MEMORIES = ("random real users", "summary", "all users")
"""What :func:`memory_probe` fits each model on."""
PROBE_MODELS = ("∞-AE", "MVAE")
_CACHE_VERSION = 1  # bump when a cached probe row changes meaning


def row_profile(X: Any) -> dict[str, float]:
    """How a set of rows looks to a multinomial likelihood: mean row mass ``Σ_i x_ui``, mean non-zeros per row,
    and the mean normalised entropy of ``x_u / Σ_i x_ui`` (1: spread evenly over the row's non-zeros).

    Args:
        X: ``(n_rows, n_items)`` non-negative rows (binary data rows, or a soft DISTILL-CF support).
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    X.eliminate_zeros()
    mass = np.asarray(X.sum(axis=1)).ravel()
    nnz = np.diff(X.indptr)
    keep = (mass > 0) & (nnz > 1)
    entropy = []
    for u in np.flatnonzero(keep):
        p = X.data[X.indptr[u]:X.indptr[u + 1]] / mass[u]
        entropy.append(float(-(p * np.log(p)).sum() / np.log(nnz[u])))
    return {"rows": int(X.shape[0]), "mass": float(mass.mean()) if X.shape[0] else 0.0,
            "nonzeros": float(nnz.mean()) if X.shape[0] else 0.0,
            "entropy": float(np.mean(entropy)) if entropy else float("nan")}


def memory_probe(split: PeriodSplit, config: DistillConfig, *, mvae: dict[str, Any],
                 periods: Sequence[int] | None = None,
                 holdout: float = 0.1, seed: int = 0, ks: Sequence[int] = (10, 100),
                 cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Fit ∞-AE and MVAE on each memory of each summarised period and score them on the period's held-out items.

    Args:
        split: the periods.
        config: DISTILL-CF's configuration (``budget`` = N); the summaries are
            :func:`~infae_kit.experiments.continual_models.period_summary`'s (cached under ``cache_dir``).
        mvae: :class:`~infae_kit.experiments.continual_mvae.ContinualMVAE` keyword arguments (``seed`` is
            replaced by ``seed + p``).
        periods: the periods p summarised (default: 0..K−3, those the continual loop summarises).
        holdout, seed: of the period's split into distillation train and validation (:func:`period_dataset`).
        ks: metric cut-offs.
        cache_dir: the continual loop's cache folder: the summaries are read from (or written to)
            ``cache_dir/distill_cache`` as :func:`~infae_kit.experiments.continual_models.run_continual` keeps them,
            and each period's probe rows are kept in ``cache_dir/continual_probe`` (a rerun with the same
            settings fits nothing; a damaged entry is set aside and recomputed).

    Returns:
        One dict per (period, model, memory): ``period``, ``model`` (:data:`PROBE_MODELS`), ``memory``
        (:data:`MEMORIES`), ``rows`` (fitted on), ``lambda`` (∞-AE's, else None), ``n_users`` (scored), and the
        metrics (%).
    """
    periods = list(range(split.n_periods - 2)) if periods is None else [int(p) for p in periods]
    if not periods:
        raise ParameterError("periods is empty: name at least one period to probe.")
    mvae = {k: v for k, v in dict(mvae).items() if k not in ("seed", "progress")}
    mvae_config = ContinualMVAE(**mvae).config()  # also validates the configuration before anything runs
    cache = (check_cache_format(Path(cache_dir) / "continual_probe", "continual-probe", _CACHE_VERSION, "*.json")
             if cache_dir is not None else None)
    out = []
    for p in periods:
        data = period_dataset(split, p, holdout, seed)
        key = {"version": _CACHE_VERSION, "data": dataset_fingerprint(data),
               "validation": dataset_fingerprint(data.val),
               "distill": config.to_dict(), "mvae": mvae_config, "holdout": float(holdout),
               "seed": int(seed), "ks": [int(k) for k in ks], "period": int(p)}
        path = entry_path(cache, f"{split.name or 'data'}-p{p}", key, ".json") if cache is not None else None
        saved = read_keyed_row(path, key) if path is not None else None
        if saved is not None:
            out += saved["rows"]
            continue
        first = len(out)
        support, _ = period_summary(split, p, config, holdout=holdout, seed=seed,
                                    cache_dir=Path(cache_dir) / "distill_cache" if cache_dir is not None else None)
        _, start = initial_prior(data.train, config.budget, config.seed)
        users = np.flatnonzero(np.diff(data.val.indptr) > 0)
        context, targets = data.train[users], data.val[users]
        weights = propensity_weights(data.train)
        memories = {"random real users": data.train[start], "summary": support, "all users": data.train}
        for memory in MEMORIES:
            rows = memories[memory]
            binary = rows.nnz == 0 or bool(np.all(rows.data == 1.0))
            best = None
            for lam in config.val_lambdas:
                metrics = evaluate_rows(InfiniteAE(lam).fit(rows), context, targets, weights, ks)
                if best is None or metrics[SELECT_BY] > best[1][SELECT_BY]:
                    best = (float(lam), metrics)
            model = ContinualMVAE(**mvae, seed=int(seed) + p).fit(rows, binarize=binary)
            for name, lam, metrics in (("∞-AE", best[0], best[1]),
                                       ("MVAE", None, evaluate_rows(model, context, targets, weights, ks))):
                out.append({"period": p, "model": name, "memory": memory, "rows": int(rows.shape[0]),
                            "lambda": lam, "n_users": len(users), **metrics})
        if path is not None:
            write_keyed_row(path, key, {"rows": out[first:]})
    return out


def probe_averages(rows: Sequence[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """``{model: {memory: mean metric over periods, "summary − random": paired mean, "sem": its standard error,
    "periods summary ≥ random": count, "periods": count}}`` of :func:`memory_probe`'s rows."""
    out: dict[str, dict[str, Any]] = {}
    for model in PROBE_MODELS:
        by = {m: {r["period"]: r[metric] for r in rows if r["model"] == model and r["memory"] == m} for m in MEMORIES}
        periods = sorted(by["summary"])
        if not periods:
            continue
        gain = np.array([by["summary"][p] - by["random real users"][p] for p in periods])
        out[model] = {**{m: float(np.mean([by[m][p] for p in periods])) for m in MEMORIES},
                      "summary − random": float(gain.mean()),
                      "sem": float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else None,
                      "periods summary ≥ random": int(np.sum(gain >= 0)), "periods": len(periods)}
    return out
