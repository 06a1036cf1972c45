"""Benchmark: training time and peak memory of each Table 1 competitor (Bias-only, MF, NeuMF, LightGCN, MVAE).

    python benchmarks/bench_competitors.py --dataset ml-1m [--models all] [--config recorded]

Each model runs in its own Python process (so that its peak resident memory is its own), with the
configuration recorded in the kit for the dataset (``infae_kit/competitor_configs.json``, parts of it
overridable with ``--config``): train on the train split with early stopping on validation HR@100, then the test pass. Prints one line per model and writes
``benchmarks/results/competitors-<dataset>.json`` (atomically) with, per model: fit time, epochs run, best
epoch, seconds per epoch (fit time / epochs, validation passes included), evaluation time, peak RSS, the RSS
after loading the data (the process's baseline: Python + JAX + data) and the test metrics. Models measured
earlier and not in ``--models`` are kept in the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_one(dataset: str, name: str, config_json: str | None) -> dict:
    """Train and evaluate one model in this process; returns the measurements."""
    from infae_kit.models.competitors import fit_and_evaluate_competitor, recorded_config
    from infae_kit.data import load_dataset

    t0 = time.perf_counter()
    data = load_dataset(dataset)
    data.auc_negatives()  # cached by the dataset: not part of the model's time
    t_load = time.perf_counter() - t0
    rss_loaded = peak_rss_bytes()
    config = {**recorded_config(name, dataset), **(json.loads(config_json) if config_json else {})}
    if name == "bias":  # closed form: no training loop parameters
        config = {k: v for k, v in config.items() if k == "ridge"}
    report = fit_and_evaluate_competitor(name, data, config, keep_top_k=False)
    history = getattr(report.model, "history_", [])
    epochs = history[-1]["epoch"] if history else 0
    return {
        "model": name,
        "config": report.config,
        "load_s": t_load,
        "fit_s": report.timings_s["fit"],
        "evaluate_s": report.timings_s["evaluate"],
        "epochs_run": epochs,
        "best_epoch": report.best_epoch,
        "s_per_epoch": report.timings_s["fit"] / epochs if epochs else None,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_after_load_bytes": rss_loaded,
        "val_metrics": report.val_metrics,
        "test_metrics": report.test_metrics,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--models", default="all", help="comma-separated model keys, or all")
    ap.add_argument("--config", default=None,
                    help='JSON overriding parts of each recorded configuration, e.g. {"epochs": 20}')
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    ap.add_argument("--single", default=None, help=argparse.SUPPRESS)  # internal: run one model, print JSON
    args = ap.parse_args(argv)

    if args.single:
        print("RESULT " + json.dumps(run_one(args.dataset, args.single, args.config)), flush=True)
        return 0

    from infae_kit.models.competitors import parse_competitor_names
    from infae_kit.io_utils import atomic_write_json

    results = {}
    for name in parse_competitor_names(args.models):
        cmd = [sys.executable, __file__, "--dataset", args.dataset, "--single", name]
        if args.config:
            cmd += ["--config", args.config]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        wall = time.perf_counter() - t0
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"{name}: FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        result = json.loads(lines[-1][len("RESULT "):])
        result["process_wall_s"] = wall
        results[name] = result
        m = result["test_metrics"]
        print(f"{name:9s} fit {result['fit_s']:7.1f} s ({result['epochs_run']} epochs, best {result['best_epoch']}, "
              f"{result['s_per_epoch'] or 0:.2f} s/epoch)  eval {result['evaluate_s']:5.1f} s  "
              f"peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB (after load {result['rss_after_load_bytes'] / 1e9:.2f})"
              f"  test HR@10 {m['HR@10']:.2f} NDCG@10 {m['NDCG@10']:.2f}", flush=True)
    import jax
    import numpy as np

    out = args.out / f"competitors-{args.dataset}.json"
    if out.exists():  # keep the models this run did not measure
        results = {**json.loads(out.read_text(encoding="utf-8")).get("models", {}), **results}
    atomic_write_json(out, {
        "dataset": args.dataset,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "jax": jax.__version__, "numpy": np.__version__, "load_average_at_end": os.getloadavg()},
        "models": results,
    })
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
