"""Benchmark: the paper's Netflix protocol against landmark ∞-AE, end to end, on ``netflix-shape``.

    python benchmarks/bench_netflix_protocol.py --dataset netflix-shape --landmarks 2000 --eval-users 50000

Two fresh processes, each with its own peak RSS and wall time:

1. **landmark ∞-AE** through the command line users run (``python -m infae_kit.scale fit``): every user a
   regression target, ``--landmarks`` uniform landmark users, λ picked on the validation items of the seeded
   ``--eval-users`` sample, test metrics on the same sample. The wall time includes loading (or building) the
   dataset and its user-rows cache.
2. **∞-AE on ``--user-budget`` sampled users** (the paper's protocol for Netflix: 25,000 random users), λ picked
   on the same validation users, test on the same users, with the same AUC negatives.

Both use the paper's λ grid and the paper's evaluation (train + validation as the test context). Writes
``benchmarks/results/netflix_protocol-<dataset>.json`` atomically.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_info  # noqa: E402

from infae_kit.io_utils import atomic_write_json  # noqa: E402


def run_landmark(args) -> dict:
    """Landmark ∞-AE through ``python -m infae_kit.scale fit`` in a fresh process: its results JSON and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "landmark.json"
        cmd = [sys.executable, "-m", "infae_kit.scale", "fit", "--dataset", args.dataset, "--landmarks",
               str(args.landmarks), "--selection", "uniform", "--eval-users", str(args.eval_users),
               "--block-users", str(args.block_users), "--seed", str(args.seed), "--output", str(out), "--quiet",
               "--timeout", "3600"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t
        record = json.loads(out.read_text())
    return {"command": " ".join(cmd[1:]).replace(str(out), "OUT.json"), "wall_s": wall, "metrics": record["metrics"],
            "peak_rss_gb": record["peak_rss_gb"], "timings_s": record["timings_s"],
            "best_lambda": record["best_lambda"], "n_users_trained": record["n_users_trained"],
            "n_users_evaluated": record["n_users_evaluated"]}


def run_sampled(args) -> dict:
    """∞-AE on ``user_budget`` random users, evaluated on the landmark run's user sample (this process)."""
    import dataclasses

    import numpy as np

    from infae_kit.data import load_dataset
    from infae_kit.io_utils import peak_rss_bytes
    from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID, tune_and_evaluate_infinite_ae
    from infae_kit.models.landmark import evaluation_users

    t0 = time.perf_counter()
    data = load_dataset(args.dataset, seed=args.seed)
    t_load = time.perf_counter() - t0
    # The evaluated users and AUC negatives of tune_and_evaluate_landmark(eval_users=…, eval_seed=0).
    users = evaluation_users(data.n_users, args.eval_users, 0)
    negatives = data.auc_negatives(50, 42)[users]
    sub = dataclasses.replace(data, train=data.train[users], val=data.val[users], test=data.test[users],
                              user_ids=data.user_ids[users], interactions=None, _auc_negatives_cache={})
    sub._auc_negatives_cache[(50, 42)] = negatives
    sampled = np.sort(np.random.default_rng(args.seed).choice(data.n_users, size=args.user_budget, replace=False))
    t = time.perf_counter()
    report = tune_and_evaluate_infinite_ae(sub, lambdas=PAPER_LAMBDA_GRID, train=data.train[sampled],
                                           progress=False)
    fit_eval = time.perf_counter() - t
    return {"wall_s": time.perf_counter() - t0, "load_s": t_load, "fit_and_evaluate_s": fit_eval,
            "metrics": {"val": report.best_val_metrics, "test": report.test_metrics},
            "best_lambda": report.best_value, "n_users_trained": int(args.user_budget),
            "n_users_evaluated": int(args.eval_users), "peak_rss_gb": peak_rss_bytes() / 1e9}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="netflix-shape")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--landmarks", type=int, default=2000)
    ap.add_argument("--block-users", type=int, default=8192)
    ap.add_argument("--eval-users", type=int, default=50_000)
    ap.add_argument("--user-budget", type=int, default=25_000)
    ap.add_argument("--only", choices=["landmark", "sampled"], default=None, help="run one side (internal)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    if args.only == "sampled":
        print(json.dumps(run_sampled(args)))
        return 0
    record_path = args.out / f"netflix_protocol-{args.dataset}.json"
    record = {"dataset": args.dataset, "landmarks": args.landmarks, "eval_users": args.eval_users,
              "user_budget": args.user_budget, "machine": machine_info()}
    print(f"landmark ∞-AE, m = {args.landmarks:,}, every user a target ...", flush=True)
    record["infae_landmark"] = run_landmark(args)
    print(json.dumps(record["infae_landmark"]["metrics"]["infae_landmark"]["test"]), flush=True)
    print(f"∞-AE on {args.user_budget:,} sampled users ...", flush=True)
    cmd = [sys.executable, __file__, "--dataset", args.dataset, "--seed", str(args.seed), "--eval-users",
           str(args.eval_users), "--user-budget", str(args.user_budget), "--only", "sampled"]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    record["infae_sampled"] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(record["infae_sampled"]["metrics"]["test"]), flush=True)
    atomic_write_json(record_path, record)
    print(f"wrote {record_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
