"""The trained competitors of the paper's Table 1: Bias-only, MF, NeuMF, LightGCN and MVAE (Appendix B.1).

Every model follows the kit's recommender interface (:class:`infae_kit.models.baselines.Recommender`): ``fit(X)`` on a
binary users × items csr, ``predict(X_context)`` → ``(b, n_items)`` float32 scores, ``recommend(X_context, k)``
→ top-``k`` items with the context's items excluded.

* :class:`BiasOnly` — ``r̂_ui = α + β_u + β_i`` fitted by (ridge) least squares on the full binary matrix, in
  closed form. Its item ranking is item popularity, so its HR/nDCG/PSP equal PopRec's; the user bias only
  shifts the pooled AUC.
* :class:`MF` — ``α + β_u + β_i + γ_u·γ_i`` trained with BPR (Rendle et al., 2009).
* :class:`NeuMF` — ``α + β_u + β_i + φ(γ_u, γ_i)`` with φ = He et al. (2017)'s GMF ⊕ MLP tower, BPR.
* :class:`LightGCN` — He et al. (2020): layer-mean of linear propagations over the symmetrically normalised
  user–item graph, BPR with L2 on the layer-0 embeddings of the batch, optional edge dropout.
* :class:`MVAE` — Liang et al. (2018): multinomial likelihood, KL annealing to ``anneal_cap``, dropout on the
  L2-normalised input, tanh layers.

Training (all but Bias-only): JAX + optax Adam, one jit-compiled program per epoch (``lax.scan`` over
mini-batches), seeded (same seed, same scores), BPR triplets sampled vectorised in NumPy (one negative per
positive, rejected if it is a train positive), validation-based early stopping on **validation HR@100** (the
metric the kit picks every hyper-parameter by), and a tqdm progress bar. LightGCN's propagation is a sparse
product done by SciPy inside the jitted step (``jax.pure_callback`` with a custom VJP: 5× faster than XLA's
segment-sum on 2 CPU cores).

User-embedding models (MF, NeuMF, LightGCN) are *transductive*: they score the users they were fitted on, by
row index. ``predict(X_context, users=...)`` takes those indices; without ``users`` the context must hold every
fitted user in fitting order. :func:`infae_kit.evaluation.evaluate_model` passes the indices itself.
Bias-only and MVAE score any context row (fold-in).

Hyper-parameters: :data:`PAPER_GRID` is Table 3; :func:`search_competitor` does a budgeted random search over
it (plus :data:`L2_GRID`, the BPR models' L2 weight, which Table 3 does not list) on validation HR@100; :func:`recorded_config` returns the best configuration found per model × dataset,
recorded in ``infae_kit/competitor_configs.json`` (``python -m infae_kit.models.competitors search ...`` updates it).

Example:
    >>> from infae_kit.models.competitors import make_competitor
    >>> model = make_competitor("mf", latent_size=64, learning_rate=0.006).fit(data.train, validation=data.val)
    >>> top10 = model.recommend(data.train_val(), k=10)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infae_kit.checks import check_seed, parse_list, positive_int
from infae_kit.errors import DataError, ParameterError
from infae_kit.io_utils import atomic_write_json, progress_bar
from infae_kit.models.base import Recommender
from infae_kit.models.bias import BiasOnly
from infae_kit.models.lightgcn import LightGCN
from infae_kit.models.mf import MF
from infae_kit.models.mvae import MVAE
from infae_kit.models.neumf import NeuMF
from infae_kit.models.training import SELECT_BY

__all__ = [
    "COMPETITOR_NAMES",
    "PAPER_GRID",
    "L2_GRID",
    "SEARCH_GRID",
    "SEARCH_SPACE",
    "make_competitor",
    "parse_competitor_names",
    "search_competitor",
    "fit_and_evaluate_competitor",
    "recorded_config",
    "record_config",
    "CONFIGS_PATH",
]

COMPETITOR_NAMES = ("bias", "mf", "neumf", "lightgcn", "mvae")
"""Model keys, as used in the results JSON and :data:`infae_kit.evaluation.results.PAPER_TABLE1`."""

PAPER_GRID: dict[str, tuple] = {
    "latent_size": (4, 8, 16, 32, 50, 64, 128),
    "n_layers": (1, 2, 3),
    "learning_rate": (0.001, 0.006, 0.01),
    "dropout": (0.0, 0.3, 0.5),
}
"""Table 3 of the paper: the grid searched for MF, NeuMF, LightGCN and MVAE (Magazine, ML-1M, Douban)."""

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
"""Our addition to Table 3: the L2 weight of the BPR models. Table 3 lists no regularisation strength, but it
decides MF on sparse data (Magazine, validation HR@100: 4.4 at l2 = 1e-4, 7.6 at l2 = 0.1; PopRec 6.9)."""

SEARCH_GRID: dict[str, tuple] = {**PAPER_GRID, "l2": L2_GRID}
"""What :func:`search_competitor` draws from by default: :data:`PAPER_GRID` plus :data:`L2_GRID`."""

SEARCH_SPACE: dict[str, tuple[str, ...]] = {
    "bias": (),
    "mf": ("latent_size", "learning_rate", "dropout", "l2"),  # MF has no layers
    "neumf": ("latent_size", "n_layers", "learning_rate", "dropout", "l2"),
    "lightgcn": ("latent_size", "n_layers", "learning_rate", "dropout", "l2"),
    "mvae": ("latent_size", "n_layers", "learning_rate", "dropout"),
}
"""Which of :data:`SEARCH_GRID`'s hyper-parameters each model has."""

