"""Benchmark: the paper's Netflix protocol against landmark ∞-AE and EASE, end to end, on ``netflix-shape``.

    python benchmarks/bench_netflix_protocol.py --dataset netflix-shape --landmarks 2000 --eval-users 50000

Every model is evaluated on the same seeded ``--eval-users`` users (validation and test items, AUC negatives),
each in a fresh process with its own peak RSS and wall time:

1. ``infae_landmark``: landmark ∞-AE through the command line users run (``python -m infae_kit.scale fit``):
   every user a regression target, ``--landmarks`` uniform landmark users, λ picked on the validation items of
   the evaluated users. The wall time includes loading (or building) the dataset and its user-rows cache.
2. ``infae_sampled``: ∞-AE on ``--user-budget`` sampled users (the paper's protocol for Netflix: 25,000 random
   users).
3. ``ease``: EASE on every user (the item × item Gram is computed once for the whole λ grid).
4. With ``--support DIR`` (a saved DISTILL-CF summary, e.g. from ``make distill-netflix-shape``):
   ``infae_distilled`` (∞-AE fitted on the μ synthetic users, the paper's DISTILL-CF row), ``ease_distilled``
   (EASE fitted on them) and ``infae_landmark_distilled`` (landmark ∞-AE with the synthetic users as the
   basis and every real user a target, ``--support`` of the command line).

For 2–4 (except the landmark fit) each λ of the paper's grid costs a dense ``users × items`` scoring pass, so λ is picked on the
validation items of a seeded ``--val-users`` subset of the evaluated users; the test metrics use all of them.
Both use the paper's λ grids and the paper's evaluation (train + validation as the test context).
``--models`` runs a subset; the results are merged into ``benchmarks/results/netflix_protocol-<dataset>.json``
(written atomically), so the three can run at different times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_info  # noqa: E402

from infae_kit.io_utils import atomic_write_json  # noqa: E402


def run_landmark(args, support: Path | None = None) -> dict:
    """Landmark ∞-AE through ``python -m infae_kit.scale fit`` in a fresh process: its results JSON and wall time
    (uniform landmarks, or the rows of the DISTILL-CF summary ``support``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "landmark.json"
        basis = ["--landmarks", str(args.landmarks), "--selection", "uniform"] if support is None else [
            "--support", str(support)]
        cmd = [sys.executable, "-m", "infae_kit.scale", "fit", "--dataset", args.dataset, *basis,
               "--eval-users", str(args.eval_users), "--select-users", str(args.val_users),
               "--lambdas", args.landmark_lambdas, "--block-users", str(args.block_users), "--seed", str(args.seed),
               "--output", str(out), "--quiet", "--timeout", "3600"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t
        record = json.loads(out.read_text())
    return {"command": " ".join(cmd[1:]).replace(str(out), "OUT.json"), "wall_s": wall, "metrics": record["metrics"],
            "peak_rss_gb": record["peak_rss_gb"], "timings_s": record["timings_s"],
            "best_lambda": record["best_lambda"], "n_users_trained": record["n_users_trained"],
            "n_users_evaluated": record["n_users_evaluated"], "n_users_selection": record["n_users_selection"],
            "landmarks": record["landmarks"], "selection": record["selection"], "val_by_lambda": record["val_by_lambda"]}


MODELS = ("infae_landmark", "infae_sampled", "ease", "infae_distilled", "ease_distilled", "infae_landmark_distilled")
DEFAULT_MODELS = MODELS[:3]
RUNNER = {"infae_sampled": "infae_sampled", "ease": "ease", "infae_distilled": "infae_sampled",
          "ease_distilled": "ease"}  # model → the in-process runner (--only) that fits it


def _evaluated_subsets(args):
    """The dataset, its evaluated users as a sub-dataset, and the λ-selection subset of those."""
    import dataclasses

    from infae_kit.data import load_dataset
    from infae_kit.models.landmark import evaluated_and_selection_users

    data = load_dataset(args.dataset, seed=args.seed)

    def subset(users):
        negatives = data.auc_negatives(50, 42)[users]
        sub = dataclasses.replace(data, train=data.train[users], val=data.val[users], test=data.test[users],
                                  user_ids=data.user_ids[users], interactions=None, _auc_negatives_cache={})
        sub._auc_negatives_cache[(50, 42)] = negatives
        return sub

    # The evaluated and λ-selection users of tune_and_evaluate_landmark(eval_users=…, select_users=…, eval_seed=0).
    users, val_users = evaluated_and_selection_users(data.n_users, args.eval_users, args.val_users)
    return data, subset(users), subset(val_users)


def _summary(args):
    from infae_kit.distill import load_distilled

    return load_distilled(args.support)


def run_sampled(args) -> dict:
    """∞-AE on ``user_budget`` random users (or on the summary's synthetic users when ``args.support`` is set):
    λ on the selection subset, test on every evaluated user (all users, exact ∞-AE, when ``user_budget`` is at
    least the number of users)."""
    from infae_kit.evaluation.protocol import evaluate_model
    from infae_kit.io_utils import peak_rss_bytes
    from infae_kit.models.infinite_ae import (
        PAPER_LAMBDA_GRID,
        tune_and_evaluate_infinite_ae,
    )

    t0 = time.perf_counter()
    data, evaluated, selection = _evaluated_subsets(args)
    t_load = time.perf_counter() - t0
    if args.support is None and args.user_budget >= data.n_users:
        train = data.train
    elif args.support is None:
        sampled = np.sort(np.random.default_rng(args.seed).choice(data.n_users, size=args.user_budget, replace=False))
        train = data.train[sampled]
    else:
        train = _summary(args).best_support
    t = time.perf_counter()
    report = tune_and_evaluate_infinite_ae(selection, lambdas=PAPER_LAMBDA_GRID, train=train,
                                           evaluate_test=False, progress=False)
    t_select = time.perf_counter() - t
    t = time.perf_counter()
    test = evaluate_model(report.model, evaluated, "test", n_negatives=50, negatives_seed=42)
    t_test = time.perf_counter() - t
    return {"wall_s": time.perf_counter() - t0, "load_s": t_load, "select_s": t_select, "test_s": t_test,
            "metrics": {"val": report.best_val_metrics, "test": test.metrics},
            "val_by_lambda": {f"{lam:g}": m for lam, m in report.val_metrics.items()},
            "best_lambda": report.best_value, "n_users_trained": int(train.shape[0]),
            "n_users_selection": int(selection.n_users), "n_users_evaluated": int(evaluated.n_users),
            "peak_rss_gb": peak_rss_bytes() / 1e9}


def run_ease(args) -> dict:
    """EASE on every user (or on the summary's synthetic users when ``args.support`` is set): one item Gram for the whole grid, λ on the selection subset, test on every evaluated user."""
    from infae_kit.evaluation.protocol import evaluate_model
    from infae_kit.evaluation.selection import select_on_validation
    from infae_kit.io_utils import peak_rss_bytes
    from infae_kit.models.baselines import EASE, EASE_LAMBDA_GRID, item_gram

    t0 = time.perf_counter()
    data, evaluated, selection = _evaluated_subsets(args)
    t_load = time.perf_counter() - t0
    train = data.train if args.support is None else _summary(args).best_support
    t = time.perf_counter()
    gram = item_gram(train)
    t_gram = time.perf_counter() - t
    fit_s = {}

    def validate(lam):
        t = time.perf_counter()
        model = EASE(lam).fit(train, gram=gram.copy())
        fit_s[f"{lam:g}"] = time.perf_counter() - t
        metrics = evaluate_model(model, selection, "val", n_negatives=50, negatives_seed=42).metrics
        print(f"EASE λ={lam:g}: validation HR@100 {metrics['HR@100']:.2f}", file=sys.stderr, flush=True)
        return metrics, model

    chosen = select_on_validation(EASE_LAMBDA_GRID, validate, select_by="HR@100")
    gram = None  # free the Gram before the test pass
    lam, model = chosen.best_value, chosen.best_state
    val_metrics = chosen.val_metrics[lam]
    val_by_lambda = {f"{v:g}": m for v, m in chosen.val_metrics.items()}
    t = time.perf_counter()
    test = evaluate_model(model, evaluated, "test", n_negatives=50, negatives_seed=42)
    t_test = time.perf_counter() - t
    return {"wall_s": time.perf_counter() - t0, "load_s": t_load, "gram_s": t_gram, "fit_s": fit_s,
            "test_s": t_test, "metrics": {"val": val_metrics, "test": test.metrics}, "val_by_lambda": val_by_lambda,
            "best_lambda": lam, "n_users_trained": int(train.shape[0]), "n_users_selection": int(selection.n_users),
            "n_users_evaluated": int(evaluated.n_users), "peak_rss_gb": peak_rss_bytes() / 1e9}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="netflix-shape")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--landmarks", type=int, default=2000)
    ap.add_argument("--block-users", type=int, default=8192)
    ap.add_argument("--eval-users", type=int, default=50_000)
    ap.add_argument("--val-users", type=int, default=10_000,
                    help="evaluated users whose validation items pick λ (the same seeded users for every model)")
    ap.add_argument("--landmark-lambdas", default="20,50,100,200,500", help="λ grid of landmark ∞-AE")
    ap.add_argument("--user-budget", type=int, default=25_000)
    ap.add_argument("--support", type=Path, default=None,
                    help="a saved DISTILL-CF summary (folder with support.npz) for the *_distilled models")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--only", choices=["infae_sampled", "ease"], default=None, help="run one model here (internal)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    if args.only is not None:
        print(json.dumps({"infae_sampled": run_sampled, "ease": run_ease}[args.only](args)))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}: choose from {', '.join(MODELS)}")
    if any(m.endswith("_distilled") for m in models) and (args.support is None or
                                                         not (args.support / "support.npz").is_file()):
        ap.error("the *_distilled models need --support DIR, a saved DISTILL-CF summary (a folder with support.npz)")
    record_path = args.out / f"netflix_protocol-{args.dataset}.json"
    settings = {"dataset": args.dataset, "eval_users": args.eval_users, "val_users": args.val_users,
                "user_budget": args.user_budget, "seed": args.seed}  # m is each landmark run's own (its "landmarks")
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if any(record.get(k) != v for k, v in settings.items()):
        record = {}  # another configuration: start a fresh record rather than mix settings
    record.pop("landmarks", None)  # an older record's top-level m
    record.update(settings)
    record["machine"] = machine_info()
    for model in models:
        print(f"{model} ...", flush=True)
        distilled = model.endswith("_distilled")
        if model.startswith("infae_landmark"):
            record[model] = run_landmark(args, args.support if distilled else None)
            test = record[model]["metrics"]["infae_landmark"]["test"]
        else:
            cmd = [sys.executable, __file__, "--dataset", args.dataset, "--seed", str(args.seed), "--eval-users",
                   str(args.eval_users), "--val-users", str(args.val_users), "--user-budget", str(args.user_budget),
                   "--only", RUNNER[model]]
            if distilled:
                cmd += ["--support", str(args.support)]
            done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
            record[model] = json.loads(done.stdout.strip().splitlines()[-1])
            test = record[model]["metrics"]["test"]
        if distilled:
            card = json.loads((args.support / "datacard.json").read_text())
            record[model]["summary"] = {"folder": args.support.name, **{k: card.get(k) for k in (
                "budget", "gamma", "tau", "steps_run", "best_step", "best_lambda", "timings")}}
        print(json.dumps(test), flush=True)
        atomic_write_json(record_path, record)
    print(f"wrote {record_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
