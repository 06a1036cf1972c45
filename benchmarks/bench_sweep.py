"""Benchmark: the cost of notebook 04's sampling sweep, from scratch and from its cache.

    python benchmarks/bench_sweep.py --dataset ml-1m [--cache-dir runs/sweep_cache] [--fresh]

Runs :func:`infae_kit.experiments.sweeps.run_sweep` with exactly the settings notebook 04 runs with (``preset full``: the five
sources of Figure 1, budgets :data:`infae_kit.experiments.sweeps.SAMPLING_BUDGETS`, ∞-AE and EASE, DISTILL-CF up to 1000
users) against ``--cache-dir`` (default ``runs/sweep_cache``, the notebook's cache) and reports:

* ``wall_s``: the wall time of this run (with a warm cache: the cost of rerunning the notebook);
* ``cells_computed`` / ``cells_cached``;
* ``cold_cost_s``: the sum of the seconds each cell took when it was computed (model fits and evaluations plus
  the sampler, distillation or proxy behind it), i.e. what a run from an empty cache costs on the machine and at
  the load it was computed at;
* the per-source split of that cost.

``--fresh`` uses a new empty cache folder instead (a full cold run: an hour or more on 2 cores for ml-1m).
Writes ``benchmarks/results/sweep-<dataset>.json`` atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info, peak_rss_bytes  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    from infae_kit.data import load_dataset
    from infae_kit.io_utils import atomic_write_json
    from infae_kit.paths import runs_dir
    from infae_kit.experiments.sweeps import (PAPER_SOURCES, SAMPLING_BUDGETS, notebook_settings, run_sweep,
                                  sampling_distill_budgets)

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--cache-dir", default=None, help="default: runs/sweep_cache (notebook 04's)")
    parser.add_argument("--fresh", action="store_true", help="start from an empty cache folder")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    cache_dir = Path(args.cache_dir) if args.cache_dir else runs_dir() / "sweep_cache"
    if args.fresh:
        cache_dir = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    data = load_dataset(args.dataset)
    budgets = list(SAMPLING_BUDGETS["full"])
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    result = run_sweep(data, sources=list(PAPER_SOURCES), budgets=budgets, models=["infae", "ease"],
                       settings=notebook_settings("full", dataset=args.dataset, seed=args.seed), cache_dir=cache_dir,
                       source_budgets={"distill-cf": sampling_distill_budgets(args.dataset, budgets)})
    wall = time.perf_counter() - t0
    by_source: dict[str, float] = defaultdict(float)
    for row in result.rows:
        by_source[row["source"]] += row["seconds"]
    record = {
        "dataset": args.dataset, "cache_dir": str(cache_dir), "fresh": args.fresh, "wall_s": wall,
        "cells": len(result.rows), "cells_computed": result.n_computed, "cells_cached": result.n_cached,
        "cold_cost_s": sum(by_source.values()), "cold_cost_by_source_s": dict(by_source),
        "budgets": budgets, "load_average_at_start": load_before, "load_average_at_end": os.getloadavg()[0],
        "peak_rss_bytes": peak_rss_bytes(), "machine": machine_info(),
    }
    path = atomic_write_json(RESULTS_DIR / f"sweep-{args.dataset}.json", record)
    print(f"{args.dataset}: {len(result.rows)} cells ({result.n_computed} computed, {result.n_cached} cached) in "
          f"{wall:.1f} s; cold cost recorded in the cells {record['cold_cost_s'] / 60:.1f} min -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