CONFIGS_PATH = Path(__file__).resolve().parent / "competitor_configs.json"
"""Best configurations found by :func:`search_competitor`, per dataset and model."""



# ----------------------------------------------------------------------------------------------------------
# factory, search, recorded configurations
# ----------------------------------------------------------------------------------------------------------
_CLASSES: dict[str, type] = {"bias": BiasOnly, "mf": MF, "neumf": NeuMF, "lightgcn": LightGCN, "mvae": MVAE}


def make_competitor(name: str, **params) -> Recommender:
    """An unfitted competitor by model key (``bias``, ``mf``, ``neumf``, ``lightgcn``, ``mvae``).

    Raises:
        ParameterError: unknown model name, unknown or invalid hyper-parameter.
    """
    if name not in _CLASSES:
        raise ParameterError(f"unknown competitor {name!r}; known: {', '.join(COMPETITOR_NAMES)}.")
    cls = _CLASSES[name]
    if name == "mf":
        params.pop("n_layers", None)  # MF has no layers; Table 3 lists one grid for all models
    try:
        return cls(**params)
    except TypeError as exc:
        raise ParameterError(f"{name}: {exc}. See help(infae_kit.models.competitors.{cls.__name__}).") from None


def parse_competitor_names(text: str | Sequence[str]) -> list[str]:
    """``"mf,mvae"`` → ``["mf", "mvae"]``; ``"all"`` → every competitor; ``""``/``"none"`` → ``[]``."""
    given = text if isinstance(text, str) else list(text)
    if not given or (isinstance(given, str) and given.strip().lower() in ("", "none")):
        return []
    items = [t.lower() for t in parse_list(given, str, "competitors")]
    if items == ["none"]:
        return []
    if items == ["all"]:
        return list(COMPETITOR_NAMES)
    unknown = [t for t in items if t not in COMPETITOR_NAMES]
    if unknown:
        raise ParameterError(
            f"unknown competitor name(s) {unknown}; use a comma-separated list of {', '.join(COMPETITOR_NAMES)}, "
            "or all, or none."
        )
    return list(dict.fromkeys(items))


def recorded_config(name: str, dataset: str, path: str | Path | None = None) -> dict[str, Any]:
    """The best configuration recorded for ``name`` on ``dataset`` (empty dict: use the class defaults).

    Datasets without a recorded entry fall back to the ``"default"`` entry of the file, if any.
    """
    parse_competitor_names([name])
    configs = _read_configs(path)
    entry = configs.get(dataset, {}).get(name) or configs.get("default", {}).get(name) or {}
    return dict(entry.get("config", {}))


def _read_configs(path=None) -> dict:
    path = Path(path) if path is not None else CONFIGS_PATH
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); fix or delete the file.") from exc


def record_config(name: str, dataset: str, config: dict, validation: dict | None = None, note: str = "",
                  path: str | Path | None = None) -> Path:
    """Record (atomically) ``config`` as the best configuration of ``name`` on ``dataset``."""
    parse_competitor_names([name])
    path = Path(path) if path is not None else CONFIGS_PATH
    configs = _read_configs(path)
    entry = {"config": dict(config)}
    if validation is not None:
        entry["validation"] = {k: round(float(v), 4) for k, v in validation.items()}
    if note:
        entry["note"] = note
    configs.setdefault(dataset, {})[name] = entry
    return atomic_write_json(path, configs)


@dataclass
class CompetitorReport:
    """One competitor trained with one configuration and evaluated with the paper's protocol."""

    name: str
    config: dict[str, Any]
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    model: Any = field(repr=False)
    test: Any = field(repr=False, default=None)
    timings_s: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    trials: list[dict] = field(default_factory=list)


def fit_and_evaluate_competitor(name: str, data, config: dict | None = None, *, seed: int | None = None,
                                progress: bool = False, keep_top_k: bool = True, test: bool = True) -> CompetitorReport:
    """Train ``name`` with ``config`` on ``data.train`` (early stopping on ``data.val``), evaluate val and test.

    Test uses train + validation as context, as for every model of the kit (the model itself is not refitted).

    Args:
        name: model key (:data:`COMPETITOR_NAMES`).
        data: a RecDataset.
        config: hyper-parameters (e.g. :func:`recorded_config`).
        seed: training seed of the trained models (initialisation, BPR negatives, dropout, batches); it
            replaces a ``seed`` in ``config``. ``None`` keeps ``config``'s or the model's default (42).
            Bias-only is fitted in closed form, deterministically: it has no seed and ignores this one.
        progress: a progress bar over the epochs.
        keep_top_k: keep the test top-k lists (for the coldness plots).
        test: also evaluate on test.
    """
    from infae_kit.evaluation.protocol import evaluate_model

    config = dict(config or {})
    if name != "bias":
        config["progress"] = progress
        if seed is not None:
            config["seed"] = check_seed(seed)
    t0 = time.perf_counter()
    model = make_competitor(name, **config).fit(data.train, validation=data.val)
    t1 = time.perf_counter()
    val = evaluate_model(model, data, "val").metrics
    test_result = evaluate_model(model, data, "test", keep_top_k=keep_top_k) if test else None
    t2 = time.perf_counter()
    config.pop("progress", None)
    return CompetitorReport(name, config, val, test_result.metrics if test else {}, model, test_result,
                            {"fit": t1 - t0, "evaluate": t2 - t1, "total": t2 - t0},
                            getattr(model, "best_epoch_", None))


