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
it (plus :data:`L2_GRID`, the BPR models' L2 weight, which Table 3 does not list), or tries given
configurations (``configs``: e.g. NeuMF's pre-training options around its recorded configuration), on
validation HR@100, optionally resumable from a trials file; :func:`recorded_config` returns the best
configuration found per model × dataset, recorded in ``infae_kit/competitor_configs.json``
(``python -m infae_kit.models.competitors search ...`` updates it).

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
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from infae_kit.checks import check_seed, parse_list, positive_int
from infae_kit.errors import DataError, ParameterError
from infae_kit.io_utils import atomic_write_json
from infae_kit.models.base import Recommender
from infae_kit.models.bias import BiasOnly
from infae_kit.models.lightgcn import LightGCN
from infae_kit.models.mf import MF
from infae_kit.models.mvae import MVAE
from infae_kit.models.neumf import NeuMF
from infae_kit.models.training import SELECT_BY

if TYPE_CHECKING:
    from infae_kit.data.dataset import RecDataset

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


def make_competitor(name: str, **params: Any) -> Recommender:
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


def fit_and_evaluate_competitor(name: str, data: RecDataset, config: dict | None = None, *, seed: int | None = None,
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


def search_competitor(name: str, data: RecDataset, n_trials: int = 8, *, seed: int = 0, grid: dict | None = None,
                      fixed: dict | None = None, configs: Sequence[dict] | None = None,
                      trials_path: str | Path | None = None, test_trials: bool = False,
                      progress: bool = False) -> CompetitorReport:
    """Search on validation HR@100 (a budgeted random draw from Table 3's grid + L2, or the given
    configurations), then test with the best configuration.

    Args:
        name: model key.
        data: a RecDataset.
        n_trials: configurations drawn without replacement from the model's grid (all of them if the grid is
            smaller); Bias-only has no grid and is fitted once. Unused with ``configs``.
        seed: seed of the draw (each model is trained with its own ``seed``, default 42).
        grid: override :data:`SEARCH_GRID` (same keys).
        fixed: training parameters shared by every trial (``epochs``, ``batch_size``, ...).
        configs: the configurations to try, in order, instead of a draw from the grid (each a dict of the
            model's hyper-parameters, ``fixed`` underneath): e.g. NeuMF's pre-training options around its
            recorded configuration.
        trials_path: a JSON file that holds every finished trial (written atomically after each one). A
            search started again with the same file skips the configurations it holds for this model and
            dataset (a search interrupted halfway resumes); when the best trial is one of them, it is trained
            again at the end (seeded: the same model).
        test_trials: also evaluate every trial on test (``trials[i]["test"]``; the selection still reads
            validation only): the table behind an ablation.
        progress: a progress bar over trials.

    Returns:
        The best trial's :class:`CompetitorReport` (the first of equal ones), with ``trials`` listing every
        configuration's validation metrics (and test metrics with ``test_trials``), training time and best epoch.

    Raises:
        ParameterError: ``configs`` not a non-empty list of dicts, or an invalid configuration.
    """
    from infae_kit.evaluation.protocol import evaluate_model
    from infae_kit.evaluation.selection import select_on_validation

    if configs is not None:
        if (isinstance(configs, (str, dict)) or not len(configs)
                or not all(isinstance(c, dict) for c in configs)):
            raise ParameterError(f"configs must be a non-empty list of dicts of hyper-parameters, got {configs!r}.")
        configs = [dict(c) for c in configs]
    elif name == "bias":
        configs = [{}]
    else:
        configs = _sample_configs(name, positive_int("n_trials", n_trials), seed, grid)
    identity = {"model": name, "dataset": str(getattr(data, "name", "")), "shape": list(data.train.shape),
                "train_nnz": int(data.train.nnz)}
    done = _read_trials(trials_path, identity)
    trials: list[dict] = []

    def validate(i: int):
        full = {**(fixed or {}), **configs[i]}
        trial, report = done.get(json.dumps(full, sort_keys=True)), None
        if trial is None:
            report = fit_and_evaluate_competitor(name, data, full, test=test_trials, keep_top_k=False)
            trial = {"config": full, "val": report.val_metrics, "fit_s": report.timings_s["fit"],
                     "best_epoch": report.best_epoch}
            if test_trials:
                trial["test"] = report.test_metrics
        trials.append(trial)
        if trials_path is not None:
            ran = {json.dumps(x["config"], sort_keys=True) for x in trials}
            kept = [t for k, t in done.items() if k not in ran]
            atomic_write_json(trials_path, {**identity, "trials": trials + kept})
        return trial["val"], (trial, report)

    best_trial, best = select_on_validation(range(len(configs)), validate, select_by=SELECT_BY, progress=progress,
                                            desc=f"{name} search").best_state
    if best is None:  # the best trial was read from trials_path: train it again (seeded, so the same model)
        best = fit_and_evaluate_competitor(name, data, best_trial["config"], test=False)

    test = evaluate_model(best.model, data, "test", keep_top_k=True)
    best.test, best.test_metrics, best.trials = test, test.metrics, trials
    return best


def _read_trials(path, identity: dict) -> dict[str, dict]:
    """The trials a search wrote to ``path`` for the same model and data, by configuration (JSON, sorted keys)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
        trials = stored["trials"]
        same = all(stored.get(k) == v for k, v in identity.items())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a trials file of this search ({exc}); delete it or pass another "
                        "trials_path.") from None
    if not same:
        raise DataError(
            f"{path} holds trials of {stored.get('model')!r} on {stored.get('dataset')!r} "
            f"{stored.get('shape')}, not of this search ({identity['model']!r} on {identity['dataset']!r} "
            f"{identity['shape']}): pass another trials_path."
        )
    return {json.dumps(t["config"], sort_keys=True): t for t in trials}


def _parse_configs(text: str | None) -> list[dict] | None:
    """``--configs``: JSON text of a list of dicts, or the path of a JSON file holding one."""
    if text is None:
        return None
    source = "--configs"
    if not text.lstrip().startswith("["):
        path = Path(text)
        if not path.is_file():
            raise ParameterError(f"--configs must be a JSON list of dicts or a JSON file; {text!r} is neither.")
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        configs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{source}: not valid JSON ({exc.msg}, column {exc.colno}).") from None
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise ParameterError(f"{source} must hold a JSON list of dicts, got {type(configs).__name__}.")
    return configs


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infae_kit.models.competitors search --dataset magazine --models mf,mvae --trials 8 [--record]``.

    ``--configs '[{}, {"pretrain": true}]' --from-recorded`` tries the given changes to each model's recorded
    configuration instead of a random draw (NeuMF's pre-training options, for example).
    """
    parser = argparse.ArgumentParser(prog="python -m infae_kit.models.competitors")
    sub = parser.add_subparsers(dest="command", required=True)
    search = sub.add_parser("search", help="random search over Table 3's grid on validation HR@100")
    search.add_argument("--dataset", required=True)
    search.add_argument("--models", default="all", help="comma-separated model keys, or all")
    search.add_argument("--trials", type=int, default=8)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--fixed", default="{}", help='JSON of shared training parameters, e.g. {"epochs": 60}')
    search.add_argument("--configs", default=None,
                        help="configurations to try instead of a random draw: a JSON list of dicts, or a JSON file "
                             "holding one; with --from-recorded each is applied over the recorded configuration")
    search.add_argument("--from-recorded", action="store_true",
                        help="--configs are changes to the model's recorded configuration for --dataset")
    search.add_argument("--trials-dir", type=Path, default=None,
                        help="keep every finished trial in <dir>/<dataset>-<model>.json; a rerun resumes from it")
    search.add_argument("--test-every-trial", action="store_true",
                        help="evaluate every trial on test too (the selection still reads validation only)")
    search.add_argument("--record", action="store_true", help="record each best configuration in the repo")
    search.add_argument("--out", type=Path, default=None, help="write every trial and the test metrics here (JSON)")
    args = parser.parse_args(argv)

    from infae_kit.data import load_dataset

    fixed = json.loads(args.fixed)
    variants = _parse_configs(args.configs)
    if args.from_recorded and variants is None:
        parser.error("--from-recorded needs --configs (the changes to try).")
    data = load_dataset(args.dataset)
    summary = {}
    for name in parse_competitor_names(args.models):
        configs = variants
        if variants is not None and args.from_recorded:
            configs = [{**recorded_config(name, args.dataset), **v} for v in variants]
        t0 = time.perf_counter()
        trials_path = None if args.trials_dir is None else args.trials_dir / f"{args.dataset}-{name}.json"
        report = search_competitor(name, data, args.trials, seed=args.seed, fixed=fixed, configs=configs,
                                   trials_path=trials_path, test_trials=args.test_every_trial, progress=True)
        elapsed = time.perf_counter() - t0
        print(f"{args.dataset} {name}: best {report.config} val HR@100 {report.val_metrics[SELECT_BY]:.2f} "
              f"test HR@10 {report.test_metrics['HR@10']:.2f} NDCG@10 {report.test_metrics['NDCG@10']:.2f} "
              f"({len(report.trials)} trials, {elapsed:.0f} s)", flush=True)
        for trial in report.trials:
            test = trial.get("test")
            print(f"  {json.dumps(trial['config'], sort_keys=True)}: val {SELECT_BY} {trial['val'][SELECT_BY]:.2f}"
                  + (f", test HR@10 {test['HR@10']:.2f} NDCG@10 {test['NDCG@10']:.2f}" if test else "")
                  + f", best epoch {trial['best_epoch']}, fit {trial['fit_s']:.0f} s", flush=True)
        summary[name] = {"best": report.config, "val": report.val_metrics, "test": report.test_metrics,
                         "trials": report.trials, "search_s": elapsed}
        if args.record:
            how = (f"random search, {len(report.trials)} trials of Table 3's grid, seed {args.seed}"
                   if configs is None else
                   f"search over {len(report.trials)} given configurations "
                   f"({'changes to the recorded one: ' if args.from_recorded else ''}{json.dumps(variants)})")
            record_config(name, args.dataset, report.config, {SELECT_BY: report.val_metrics[SELECT_BY]},
                          note=f"{how}, fixed {fixed}")
        if args.out is not None:
            atomic_write_json(args.out, {"dataset": args.dataset, "models": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
