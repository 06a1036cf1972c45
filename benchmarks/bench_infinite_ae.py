"""Benchmark: ∞-AE end to end (load → kernel → λ grid on validation → test), with a stage breakdown.

    python benchmarks/bench_infinite_ae.py --dataset ml-1m [--dtype float32] [--repeats 1]

Prints the stage breakdown, wall time and peak resident memory, and writes
``benchmarks/results/infinite_ae-<dataset>.json`` (atomically). The reference point is the paper's own code
on the same 2-core machine (``docs/evaluation.md``, "The paper's code, rerun"): 55 s unloaded / 109 s loaded wall time and
2.0 GB peak RSS on ML-1M, recomputing the kernel for every λ.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

T_START = time.perf_counter()


from infae_kit.data import load_dataset  # noqa: E402
from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID, tune_and_evaluate_infinite_ae  # noqa: E402
from infae_kit.io_utils import atomic_write_json  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import blas_info, peak_rss_bytes  # noqa: E402

T_IMPORTED = time.perf_counter()

PAPER_CODE = {"ml-1m": {"wall_s_unloaded": 55.0, "wall_s_loaded": 109.0, "peak_rss_gb": 2.0},
              "magazine": {"wall_s_unloaded": 14.0, "peak_rss_gb": 1.2}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--lambdas", default=",".join(f"{x:g}" for x in PAPER_LAMBDA_GRID))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = load_dataset(args.dataset)
    t_load = time.perf_counter() - t0
    rep = tune_and_evaluate_infinite_ae(data, lambdas=[float(x) for x in args.lambdas.split(",")],
                                        dtype=args.dtype, progress=False)
    t_end = time.perf_counter()

    solve = sum(v for k, v in rep.timings_s.items() if k.startswith("solve_"))
    val_eval = sum(v for k, v in rep.timings_s.items() if k.startswith("val_eval_"))
    stages = {
        "import (python, jax, kit)": T_IMPORTED - T_START,
        "load + split": t_load,
        "kernel (Gram + NTK, once)": rep.timings_s["kernel"],
        "AUC negatives + propensities": rep.timings_s["eval_setup"],
        f"Cholesky solves ({len(rep.val_metrics)} λ)": solve,
        f"validation metrics ({len(rep.val_metrics)} λ)": val_eval,
        "test pass (kernel, scores, metrics)": rep.timings_s["test"],
    }
    end_to_end = t_load + rep.timings_s["total"]
    wall = t_end - T_START
    rss = peak_rss_bytes()
    print(f"∞-AE benchmark on {args.dataset} ({data.n_users:,} users × {data.n_items:,} items), {args.dtype}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; BLAS: {blas_info()}")
    print(f"{'stage':<42}{'seconds':>10}")
    for name, sec in stages.items():
        print(f"{name:<42}{sec:>10.2f}")
    print(f"{'end to end (load → test metrics)':<42}{end_to_end:>10.2f}")
    print(f"{'wall (process, incl. imports)':<42}{wall:>10.2f}")
    print(f"peak RSS: {rss / 1e9:.2f} GB")
    print(f"λ picked: {rep.best_value:g}; test: " + ", ".join(f"{k} {v:.4g}" for k, v in rep.test_metrics.items()))
    ref = PAPER_CODE.get(args.dataset)
    if ref:
        print(f"paper's code on this kind of machine: {ref}; speed-up vs its unloaded wall: "
              f"{ref['wall_s_unloaded'] / wall:.1f}× (process wall), "
              f"vs its loaded wall: {ref.get('wall_s_loaded', ref['wall_s_unloaded']) / wall:.1f}×")
    atomic_write_json(args.out / f"infinite_ae-{args.dataset}.json", {
        "dataset": args.dataset, "dtype": args.dtype, "n_users": data.n_users, "n_items": data.n_items,
        "stages_s": stages, "end_to_end_s": end_to_end, "wall_s": wall, "peak_rss_bytes": rss,
        "best_lambda": rep.best_value, "test_metrics": rep.test_metrics, "timings_s": rep.timings_s,
        "cpu_count": os.cpu_count(), "blas": blas_info(), "python": sys.version.split()[0],
        "paper_code_reference": ref,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