def _sample_configs(name: str, n_trials: int, seed: int, grid: dict | None = None) -> list[dict]:
    keys = SEARCH_SPACE[name]
    grid = {k: tuple((grid or SEARCH_GRID)[k]) for k in keys}
    every = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if n_trials >= len(every):
        return every
    rng = np.random.default_rng([seed, COMPETITOR_NAMES.index(name)])  # models with equal grids draw differently
    return [every[i] for i in rng.choice(len(every), size=n_trials, replace=False)]


def search_competitor(name: str, data, n_trials: int = 8, *, seed: int = 0, grid: dict | None = None,
                      fixed: dict | None = None, progress: bool = False) -> CompetitorReport:
    """Budgeted random search over Table 3's grid (+ L2) on validation HR@100, then test with the best configuration.

    Args:
        name: model key.
        data: a RecDataset.
        n_trials: configurations drawn without replacement from the model's grid (all of them if the grid is
            smaller); Bias-only has no grid and is fitted once.
        seed: seed of the draw (each model is trained with its own ``seed``, default 42).
        grid: override :data:`SEARCH_GRID` (same keys).
        fixed: training parameters shared by every trial (``epochs``, ``batch_size``, ...).
        progress: a progress bar over trials.

    Returns:
        The best trial's :class:`CompetitorReport`, with ``trials`` listing every configuration's validation
        metrics and training time.
    """
    n_trials = positive_int("n_trials", n_trials)
    configs = [{}] if name == "bias" else _sample_configs(name, n_trials, seed, grid)
    trials, best = [], None
    bar = progress_bar(configs, desc=f"{name} search", enabled=progress)
    for config in bar:
        full = {**(fixed or {}), **config}
        report = fit_and_evaluate_competitor(name, data, full, test=False)
        trials.append({"config": full, "val": report.val_metrics, "fit_s": report.timings_s["fit"],
                       "best_epoch": report.best_epoch})
        if best is None or report.val_metrics[SELECT_BY] > best.val_metrics[SELECT_BY]:
            best = report
    bar.finish()
    from infae_kit.evaluation.protocol import evaluate_model

    test = evaluate_model(best.model, data, "test", keep_top_k=True)
    best.test, best.test_metrics, best.trials = test, test.metrics, trials
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infae_kit.models.competitors search --dataset magazine --models mf,mvae --trials 8 [--record]``."""
    parser = argparse.ArgumentParser(prog="python -m infae_kit.models.competitors")
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="random search over Table 3's grid on validation HR@100")
    search.add_argument("--dataset", required=True)
    search.add_argument("--models", default="all", help="comma-separated model keys, or all")
    search.add_argument("--trials", type=int, default=8)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--fixed", default="{}", help='JSON of shared training parameters, e.g. {"epochs": 60}')
    search.add_argument("--record", action="store_true", help="record each best configuration in the repo")
    search.add_argument("--out", type=Path, default=None, help="write every trial and the test metrics here (JSON)")
    args = parser.parse_args(argv)

    from infae_kit.data import load_dataset

    data = load_dataset(args.dataset)
    fixed = json.loads(args.fixed)
    summary = {}
    for name in parse_competitor_names(args.models):
        t0 = time.perf_counter()
        report = search_competitor(name, data, args.trials, seed=args.seed, fixed=fixed, progress=True)
        elapsed = time.perf_counter() - t0
        print(f"{args.dataset} {name}: best {report.config} val HR@100 {report.val_metrics[SELECT_BY]:.2f} "
              f"test HR@10 {report.test_metrics['HR@10']:.2f} NDCG@10 {report.test_metrics['NDCG@10']:.2f} "
              f"({len(report.trials)} trials, {elapsed:.0f} s)", flush=True)
        summary[name] = {"best": report.config, "val": report.val_metrics, "test": report.test_metrics,
                         "trials": report.trials, "search_s": elapsed}
        if args.record:
            record_config(name, args.dataset, report.config, {SELECT_BY: report.val_metrics[SELECT_BY]},
                          note=f"random search, {len(report.trials)} trials of Table 3's grid, seed {args.seed}, "
                               f"fixed {fixed}")
        if args.out is not None:
            atomic_write_json(args.out, {"dataset": args.dataset, "models": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
