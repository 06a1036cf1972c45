"""Benchmark: the paper's validation split against the validation holdout, as a way to pick hyper-parameters.

    python benchmarks/bench_validation_protocol.py --datasets magazine ml-1m [--holdout-seeds 42 0 1]
        [--distill-runs 100 500:42:0] [--distill-steps 100]

For ∞-AE's and EASE's paper λ grids, under the paper's protocol and under the holdout of each seed
(:func:`infae_kit.experiments.validation_protocols.compare_protocols`): validation and test metrics per λ, the λ
picked on validation HR@100 and its test metrics, the best λ in hindsight, Spearman's ρ of validation against
test over the grid, and the bootstrap share of the most picked λ. With ``--distill-runs`` (``μ[:seed[:holdout
seed]]`` each, the seeds 42 and the first ``--holdout-seeds`` by default), DISTILL-CF with notebook 04's
configuration (the dataset's recorded one, ``--distill-steps`` outer steps, that distillation seed) under the
paper's protocol and under the holdout of that seed
(:func:`~infae_kit.experiments.validation_protocols.distill_protocol_run`; supports cached in ``--cache-dir``).
Prints the tables and writes them, with every curve, to ``benchmarks/results/validation_protocol-<dataset>.json``
(atomically).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from infae_kit.data import load_dataset, with_validation_holdout
from infae_kit.experiments.sweeps import notebook_settings
from infae_kit.experiments.validation_protocols import (
    compare_protocols,
    distill_protocol_run,
    distill_protocol_table,
    protocol_table,
)
from infae_kit.io_utils import atomic_write_json
from infae_kit.paths import runs_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info, peak_rss_bytes  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["magazine", "ml-1m"])
    ap.add_argument("--models", nargs="+", default=["infae", "ease"])
    ap.add_argument("--grid", nargs=2, action="append", default=[], metavar=("MODEL", "VALUES"),
                    help="another λ grid for a model, e.g. --grid ease 10,1000 (default: the paper's grids)")
    ap.add_argument("--holdout-seeds", nargs="+", type=int, default=[42, 0, 1])
    ap.add_argument("--min-train-items", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=1000, help="user resamples of the pick-stability estimate")
    ap.add_argument("--distill-runs", nargs="*", default=[], metavar="MU[:SEED[:HOLDOUT_SEED]]",
                    help="DISTILL-CF runs under both protocols: budget μ, distillation seed (42), holdout seed "
                         "(the first of --holdout-seeds); none by default")
    ap.add_argument("--distill-steps", type=int, default=None,
                    help="outer steps of each DISTILL-CF run (default: notebook 04's, 100 on magazine)")
    ap.add_argument("--cache-dir", type=Path, default=runs_dir() / "distill_cache",
                    help="DISTILL-CF supports are read from and written to this cache")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    grids = {model: [float(v) for v in values.split(",")] for model, values in args.grid}
    distill_specs = []
    for spec in args.distill_runs:
        try:
            parts = [int(x) for x in spec.split(":")]
        except ValueError:
            parts = []
        if not 1 <= len(parts) <= 3:
            ap.error(f"--distill-runs takes MU[:SEED[:HOLDOUT_SEED]] (integers), got {spec!r}")
        distill_specs.append(tuple(parts + [42, args.holdout_seeds[0]][len(parts) - 1:]))

    for name in args.datasets:
        t0 = time.perf_counter()
        data = load_dataset(name)
        report = compare_protocols(data, models=args.models, holdout_seeds=args.holdout_seeds,
                                   min_train_items=args.min_train_items, grids=grids, n_bootstrap=args.bootstrap)
        t_grid = time.perf_counter() - t0
        print(f"\n## {name}: {data.n_users:,} users; users with a validation item: "
              f"{report['users_with_val_targets']}; items moved: {report['moved']} ({t_grid:.0f} s)\n")
        print(protocol_table(report))
        distill_runs = []
        done = set()
        for budget, seed, holdout_seed in distill_specs:
            settings = notebook_settings("full", dataset=name, seed=seed, distill_steps=args.distill_steps)
            config = settings.distill_config(name, budget)
            held = with_validation_holdout(data, seed=holdout_seed, min_train_items=args.min_train_items)
            for protocol, dataset in (("paper", data), (f"holdout (seed {holdout_seed})", held)):
                if (budget, seed, protocol) in done:
                    continue
                done.add((budget, seed, protocol))
                run = distill_protocol_run(dataset, config, cache_dir=args.cache_dir, n_bootstrap=args.bootstrap)
                distill_runs.append({"protocol": protocol, **run})
                print(f"DISTILL-CF μ={budget} seed {seed} {protocol}: {run['seconds']:.0f} s "
                      f"({'cache' if run['from_cache'] else 'distilled'})", flush=True)
        if distill_runs:
            print("\n" + distill_protocol_table(distill_runs))
        atomic_write_json(args.out / f"validation_protocol-{name}.json", {
            **report, "distill": distill_runs, "holdout_seeds": args.holdout_seeds, "n_bootstrap": args.bootstrap,
            "table": protocol_table(report),
            "distill_table": distill_protocol_table(distill_runs) if distill_runs else "",
            "wall_s": time.perf_counter() - t0, "peak_rss_bytes": peak_rss_bytes(), "machine": machine_info(),
            "command": "python benchmarks/bench_validation_protocol.py " + " ".join(argv or sys.argv[1:]),
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
